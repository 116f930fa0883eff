"""Search runs by a metric and register a run's model, on an explicit MlflowClient."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_somlier.errors import InvalidArgumentError, ModelNotFoundError

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str


@dataclass(frozen=True)
class RunScore:
    run_id: str
    metric_value: float
    params: dict[str, str]


@contextlib.contextmanager
def _without_airflow_deprecation_warnings() -> Iterator[None]:
    """Silence Airflow's deprecated-attribute warnings while a model is saved.

    skops (MLflow's scikit-learn format) finds objects such as numpy ufuncs by looking
    their name up on every loaded module; in a process that imported Airflow, each lookup
    on one of Airflow's deprecated module aliases warns -- over a thousand log lines per
    saved model, none of them about the user's code.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `airflow\.", category=FutureWarning)
        yield


def _order(order_by: str) -> str:
    order = order_by.strip().upper()
    if order not in ("ASC", "DESC"):
        raise InvalidArgumentError(f"ORDER_BY {order_by!r} must be ASC or DESC")
    return order


def search_runs(client: MlflowClient, project: str, metric: str, order_by: str, limit: int = 100) -> list[RunScore]:
    """The project's runs that logged ``metric``, best first by ``order_by``."""
    order = _order(order_by)
    experiment = client.get_experiment_by_name(project)
    if experiment is None:
        raise ModelNotFoundError(f"project {project!r} has no MLflow experiment (train it first)")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"metrics.`{metric}` > -1e308",
        order_by=[f"metrics.`{metric}` {order}"],
        max_results=limit,
    )
    if not runs:
        raise InvalidArgumentError(f"no run of project {project!r} logged the metric {metric!r}")
    return [RunScore(r.info.run_id, float(r.data.metrics[metric]), dict(r.data.params)) for r in runs]


def register_run(
    client: MlflowClient, run_id: str, model_name: str, *, metric: str = "training_mae", order_by: str = "ASC",
    artifact_path: str = "model",
) -> dict[str, object]:
    """Register the run's model as a new version; say whether it beats the latest version on ``metric``."""
    from mlflow.exceptions import MlflowException

    order = _order(order_by)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFoundError(f"run {run_id!r} does not exist in {client.tracking_uri}") from None
    new_value = run.data.metrics.get(metric)
    previous = None
    if client.search_registered_models(filter_string=f"name = '{model_name}'"):
        versions = client.search_model_versions(f"name = '{model_name}'")
        if versions:
            latest = max(versions, key=lambda v: int(v.version))
            previous = client.get_run(latest.run_id).data.metrics.get(metric) if latest.run_id else None
    else:
        client.create_registered_model(model_name)
    version = client.create_model_version(model_name, source=f"{run.info.artifact_uri}/{artifact_path}", run_id=run_id)
    if previous is None or new_value is None:
        newer = previous is None
        message = "first version" if previous is None else f"run has no {metric}; cannot compare"
    else:
        newer = new_value < previous if order == "ASC" else new_value > previous
        message = f"{metric} {new_value:g} vs previous {previous:g} ({'better' if newer else 'not better'})"
    return {"model_version": str(version.version), "is_newer_version": newer, "message": message}


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
    with tempfile.TemporaryDirectory() as tmp, _without_airflow_deprecation_warnings():
        save(f"{tmp}/model")
        client.log_artifacts(run.info.run_id, f"{tmp}/model", artifact_path="model")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(model_name)
    version = client.create_model_version(model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(model_name, alias, version.version)
    return RegisteredModel(model_name, str(version.version), run.info.run_id)
