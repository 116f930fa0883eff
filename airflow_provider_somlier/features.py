"""Which source columns feed the model, and whether their types fit its signature.

Checked once per run against the source table's schema, before any row is read,
so a mismatch fails in seconds with the column named rather than deep inside
``model.predict``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.errors import (
    ColumnNotFoundError,
    FeatureMismatchError,
    InfiniteFeatureError,
    NullFeatureError,
)
from airflow_provider_somlier.refs import validate_column_name

if TYPE_CHECKING:
    import pyarrow as pa

# BigQuery column types each MLflow signature type accepts; values are cast to the
# signature's type before predicting, so INT64 feeds a `double` input losslessly.
_ACCEPTED_BQ_TYPES: dict[str, frozenset[str]] = {
    "double": frozenset({"FLOAT64", "INT64", "NUMERIC", "BIGNUMERIC"}),
    "float": frozenset({"FLOAT64", "INT64"}),
    "long": frozenset({"INT64"}),
    "integer": frozenset({"INT64"}),
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"STRING"}),
    "binary": frozenset({"BYTES"}),
    "datetime": frozenset({"TIMESTAMP", "DATETIME", "DATE"}),
}
_BQ_TYPE_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


def normalize_bq_type(field_type: str) -> str:
    return _BQ_TYPE_ALIASES.get(field_type.upper(), field_type.upper())


@dataclass(frozen=True)
class FeaturePlan:
    """The columns to read and how to hand them to the model."""

    features: tuple[str, ...]
    passthrough: tuple[str, ...]
    # signature type per feature ("double", "long", ...) or None when the model has no schema
    feature_types: Mapping[str, str | None]
    # NULL/NaN features go to the model as NaN (a model that handles missing values);
    # otherwise a day holding one is refused by name (``NullFeatureError``)
    missing_allowed: bool = False

    @property
    def read_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.features + self.passthrough))


def signature_inputs(model: Any) -> list[tuple[str, str]] | None:
    """``[(name, mlflow_type), ...]`` of a pyfunc model's named column inputs, or None."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or schema.is_tensor_spec():
        return None
    return [(spec.name, str(spec.type.name) if hasattr(spec.type, "name") else str(spec.type)) for spec in schema.inputs]


def signature_kind(model: Any) -> str:
    """What the model's input signature is, in words, for an error that asks for ``feature_columns``."""
    schema = model.metadata.get_input_schema()
    if schema is None:
        return "no input signature"
    if schema.is_tensor_spec():
        return "a tensor (numpy) input signature, whose inputs have no column names"
    return "an input signature without column names (e.g. from type hints)"


def plan_features(
    source_types: Mapping[str, str],
    signature: list[tuple[str, str]] | None,
    feature_columns: Sequence[str] | None,
    passthrough_columns: Sequence[str],
    *,
    source: str,
    signature_described: str = "no named input signature",
) -> FeaturePlan:
    """Decide the features and check them against the source table and the signature.

    ``source_types`` maps column name → BigQuery type for the source table.
    """
    sig_types = dict(signature or [])
    if feature_columns:
        features = tuple(validate_column_name(c, field="feature column") for c in feature_columns)
    elif signature:
        features = tuple(name for name, _ in signature)
    else:
        raise FeatureMismatchError(
            f"the model has {signature_described}, so feature_columns must be given to say which columns of "
            f"{source} it takes, in order (or log the model with a column signature, e.g. from a DataFrame "
            "input_example)"
        )
    passthrough = tuple(validate_column_name(c, field="passthrough column") for c in passthrough_columns)

    missing = [c for c in features + passthrough if c not in source_types]
    if missing:
        by_case = {c.lower(): c for c in source_types}
        other_case = [f"{c!r} is {by_case[c.lower()]!r} there" for c in missing if c.lower() in by_case]
        raise ColumnNotFoundError(
            f"column(s) {', '.join(map(repr, missing))} not found in {source}; "
            f"it has {', '.join(sorted(source_types))}"
            + (f" ({'; '.join(other_case)}: names must match in letter case too — rename the column in a view, "
               "or log the model with the table's names)" if other_case else "")
        )
    if signature:
        unknown = [c for c in features if c not in sig_types]
        if unknown:
            raise FeatureMismatchError(
                f"feature column(s) {', '.join(map(repr, unknown))} are not inputs of the model signature "
                f"({', '.join(sig_types)})"
            )
        absent = [c for c in sig_types if c not in features]
        if absent:
            raise FeatureMismatchError(
                f"model signature input(s) {', '.join(map(repr, absent))} are not among the feature columns "
                f"{list(features)}"
            )
    for column in features:
        mlflow_type = sig_types.get(column)
        if mlflow_type is None:
            continue
        bq_type = normalize_bq_type(source_types[column])
        accepted = _ACCEPTED_BQ_TYPES.get(mlflow_type)
        if accepted is not None and bq_type not in accepted:
            raise FeatureMismatchError(
                f"feature {column!r} is {bq_type} in {source}, but the model signature expects "
                f"{mlflow_type} (accepted BigQuery types: {', '.join(sorted(accepted))})"
            )
    return FeaturePlan(features=features, passthrough=passthrough, feature_types={c: sig_types.get(c) for c in features})


_ARROW_CASTS = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool_",
    "string": "string",
    "binary": "binary",
}


