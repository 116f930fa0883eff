"""MLflowHook: resolve registry refs to concrete versions and load them as pyfunc models.

The tracking and registry URIs come from an Airflow connection and are handed to an
``MlflowClient`` and to ``download_artifacts`` explicitly: nothing here sets MLflow's
process-global tracking URI or its HTTP timeout/retry variables, so two tasks in one
worker can talk to two registries with two deadlines. (Credentials are the exception
MLflow imposes: it reads them only from its environment; see ``mlflow_connection``.)
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_somlier.errors import InvalidArgumentError, ModelNotFoundError, RegistryUnavailableError
from airflow_provider_somlier.hooks.mlflow_connection import MLflowSettings, credentials, settings_from_connection
from airflow_provider_somlier.refs import ModelRef, parse_model_ref

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.pyfunc import PyFuncModel


@dataclass(frozen=True)
class ResolvedModel:
    """A registry ref pinned to one version: what every prediction row records."""

    name: str
    version: str
    run_id: str
    source_uri: str
    requested: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


T = TypeVar("T")


def _within(function: Callable[[], T], seconds: float, settings: MLflowSettings) -> tuple[bool, Any, BaseException | None]:
    """(finished, value, error) of ``function()`` run in a daemon thread given ``seconds`` to finish."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(run,), name="somlier-mlflow-call", daemon=True)
    try:
        with credentials(settings, seconds):  # held by this thread, so released at the deadline
            worker.start()
            worker.join(seconds)
    except RegistryUnavailableError as exc:
        return True, None, exc
    if worker.is_alive():
        return False, None, None
    return True, outcome.get("value"), outcome.get("error")


_HTTP_STATUS = re.compile(r"error code (\d{3})")


