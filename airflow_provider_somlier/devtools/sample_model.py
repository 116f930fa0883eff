"""Train a small model on data scikit-learn ships and put it in an MLflow registry.

Used by the demo, the tests and the benchmarks. Everything goes through an explicit
``MlflowClient``: no process-global tracking URI, no environment variables.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str


def diabetes_frame():
    """sklearn's diabetes data (bundled with the package, no download) as a DataFrame."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    return data.data[list(FEATURES)], data.target


def register_model(
    tracking_uri: str,
    model_name: str,
    save: Callable[[str], None],
    *,
    params: dict[str, object] | None = None,
    metrics: dict[str, float] | None = None,
    alias: str | None = None,
    artifact_root: str | None = None,
    experiment: str = "somlier-demo",
) -> RegisteredModel:
    """Log the MLflow model that ``save(path)`` writes as a run, and register it as a new version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id if found else client.create_experiment(experiment, artifact_location=artifact_root)
    )
    run = client.create_run(experiment_id, run_name=model_name)
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, value)
    for key, value in (metrics or {}).items():
        client.log_metric(run.info.run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        save(f"{tmp}/model")
        client.log_artifacts(run.info.run_id, f"{tmp}/model", artifact_path="model")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(model_name)
    version = client.create_model_version(model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(model_name, alias, version.version)
    return RegisteredModel(model_name, str(version.version), run.info.run_id)


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
