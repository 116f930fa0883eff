"""A registry model's own scikit-learn estimator, when MLflow's per-call input check adds nothing.

MLflow's pyfunc checks every input against the signature and copies it into a new
DataFrame before the estimator sees it: ~2 ms per one-row request online, about a quarter
of the predict phase offline. For a scikit-learn model whose signature is only required ``double``
columns, in the order the estimator was fitted on, without params, logged to answer with
``predict``, that check adds nothing to what the caller checked already (numbers, every
named column, finite values, cast to double) and the estimator's ``predict`` is what the
pyfunc calls — so both the batch operator and the online server call it directly. Any
other model keeps MLflow's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def direct_estimator(model: Any, columns: Sequence[str] | None = None) -> Any | None:
    """The scikit-learn estimator inside pyfunc ``model`` when calling its ``predict`` on a DataFrame
    of ``columns`` (default: the signature's, in order) answers what ``model.predict`` would; else None."""
    if getattr(model, "loader_module", None) != "mlflow.sklearn":
        return None
    metadata = model.metadata
    if metadata.flavors.get("python_function", {}).get("predict_fn", "predict") != "predict":
        return None  # e.g. pyfunc_predict_fn="predict_proba": the pyfunc answers probabilities
    schema = metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or metadata.get_params_schema() is not None:
        return None
    if any(not spec.required or getattr(spec.type, "name", None) != "double" for spec in schema.inputs):
        return None
    names = schema.input_names()
    if columns is not None and list(columns) != names:
        return None  # the pyfunc would reorder the columns; the estimator would refuse them
    estimator = model.get_raw_model()
    fitted_on = getattr(estimator, "feature_names_in_", None)
    if fitted_on is None or [str(n) for n in fitted_on] != names:
        return None
    return estimator
