"""Search runs by a metric and register the model a run logged, on an explicit MlflowClient."""

from __future__ import annotations

import contextlib
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_somlier.errors import InvalidArgumentError, ModelNotFoundError, RunNotRegistrableError
from airflow_provider_somlier.refs import validate_model_name, validate_new_alias

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_provider_somlier.lifecycle.logged_model import RunModel


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
def without_airflow_deprecation_warnings() -> Iterator[None]:
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


MAX_SEARCH_RESULTS = 50_000  # MLflow's own ceiling for one search
_METRIC_NAME = re.compile(r"\A[\w\-. /:]{1,250}\Z")  # MLflow's metric keys: Unicode word characters and -. /:


def _check_metric_name(metric: str) -> None:
    """A metric key goes into the search filter between back-quotes: refuse anything else by name.

    The characters are MLflow's own (``validate_param_and_metric_name``): a metric MLflow let a
    run log can be searched, and nothing that could close the quotes gets into the filter.
    """
    if not isinstance(metric, str) or not _METRIC_NAME.match(metric):
        raise InvalidArgumentError(
            f"STANDARD_METRIC {metric!r} is not a metric name: expected 1 to 250 letters, digits, '_', '-', '.', "
            "' ', ':' or '/'"
        )


def search_runs(
    client: MlflowClient, project: str, metric: str, order_by: str, limit: int = 100, *, finished_only: bool = True,
) -> list[RunScore]:
    """The project's runs that logged ``metric``, best first by ``order_by``.

    Only FINISHED runs by default: a run that failed after logging a good metric holds no
    usable model, and the best run is what ``register`` is asked to take.
    """
    order = _order(order_by)
    _check_metric_name(metric)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise InvalidArgumentError(f"--limit {limit!r} is invalid: expected a whole number from 1 to {MAX_SEARCH_RESULTS}")
    experiment = client.get_experiment_by_name(project)
    if experiment is None and "/" in project:  # the path `online train` took: its runs are under the last part
        from airflow_provider_somlier.lifecycle.train import experiment_name

        experiment = client.get_experiment_by_name(experiment_name(project))
    if experiment is None:
        raise ModelNotFoundError(f"project {project!r} has no MLflow experiment (train it first)")
    status = " and attributes.status = 'FINISHED'" if finished_only else ""
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"metrics.`{metric}` > -1e308{status}",
        order_by=[f"metrics.`{metric}` {order}"],
        max_results=limit,
    )
    if not runs:
        finished = "finished " if finished_only else ""
        raise InvalidArgumentError(f"no {finished}run of project {project!r} logged the metric {metric!r}")
    return [RunScore(r.info.run_id, float(r.data.metrics[metric]), dict(r.data.params)) for r in runs]


def best_finished_run(client: MlflowClient, run_ids: list[str], metric: str, order_by: str) -> RunScore:
    """The best of ``run_ids`` on ``metric`` among those that FINISHED and logged it."""
    from mlflow.exceptions import MlflowException

    order = _order(order_by)
    scored = []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            continue
        if run.info.status == "FINISHED" and metric in run.data.metrics:
            scored.append(RunScore(run_id, float(run.data.metrics[metric]), dict(run.data.params)))
    if not scored:
        raise RunNotRegistrableError(
            f"none of the {len(run_ids)} run(s) finished with the metric {metric!r}: nothing to register"
        )
    return (min if order == "ASC" else max)(scored, key=lambda score: score.metric_value)


def _better(value: float, than: float, order: str) -> bool:
    return value < than if order == "ASC" else value > than


def best_registered(
    client: MlflowClient, model_name: str, metric: str, order_by: str, *, other_than_run: str | None = None,
) -> tuple[str, float] | None:
    """The registered version whose run scored best on ``metric``, as (version, value); None if none did.

    Every version is considered, not only the latest: a retrained model that came out worse
    must not be called an improvement just because the previous upload was worse still.
    Versions of ``other_than_run`` are left out: a run registered again is compared with the
    other runs, not found "not better" than itself.
    """
    from mlflow.exceptions import MlflowException

    order = _order(order_by)
    best: tuple[str, float] | None = None
    values: dict[str, float | None] = {}
    for version in client.search_model_versions(f"name = '{model_name}'"):
        if not version.run_id or version.run_id == other_than_run:
            continue
        if version.run_id not in values:
            try:
                values[version.run_id] = client.get_run(version.run_id).data.metrics.get(metric)
            except MlflowException:  # the run was deleted; its version has nothing to compare
                values[version.run_id] = None
        value = values[version.run_id]
        if value is not None and (best is None or _better(value, best[1], order)):
            best = (str(version.version), float(value))
    return best


