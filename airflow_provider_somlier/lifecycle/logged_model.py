"""Find the model a training run logged, as MLflow 3 and MLflow 2 store it.

MLflow 3's ``mlflow.<flavor>.log_model(model, name="model")`` creates a *logged model*
(``models:/m-…``) whose artifacts live outside the run's artifact folder; the run only
lists it among its outputs. MLflow 2 (and ``log_artifacts`` of a saved model) put the
model in a folder of the run's artifacts. A version registered from the wrong one of
the two cannot be loaded, so the source is looked up, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_somlier.errors import RunNotRegistrableError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel, Run


@dataclass(frozen=True)
class RunModel:
    """Where a run's model lives: the source a registry version points at, and its logged-model id."""

    source: str
    model_id: str | None = None


# Registry URI schemes whose store runs in this process. MLflow's SQL and file registry
# stores resolve a ``models:/m-…`` source (and a bare ``model_id``) through a default
# ``MlflowClient()`` built from the process-global tracking URI, not the client that asked:
# with no global URI they look in (and create) ``./mlflow.db`` and fail.
_IN_PROCESS_SCHEMES = frozenset({"", "file", "sqlite", "postgresql", "mysql", "mssql"})


def registers_in_process(registry_uri: str) -> bool:
    """Whether ``registry_uri`` is a store this process opens itself (a database or a folder),
    as opposed to a server (``http(s)://``, Databricks) that resolves logged models on its side."""
    from mlflow.utils.uri import get_uri_scheme

    return get_uri_scheme(registry_uri).split("+", 1)[0] in _IN_PROCESS_SCHEMES


def version_source(client: MlflowClient, model: RunModel) -> RunModel:
    """What to hand ``create_model_version`` so the registry never consults the global tracking URI.

    A server resolves ``models:/m-…`` with its own store, so the source stays that URI and the
    version stays linked to its logged model. An in-process store gets the logged model's
    artifact location, resolved through ``client`` (MLflow does the same for registries that
    cannot resolve logged models), and no ``model_id`` to look up again.
    """
    registry_uri = getattr(client, "_registry_uri", None) or client.tracking_uri
    if model.model_id is None or not registers_in_process(registry_uri):
        return model
    return RunModel(source=client.get_logged_model(model.model_id).artifact_location)


def _logged_models(client: MlflowClient, run: Run) -> list[tuple[LoggedModel, int]]:
    """The run's MLflow 3 logged models with the step each was logged at."""
    from mlflow.exceptions import MlflowException

    steps = {output.model_id: output.step for output in (run.outputs.model_outputs if run.outputs else [])}
    found: dict[str, LoggedModel] = {}
    for model_id in steps:
        try:
            found[model_id] = client.get_logged_model(model_id)
        except MlflowException:
            continue  # deleted since
    if not found:
        # Models logged with an explicit run id outside an active run are not run outputs.
        try:
            for model in client.search_logged_models(
                [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
            ):
                found[model.model_id] = model
        except MlflowException:
            pass  # a backend without logged models (MLflow 2 server) or without that filter
    return [(model, steps.get(model_id, 0)) for model_id, model in found.items()]


def _model_folders(client: MlflowClient, run: Run, artifact_path: str) -> list[str]:
    """The run's MLflow 2-style model folders (those holding ``MLmodel``): ``artifact_path`` first
    when it holds one, then the top-level folders that do."""
    def holds_model(folder: str) -> bool:
        return any(item.path.rsplit("/", 1)[-1] == "MLmodel" for item in client.list_artifacts(run.info.run_id, folder))

    top = [item.path for item in client.list_artifacts(run.info.run_id) if item.is_dir]
    asked = [artifact_path] if artifact_path not in top and holds_model(artifact_path) else []
    return asked + [folder for folder in top if holds_model(folder)]


def _artifact_folder(folders: list[str], artifact_path: str, asked: bool) -> str | None:
    """The model folder to register: the one named ``artifact_path``; without ``--artifact_path``,
    the run's only model folder whatever its name. A name the user gave is never swapped."""
    if artifact_path in folders:
        return artifact_path
    return folders[0] if not asked and len(folders) == 1 else None


def find_run_model(client: MlflowClient, run: Run, artifact_path: str | None = None) -> RunModel:
    """The model ``run`` logged: its logged model named ``artifact_path`` (latest step first), else
    its MLflow 2-style ``artifact_path`` folder. Without an ``artifact_path`` the name is
    ``model``, and a run whose READY logged models (or model folders) all bear one other name
    gives that one; a name the user gave is never swapped for another.

    Raises :class:`RunNotRegistrableError` naming what the run holds when none of these exists.
    """
    from mlflow.entities import LoggedModelStatus

    run_id = run.info.run_id
    asked, artifact_path = artifact_path is not None, artifact_path or "model"
    logged = _logged_models(client, run)
    ready = [(model, step) for model, step in logged if model.status == LoggedModelStatus.READY]
    named = [(model, step) for model, step in ready if model.name == artifact_path]
    only_one = not asked and len({model.name for model, _ in ready}) == 1
    candidates = named or (ready if only_one else [])
    if candidates:
        model, _ = max(candidates, key=lambda pair: (pair[1], pair[0].creation_timestamp or 0))
        return RunModel(source=f"models:/{model.model_id}", model_id=model.model_id)
    folders = _model_folders(client, run, artifact_path)
    folder = _artifact_folder(folders, artifact_path, asked)
    if folder is not None:
        return RunModel(source=f"{run.info.artifact_uri.rstrip('/')}/{folder}")
    held = sorted({model.name for model, _ in ready}) + [f"artifact folder {f}/" for f in folders]
    if held:
        several = "several models" if len(held) > 1 else "a model"
        raise RunNotRegistrableError(
            f"run {run_id} logged {several} ({', '.join(held)}) and none is named {artifact_path!r}: "
            "pass the one to register as --artifact_path"
        )
    pending = ", ".join(f"{model.name} ({model.status})" for model, _ in logged)
    raise RunNotRegistrableError(
        f"run {run_id} holds no model to register"
        + (f": its logged models are not READY: {pending}" if pending else "")
        + "; log one in the training code with mlflow.<flavor>.log_model(model, name='model')"
    )


def signature_input_names(client: MlflowClient, model: RunModel) -> list[str] | None:
    """The input column names of ``model``'s signature, read from its ``MLmodel`` file; None
    when it has no signature with named inputs. What a training profile must cover."""
    import tempfile

    import mlflow.artifacts
    from mlflow.models import Model

    location = client.get_logged_model(model.model_id).artifact_location if model.model_id else model.source
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/MLmodel", dst_path=folder, tracking_uri=client.tracking_uri
        )
        schema = Model.load(path).get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return schema.input_names()
