"""Train a small model on data scikit-learn ships and put it in an MLflow registry.

Used by the demo, the tests and the benchmarks. Everything goes through an explicit
``MlflowClient``: no process-global tracking URI, no environment variables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow_provider_somlier.lifecycle.registry import RegisteredModel, register_model

__all__ = ["FEATURES", "RegisteredModel", "diabetes_frame", "register_model", "train_and_register", "train_and_register_hgb"]

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def diabetes_frame():
    """sklearn's diabetes data (bundled with the package, no download) as a DataFrame."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.data[list(FEATURES)], data.target


@contextlib.contextmanager
def _quiet_pip_version_warning() -> Iterator[None]:
    """MLflow warns that it cannot tell pip's version when the environment has no pip (the locked
    venv has none); the sample model's conda.yaml then lists ``pip`` unpinned, which is all it
    needs. Only that record is held back, so the demo's output shows no false alarm."""
    import logging

    class NoPipVersion(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "Failed to resolve installed pip version" not in record.getMessage()

    logger, quiet = logging.getLogger("mlflow.utils.environment"), NoPipVersion()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def train_and_register(tracking_uri: str, model_name: str, *, alpha: float = 1.0, **kwargs) -> RegisteredModel:
    """Fit a Ridge regression on the diabetes data and register it (``kwargs`` as for :func:`register_model`)."""
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    features, target = diabetes_frame()
    model = Ridge(alpha=alpha).fit(features, target)

    def save(path: str) -> None:
        with _quiet_pip_version_warning():
            mlflow.sklearn.save_model(
                model,
                path,
                signature=infer_signature(features, model.predict(features)),
                # Stated, not inferred: inference spawns pip and costs seconds per model.
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )

    return register_model(
        tracking_uri,
        model_name,
        save,
        params={"alpha": alpha},
        metrics={"training_mae": float(mean_absolute_error(target, model.predict(features)))},
        **kwargs,
    )


def train_and_register_hgb(tracking_uri: str, model_name: str, **kwargs) -> RegisteredModel:
    """Fit a HistGradientBoostingRegressor (100 iterations) on the diabetes data and register it
    (cloudpickle format; ``kwargs`` as for :func:`register_model`): the benchmarks' heavier model."""

    def save(path: str) -> None:
        import mlflow.sklearn
        import sklearn
        from mlflow.models import infer_signature
        from sklearn.ensemble import HistGradientBoostingRegressor

        features, target = diabetes_frame()
        model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(features, target)
        with _quiet_pip_version_warning():
            mlflow.sklearn.save_model(model, path, signature=infer_signature(features, model.predict(features)),
                                      serialization_format="cloudpickle",
                                      pip_requirements=[f"scikit-learn=={sklearn.__version__}"])

    return register_model(tracking_uri, model_name, save, **kwargs)