def check_alias(alias: str) -> str:
    """``alias`` if a version can be given it, or :class:`InvalidRefError` naming it -- checked before
    anything is registered, so a refused alias leaves no version behind.

    SoMLier's own rule (what a ``name@alias`` ref can name; ``latest`` and ``v`` + a number are
    MLflow's names for versions) and then MLflow's own validators, the ones its registry runs
    in ``set_registered_model_alias``: whatever MLflow would refuse after the version exists
    is refused here first.
    """
    from mlflow.exceptions import MlflowException

    from airflow_provider_somlier.errors import InvalidRefError

    validate_new_alias(alias)
    try:
        from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved
    except ImportError:  # private to MLflow: another release may move them; our own rule above still holds
        return alias
    try:
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
    except MlflowException as exc:
        raise InvalidRefError(f"--alias {alias!r} is refused by MLflow: {exc.message}") from None
    return alias


def _create_version(client: MlflowClient, name: str, model: RunModel, run_id: str) -> tuple[str, bool]:
    """A new version of ``name`` from ``model``, as (version, whether the registered model was created
    for it) -- what :func:`_undo_version` needs to leave the registry as it was."""
    from mlflow.exceptions import MlflowException

    created = True
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        created = False
    try:
        version = client.create_model_version(name, source=model.source, run_id=run_id, model_id=model.model_id)
    except BaseException as failure:
        if created:
            _undo_version(client, name, None, created, failure)
        raise
    return str(version.version), created


def _undo_version(
    client: MlflowClient, name: str, version: str | None, created_model: bool, failure: BaseException,
) -> None:
    """Delete the version just made (and the registered model, if it was made for it and holds no
    other version) after a later step failed: a half-registered version would be compared
    against -- "not better" than itself -- by every later registration. A failed undo is named,
    with the failure that called for it, never hidden."""
    from mlflow.exceptions import MlflowException

    from airflow_provider_somlier.errors import RegistryUnavailableError

    try:
        if version is not None:
            client.delete_model_version(name, version)
        if created_model and not client.search_model_versions(f"name = '{name}'"):
            client.delete_registered_model(name)
    except MlflowException as exc:
        left = f"version {version} of {name!r}" if version is not None else f"the registered model {name!r}"
        cause = getattr(failure, "message", None) or str(failure) or type(failure).__name__
        raise RegistryUnavailableError(
            f"registering failed ({cause}), and {left} it had made could not be removed ({exc.message}): "
            "delete it by hand"
        ) from None