def _is_transport_failure(error: BaseException | None) -> bool:
    """A failure to reach the registry (worth a retry), as opposed to an answer from it."""
    import requests

    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, (OSError, requests.exceptions.RequestException, RegistryUnavailableError)):
            return True
        message = str(seen)
        if "failed with exception" in message or "Max retries exceeded" in message:
            return True
        status = _HTTP_STATUS.search(message)
        if status and (status[1].startswith("5") or status[1] == "429"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class _CacheHold:
    """A version in the host's model cache, kept (its use lock held) while this process keeps this."""

    cache: Any  # model_cache.ModelCache
    entry: str
    version: Any  # model_cache.CachedVersion: holds the lock

    @property
    def downloaded(self) -> bool:
        return self.version.downloaded


# Loaded models, per process, keyed by (registry, name, version, source): a resolved
# version's artifacts never change, so a second task in the same process skips the load.
# Each entry keeps what holds the version's files on disk (the host cache's shared lock,
# or a temporary folder) for as long as the process lives.
_MODEL_CACHE: dict[tuple[str, str, str, str], tuple[PyFuncModel, Any]] = {}
_MODEL_CACHE_LOCK = threading.Lock()


class MLflowHook(BaseHook):
    """Talks to an MLflow tracking server / model registry named by an Airflow connection.

    Connection (type ``mlflow``): put the tracking URI in *Host* as a full URI
    (``sqlite:////data/mlflow.db``, ``http://mlflow:5000``, ``databricks``), or a host
    name with *Schema* ``http``/``https`` and *Port*. *Login*/*Password* for basic auth or
    extra ``token`` for bearer auth; extras ``registry_uri``, ``request_timeout_seconds``,
    ``max_retries`` and ``download_timeout_seconds`` (see ``mlflow_connection``). Every
    call has a deadline: a registry that is down or silent raises
    :class:`RegistryUnavailableError` within the connection's bound, enforced per call
    here, so the setting of one connection never changes another's.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id
        self._client: MlflowClient | None = None
        self._settings: MLflowSettings | None = None

    # -- connection -------------------------------------------------------------------------
    @property
    def settings(self) -> MLflowSettings:
        if self._settings is None:
            self._settings = settings_from_connection(self.mlflow_conn_id, self.get_connection(self.mlflow_conn_id))
        return self._settings

    @property
    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    @property
    def registry_uri(self) -> str:
        return self.settings.registry_uri

    def get_conn(self) -> MlflowClient:
        """An ``MlflowClient`` bound to this connection's tracking and registry URIs."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def call(self, what: str, function: Callable[[], T], *, timeout_seconds: float | None = None) -> T:
        """``function()`` within the connection's deadline, retried on timeouts and failed connects.

        Each attempt runs in its own daemon thread and is abandoned at the deadline: MLflow's
        own HTTP timeout and retries are process-wide environment settings (minutes by
        default), so they are left alone and the bound is enforced here instead.
        """
        settings = self.settings
        deadline = timeout_seconds or settings.request_timeout_seconds
        failure = ""
        for attempt in range(settings.max_retries + 1):
            if attempt:
                time.sleep(min(2.0 ** (attempt - 1), 8.0))
            done, value, error = _within(function, deadline, settings)
            if done and error is None:
                return value
            if done and not _is_transport_failure(error):
                raise error
            failure = f"no answer within {deadline:g} s" if not done else f"{type(error).__name__}: {error}"
            self.log.warning("MLflow %s at %s failed (attempt %d): %s", what, self.registry_uri, attempt + 1, failure)
        raise RegistryUnavailableError(
            f"MLflow registry at {self.registry_uri} is unavailable: {what} failed "
            f"{settings.max_retries + 1} time(s), last: {failure[:300]} (connection {self.mlflow_conn_id!r}: "
            "raise request_timeout_seconds/max_retries if the registry is just slow)"
        )

    def test_connection(self) -> tuple[bool, str]:
        """What the connection form's *Test* button shows: can the registry be listed within the bound."""
        try:
            self.call("listing registered models", lambda: self.get_conn().search_registered_models(max_results=1))
        except Exception as exc:  # noqa: BLE001 - every failure is the answer to show
            shown = self._translate(exc, None)
            return False, f"{type(shown).__name__}: {shown}"
        return True, f"Connected to the MLflow registry at {self.registry_uri}"

    # -- registry ---------------------------------------------------------------------------
    def resolve(self, ref: str | ModelRef) -> ResolvedModel:
        """Pin ``name/version`` or ``name@alias`` to a concrete version and its run id."""
        from mlflow.exceptions import MlflowException

        model_ref = parse_model_ref(ref) if isinstance(ref, str) else ref
        client = self.get_conn()
        try:
            if model_ref.version is not None:
                version = self.call(
                    f"getting {model_ref}", lambda: client.get_model_version(model_ref.name, model_ref.version)
                )
            else:
                version = self.call(
                    f"resolving {model_ref}", lambda: client.get_model_version_by_alias(model_ref.name, model_ref.alias)
                )
        except MlflowException as exc:
            raise self._translate(exc, model_ref) from exc
        self.log.info("Resolved %s to %s version %s (run %s)", model_ref, version.name, version.version, version.run_id)
        return ResolvedModel(
            name=version.name,
            version=str(version.version),
            run_id=version.run_id or "",
            source_uri=version.source,
            requested=str(model_ref),
        )

    def _translate(self, exc: Exception, ref: ModelRef | None) -> Exception:
        code = getattr(exc, "error_code", "")
        message = str(exc)
        status = _HTTP_STATUS.search(message)
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED") or (status and status[1] in ("401", "403")):
            return InvalidArgumentError(
                f"MLflow at {self.registry_uri} refused the connection's credentials (connection "
                f"{self.mlflow_conn_id!r}): check its Login/Password or token extra"
            )
        if ref is None:
            return exc
        if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message.lower() or "does not exist" in message.lower():
            what = f"version {ref.version}" if ref.version else f"alias {ref.alias!r}"
            return ModelNotFoundError(
                f"model {ref.name!r} {what} is not in the registry at {self.registry_uri}: "
                f"check the name, and that the version exists or the alias is set ({ref})"
            )
        if "connect" in message.lower() or "max retries" in message.lower() or "unable to" in message.lower():
            return RegistryUnavailableError(f"MLflow registry at {self.registry_uri} is unreachable: {message}")
        return exc

    # -- loading ----------------------------------------------------------------------------
    def load_pyfunc(self, model: ResolvedModel) -> PyFuncModel:
        """Load a resolved version as a pyfunc model: downloaded once per host, loaded once per process."""
        key = (self.registry_uri, model.name, model.version, model.source_uri)
        with _MODEL_CACHE_LOCK:
            cached = _MODEL_CACHE.get(key)
        if cached is not None:
            self.log.info("Using %s version %s, already loaded in this process", model.name, model.version)
            return cached[0]

        path, holder = self._local_copy(model)
        try:
            loaded = _load_files(path)
        except Exception as exc:  # noqa: BLE001 - a damaged cached copy: any failure to read it
            if getattr(holder, "downloaded", True):
                raise  # just downloaded: the version itself does not load
            self.log.warning("%s version %s did not load from the host's model cache (%s: %s); downloading it "
                             "again", model.name, model.version, type(exc).__name__, exc)
            holder.cache.discard(holder.entry)
            path, holder = self._local_copy(model)
            loaded = _load_files(path)
        with _MODEL_CACHE_LOCK:
            _MODEL_CACHE[key] = (loaded, holder)
        return loaded

    def _local_copy(self, model: ResolvedModel) -> tuple[Path, Any]:
        """The version's files on this host (the host cache, or a temporary folder when it is off)."""
        import tempfile

        import mlflow.artifacts

        from airflow_provider_somlier.model_cache import ModelCache, ModelCacheUnusableError, cache_settings

        def download(folder: Path) -> Path:
            uri = self.call(
                f"locating {model.uri}",
                lambda: self.get_conn().get_model_version_download_uri(model.name, model.version),
            )
            try:
                return Path(self.call(
                    f"downloading {model.uri}",
                    lambda: mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=str(folder),
                        tracking_uri=self.tracking_uri, registry_uri=self.registry_uri,
                    ),
                    timeout_seconds=self.settings.download_timeout_seconds,
                ))
            except OSError as exc:
                raise RegistryUnavailableError(f"could not download {model.uri} from {uri}: {exc}") from exc

        def temporary() -> tuple[Path, Any]:
            folder = tempfile.TemporaryDirectory(prefix=f"somlier-model-{model.version}-")  # removed at exit
            return download(Path(folder.name)), folder

        root, max_bytes = cache_settings()
        if max_bytes == 0:
            return temporary()
        cache = ModelCache(root, max_bytes)
        entry = cache.entry_name(
            registry_uri=self.registry_uri, name=model.name, version=model.version, source=model.source_uri
        )
        try:
            version = cache.get(entry, download, wait_seconds=self.settings.download_timeout_seconds)
        except ModelCacheUnusableError as exc:
            self.log.warning("%s; downloading %s into a temporary folder instead ([somlier] model_cache_dir sets "
                             "another folder)", exc.strerror, model.uri)
            return temporary()
        self.log.info(
            "%s version %s %s %s", model.name, model.version,
            "downloaded into the host's model cache at" if version.downloaded else "found in the host's model cache at",
            version.path,
        )
        return version.path, _CacheHold(cache, entry, version)

    def load_run_json(self, run_id: str, artifact_path: str) -> Any | None:
        """A JSON artifact of a run (a training profile), or None when the run has no such artifact."""
        import json
        import tempfile

        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        if not run_id:
            return None
        with tempfile.TemporaryDirectory(prefix="somlier-artifact-") as folder:
            try:
                path = self.call(
                    f"downloading {artifact_path} of run {run_id}",
                    lambda: mlflow.artifacts.download_artifacts(
                        run_id=run_id, artifact_path=artifact_path, dst_path=folder, tracking_uri=self.tracking_uri
                    ),
                    timeout_seconds=self.settings.download_timeout_seconds,
                )
            except (MlflowException, OSError) as exc:
                self.log.info("Run %s has no %s: %s", run_id, artifact_path, exc)
                return None
            with open(path) as artifact:
                return json.load(artifact)


def _load_files(path: Path) -> PyFuncModel:
    """The pyfunc model in ``path``."""
    import mlflow.pyfunc

    if _saved_with_skops(path):
        from airflow_provider_somlier.skops_import import import_skops_io

        import_skops_io()
    with warnings.catch_warnings():
        # skops (MLflow's default sklearn format) looks up ufuncs by probing every
        # loaded module's attributes; in a worker that includes Airflow's deprecated
        # import shims, each of which would emit (and log) a warning.
        warnings.simplefilter("ignore")
        # MLflow's requirement-mismatch check walks every installed distribution
        # (seconds in an Airflow image); the resolved version is logged instead.
        return mlflow.pyfunc.load_model(str(path), suppress_warnings=True)


def _saved_with_skops(path: Path) -> bool:
    """Whether the model's scikit-learn flavor was saved in skops format (MLflow 3's default)."""
    import yaml

    try:
        flavors = yaml.safe_load((path / "MLmodel").read_text()).get("flavors") or {}
    except (OSError, AttributeError, yaml.YAMLError):
        return False
    return (flavors.get("sklearn") or {}).get("serialization_format") == "skops"