def model_input(batch: pa.RecordBatch, plan: FeaturePlan, *, target: str) -> Any:
    """The feature columns of ``batch`` as the DataFrame the model expects.

    Unless ``plan.missing_allowed``, raises :class:`NullFeatureError` when a feature holds
    NULLs or NaNs: the model would otherwise score them as NaN, or fail with a message
    that hides the column (scikit-learn's "Input X contains NaN"). When allowed, a NULL
    reaches the model as NaN, and the quality gate's ``max_null_fraction`` bounds how many.
    """
    import pyarrow as pa

    columns = []
    for name in plan.features:
        column = batch.column(name)
        if not plan.missing_allowed:
            _refuse_missing(name, column, target)
        columns.append(_as_signature_type(name, column, plan.feature_types.get(name), target))
    return pa.RecordBatch.from_arrays(columns, names=list(plan.features)).to_pandas()


def _as_signature_type(name: str, column: pa.Array, mlflow_type: str | None, target: str) -> pa.Array:
    """``column`` cast to the type the signature names, as pandas and scikit-learn would convert it.

    Integers become floats even beyond 2**53 (a hash, epoch nanoseconds: rounded, as numpy
    rounds them); a value the signature's type cannot hold at all (3e9 for ``integer``, 1e39
    for ``float``) is refused by column name, not turned into a wrong number or an infinity.
    A TIMESTAMP reaches a ``datetime`` input as UTC without a zone, which MLflow requires.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if mlflow_type == "datetime" and pa.types.is_timestamp(column.type) and column.type.tz is not None:
        return column.cast(pa.timestamp(column.type.unit))
    cast = _ARROW_CASTS.get(mlflow_type or "")
    if cast is None:
        return column
    to = getattr(pa, cast)()
    if pa.types.is_integer(column.type) and pa.types.is_floating(to):
        return column.cast(to, safe=False)
    try:
        converted = column.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureMismatchError(
            f"feature {name!r} on {target} holds a value the model's {mlflow_type} input cannot hold ({exc}); "
            f"expected values within {to}'s range (log the model with a wider type, e.g. double or long)"
        ) from exc
    if pa.types.is_floating(to) and pa.types.is_floating(column.type) and to.bit_width < column.type.bit_width:
        overflowed = pc.sum(pc.and_(pc.is_inf(converted), pc.invert(pc.is_inf(column)))).as_py()
        if overflowed:
            raise FeatureMismatchError(
                f"feature {name!r} on {target} has {overflowed} value(s) beyond float32's range, which the model's "
                "float input would see as infinite; expected values within ±3.4e38 (log the model with double)"
            )
    return converted


def model_matrix(batch: pa.RecordBatch, plan: FeaturePlan, *, target: str) -> Any:
    """The feature columns of ``batch`` as one float64 matrix, for a predictor that computes on it
    directly (``direct_sklearn.LinearPredictor``).

    Such a predictor checks nothing, so this refuses by column name what the estimator's own
    check would refuse without one: NULL and NaN (:class:`NullFeatureError`) and infinite
    values (:class:`InfiniteFeatureError`).
    """
    import numpy as np
    import pyarrow as pa

    matrix = np.empty((batch.num_rows, len(plan.features)), dtype=np.float64, order="F")
    for index, name in enumerate(plan.features):
        column = batch.column(name)
        _refuse_missing(name, column, target, infinite=True)
        matrix[:, index] = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return matrix


def _refuse_missing(name: str, column: pa.Array, target: str, *, infinite: bool = False) -> None:
    """Raise :class:`NullFeatureError` naming the column and the count when it holds a NULL or a NaN
    (and, with ``infinite``, :class:`InfiniteFeatureError` for an infinite value)."""
    import math

    import pyarrow as pa
    import pyarrow.compute as pc

    missing, kind = column.null_count, "NULL"
    if not missing and pa.types.is_floating(column.type):
        total = pc.sum(column).as_py()
        if total is not None and not math.isfinite(total):  # a NaN or an infinity somewhere, or an overflow
            missing, kind = pc.sum(pc.is_nan(column)).as_py(), "NaN"
            if infinite and not missing and (infinities := pc.sum(pc.is_inf(column)).as_py()):
                raise InfiniteFeatureError(
                    f"feature {name!r} has {infinities} infinite value(s) on {target}, which the model refuses; "
                    "clip or fill them upstream, or leave the column out of feature_columns"
                )
    if missing:
        raise NullFeatureError(
            f"feature {name!r} has {missing} {kind} value(s) on {target}; fill them upstream or leave the column "
            "out of feature_columns (or, for a model that handles missing values, null_features='pass' sends them "
            "as NaN; 'auto' does so for scikit-learn models whose every step declares allow_nan)"
        )


def model_accepts_missing(model: Any) -> bool:
    """Whether a pyfunc model declares that it predicts rows with missing values.

    True for a scikit-learn model whose every step carries the ``allow_nan`` tag
    (``HistGradientBoosting*``, a scaler before one, ...). scikit-learn's own Pipeline
    tag follows a single step, which would let NaN reach a ``Ridge`` behind a scaler.
    Any other model (a custom pyfunc, another flavor) does not say, so it is False:
    ``null_features='pass'`` is the user's word for it.
    """
    try:
        raw = model.get_raw_model()
    except Exception:  # noqa: BLE001 - a flavor without a raw model says nothing
        return False
    return _sklearn_allows_nan(raw)


def _sklearn_allows_nan(estimator: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
        from sklearn.pipeline import Pipeline
        from sklearn.utils import get_tags
    except ImportError:
        return False
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
        return bool(steps) and all(_sklearn_allows_nan(step) for step in steps)
    if not isinstance(estimator, BaseEstimator):
        return False
    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # noqa: BLE001 - an estimator whose tags fail to build says nothing
        return False


def missing_allowed(null_features: str, model: Any) -> bool:
    """``null_features`` resolved for ``model``: ``pass`` yes, ``refuse`` no, ``auto`` as the model declares."""
    return null_features == "pass" or (null_features == "auto" and model_accepts_missing(model))
