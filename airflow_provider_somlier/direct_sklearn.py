"""A registry model's own scikit-learn estimator, when MLflow's per-call input check adds nothing.

MLflow's pyfunc checks every input against the signature and copies it into a new
DataFrame before the estimator sees it: ~2 ms per one-row request online, about a quarter
of the predict phase offline. For a scikit-learn model whose signature is only required ``double``
columns (offline also ``long``/``integer``, which the operator casts to), in the order the estimator was fitted on, without params, logged to answer with
``predict``, that check adds nothing to what the caller checked already (numbers, every
named column, finite values, cast to double) and the estimator's ``predict`` is what the
pyfunc calls — so both the batch operator and the online server call it directly. Any
other model keeps MLflow's path.

For the plainest linear models the estimator's own ``predict`` is itself mostly checks:
``linear_shortcut`` evaluates its expression on a matrix the caller has already checked
(the online server for every request, the operator for every chunk of a day).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


DOUBLES = frozenset({"double"})
# What the operator's checked columns hand over in the signature's own types: a model fitted on
# integer columns (MLflow infers ``long`` from an int64 example) is one. Through the pyfunc, a
# ``long`` column holding a NULL (NaN in pandas) is refused by MLflow's check ("Can not safely
# convert float64 to int64") even for a model that handles missing values.
NUMBERS = frozenset({"double", "long", "integer"})


def direct_estimator(model: Any, columns: Sequence[str] | None = None, *, types: frozenset[str] = DOUBLES) -> Any | None:
    """The scikit-learn estimator inside pyfunc ``model`` when calling its ``predict`` on a DataFrame
    of ``columns`` (default: the signature's, in order) answers what ``model.predict`` would; else None.

    ``types``: the signature types allowed; the online server, which converts every request to
    doubles, keeps the default; the operator, which casts each column to its signature type, adds
    the integers."""
    if getattr(model, "loader_module", None) != "mlflow.sklearn":
        return None
    metadata = model.metadata
    if metadata.flavors.get("python_function", {}).get("predict_fn", "predict") != "predict":
        return None  # e.g. pyfunc_predict_fn="predict_proba": the pyfunc answers probabilities
    schema = metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or metadata.get_params_schema() is not None:
        return None
    if any(not spec.required or getattr(spec.type, "name", None) not in types for spec in schema.inputs):
        return None
    names = schema.input_names()
    if columns is not None and list(columns) != names:
        return None  # the pyfunc would reorder the columns; the estimator would refuse them
    estimator = model.get_raw_model()
    fitted_on = getattr(estimator, "feature_names_in_", None)
    if fitted_on is None or [str(n) for n in fitted_on] != names:
        return None
    return estimator


class LinearPredictor:
    """A plain linear model predicted as ``linear_shortcut`` computes it, on a float64 matrix.

    ``takes_matrix`` tells the scoring loop to hand it ``features.model_matrix`` (finite
    values, checked by column name) instead of a DataFrame: for a Ridge over 100k rows,
    building the DataFrame and scikit-learn's checks of it cost ten times the product.
    """

    takes_matrix = True

    def __init__(self, estimator: Any, compute: Callable[[Any], Any]):
        self.estimator = estimator
        self._compute = compute

    def predict(self, matrix: Any) -> Any:
        return self._compute(matrix)


def direct_predictor(model: Any, columns: Sequence[str], *, missing_allowed: bool = False) -> Any | None:
    """What the operator predicts ``model`` with on a DataFrame of ``columns``: a
    :class:`LinearPredictor`, the estimator itself, or None for the pyfunc.

    With ``missing_allowed`` (NaN sent to the model) a linear model keeps its estimator, whose
    own check refuses NaN; the matrix path refuses them before, by column name.
    """
    estimator = direct_estimator(model, columns, types=NUMBERS)
    if estimator is None or missing_allowed:
        return estimator
    compute = linear_shortcut(estimator)
    return estimator if compute is None else LinearPredictor(estimator, compute)


def linear_shortcut(estimator: Any) -> Callable | None:
    """``predict`` as scikit-learn computes it for plain linear models, without its per-call checks.

    For one row, scikit-learn's ``predict`` spends ~100 µs checking its input (is it a
    dataframe of some library, is it finite, how wide) before a dot product of a few
    multiplications. The callers have already made those checks (the online server's
    ``as_matrix``, the operator's ``features.model_matrix``), so for the estimators whose
    ``predict`` is exactly ``X @ coef_.T + intercept_`` (and, for ``LogisticRegression``, the
    class of the largest score) they evaluate that expression themselves -- the same numpy
    operations. Every other estimator, and any subclass, goes through its own ``predict``.
    """
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    try:  # private module: if a scikit-learn release moves it, every model keeps its own predict
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    except ImportError:
        return None

    kind = type(estimator)
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if type(coef) is not np.ndarray or not isinstance(intercept, (np.ndarray, float)):
        return None
    if kind in (Ridge, LinearRegression) and kind._decision_function is LinearModel._decision_function:
        weights = coef if coef.ndim == 1 else coef.T
        return lambda rows: rows @ weights + intercept
    if (
        kind is LogisticRegression
        and kind.predict is LinearClassifierMixin.predict
        and kind.decision_function is LinearClassifierMixin.decision_function
    ):
        classes = estimator.classes_
        weights = coef.T

        def predict_class(rows):
            scores = rows @ weights + intercept
            if scores.shape[1] == 1:
                return classes.take((scores[:, 0] > 0).astype(np.intp))
            return classes.take(scores.argmax(axis=1))

        return predict_class
    return None
