"""Train a small model on data scikit-learn ships and put it in an MLflow registry.

Used by the demo, the tests and the benchmarks. Everything goes through an explicit
``MlflowClient``: no process-global tracking URI, no environment variables.
"""

from __future__ import annotations

import tempfile
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


def train_and_register(
    tracking_uri: str,
    model_name: str,
    *,
    alpha: float = 1.0,
    alias: str | None = None,
    artifact_root: str | None = None,
    experiment: str = "somlier-demo",
) -> RegisteredModel:
    """Fit a Ridge regression, log it as an MLflow run, register a new version, set ``alias``."""
    import mlflow.sklearn
    import sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id if found else client.create_experiment(experiment, artifact_location=artifact_root)
    )
    features, target = diabetes_frame()
    model = Ridge(alpha=alpha).fit(features, target)
    run = client.create_run(experiment_id, run_name=f"ridge-alpha-{alpha}")
    client.log_param(run.info.run_id, "alpha", alpha)
    client.log_metric(run.info.run_id, "training_mae", float(mean_absolute_error(target, model.predict(features))))
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/model"
        mlflow.sklearn.save_model(
            model,
            path,
            signature=infer_signature(features, model.predict(features)),
            # Stated, not inferred: inference spawns pip and costs seconds per model.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        client.log_artifacts(run.info.run_id, path, artifact_path="model")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(model_name)
    version = client.create_model_version(
        model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    if alias:
        client.set_registered_model_alias(model_name, alias, version.version)
    return RegisteredModel(model_name, str(version.version), run.info.run_id)