def register_run(
    client: MlflowClient, run_id: str, model_name: str, *, metric: str = "training_mae", order_by: str = "ASC",
    artifact_path: str | None = None, alias: str | None = None, training_columns: list[str] | None = None,
    log_profile: Callable[[], str] | None = None,
) -> dict[str, object]:
    """Register the model ``run_id`` logged as a new version of ``model_name`` (once: again, it is that version).

    The run must be FINISHED and have logged ``metric`` and a model (MLflow 3's logged
    model, or an MLflow 2-style ``artifact_path`` folder). ``is_newer_version`` says whether
    it beats the best registered version on ``metric``; when it does and ``alias`` is
    given, the alias moves to the new version (otherwise it stays where it was).
    ``training_columns`` (a training file's) must hold every input the model's signature
    names, or nothing is registered: its profile is the baseline those inputs are judged by.
    ``log_profile`` (logging that profile with the run, returning its URI) runs once every check
    has passed and before the version is made. A step failing after the version exists (the
    alias) deletes it again: a refused registration leaves nothing behind.
    """
    from mlflow.exceptions import MlflowException

    from airflow_provider_somlier.lifecycle.logged_model import find_run_model, signature_input_names, version_source

    order = _order(order_by)
    name = validate_model_name(model_name)
    if alias is not None:  # before anything is registered: a refused alias must leave no version behind
        check_alias(alias)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ModelNotFoundError(f"run {run_id!r} does not exist in {client.tracking_uri}") from None
    if run.info.status != "FINISHED":
        raise RunNotRegistrableError(
            f"run {run_id} is {run.info.status}, not FINISHED: only a run that finished can be registered"
        )
    new_value = run.data.metrics.get(metric)
    if new_value is None:
        logged = ", ".join(sorted(run.data.metrics)) or "none"
        raise RunNotRegistrableError(
            f"run {run_id} logged no metric {metric!r} (it logged: {logged}); pass the metric it logs "
            "as --standard_metric"
        )
    found = find_run_model(client, run, artifact_path)
    if training_columns is not None:
        from airflow_provider_somlier.quality.training import refuse_missing_inputs

        refuse_missing_inputs(signature_input_names(client, found) or [], training_columns)
    model = version_source(client, found)
    best = best_registered(client, name, metric, order, other_than_run=run_id)
    answer: dict[str, object] = {}
    if log_profile is not None:  # before the version: no version is ever without its baseline
        answer["training_profile"] = log_profile()
    existing = _registered_version_of(client, name, model, run_id)
    if existing is not None:
        version, created_model, made = existing, False, False
    else:
        (version, created_model), made = _create_version(client, name, model, run_id), True
    try:
        newer, message = _compare(new_value, best, metric, order)
        if not made:
            message = f"run {run_id}'s model is already version {version} of {name!r}, nothing new registered; {message}"
        if alias is not None and newer:
            client.set_registered_model_alias(name, alias, version)
            message = f"{message}; alias {alias!r} now points at version {version}"
        elif alias is not None:
            message = f"{message}; alias {alias!r} left where it was"
    except BaseException as failure:
        if made:
            _undo_version(client, name, version, created_model, failure)
        raise
    return {"model_version": version, "is_newer_version": newer, "message": message, **answer}


def _registered_version_of(client: MlflowClient, name: str, model: RunModel, run_id: str) -> str | None:
    """The version of ``name`` already made from this run's ``model``, if one is: registering is idempotent.

    A retried ``somlier register`` (a CI step run again, a lost answer) must not stack copies of one
    model as new versions, each moving the alias and making every worker fetch it again.
    """
    for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        same_model = model.model_id is not None and getattr(version, "model_id", None) == model.model_id
        if (same_model or version.source == model.source) and version.status == "READY":
            return str(version.version)
    return None


def _compare(new_value: float, best: tuple[str, float] | None, metric: str, order: str) -> tuple[bool, str]:
    """Whether ``new_value`` beats the best registered version's, with the message saying so."""
    if best is None:
        return True, f"first version with {metric} ({metric} {new_value:g})"
    newer = _better(new_value, best[1], order)
    return newer, (
        f"{metric} {new_value:g} vs best registered version {best[0]} at {best[1]:g} "
        f"({'better' if newer else 'not better'})"
    )


def artifact_root_beside(tracking_uri: str) -> str | None:
    """Where an experiment SoMLier creates in a SQLite store keeps its artifacts: ``mlruns`` beside the
    database file. MLflow's own default is ``./mlruns`` in whatever folder the command runs in,
    which scatters one store's artifacts over the folders it was used from; None for other stores
    (a server keeps its artifacts; other databases name no folder)."""
    from pathlib import Path

    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return (Path(database).resolve().parent / "mlruns").as_uri()


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
        found.experiment_id
        if found
        else client.create_experiment(experiment, artifact_location=artifact_root or artifact_root_beside(tracking_uri))
    )
    run = client.create_run(experiment_id, run_name=model_name)
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, value)
    for key, value in (metrics or {}).items():
        client.log_metric(run.info.run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp, without_airflow_deprecation_warnings():
        save(f"{tmp}/model")
        client.log_artifacts(run.info.run_id, f"{tmp}/model", artifact_path="model")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        client.create_registered_model(model_name)
    version = client.create_model_version(model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(model_name, alias, version.version)
    return RegisteredModel(model_name, str(version.version), run.info.run_id)
