"""MLflowHook: resolve registry refs to concrete versions and load them as pyfunc models.

The tracking and registry URIs come from an Airflow connection and are handed to an
``MlflowClient`` and to ``download_artifacts`` explicitly: nothing here touches
``os.environ`` or MLflow's process-global tracking URI, so two tasks in one worker
can talk to two registries.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_somlier.errors import ModelNotFoundError, RegistryUnavailableError
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


# Loaded models, per worker process, keyed by (registry, name, version): a resolved
# version's artifacts never change, so a second task in the same worker skips the load.
_MODEL_CACHE: dict[tuple[str, str, str], PyFuncModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()


class MLflowHook(BaseHook):
    """Talks to an MLflow tracking server / model registry named by an Airflow connection.

    Connection (type ``mlflow``): put the tracking URI in *Host* as a full URI
    (``sqlite:////data/mlflow.db``, ``http://mlflow:5000``, ``databricks``), or a host
    name with *Schema* ``http``/``https`` and *Port*. Extras: ``registry_uri`` when the
    registry lives elsewhere than the tracking store.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "password", "extra"],
            "relabeling": {"host": "Tracking URI or host", "schema": "Scheme (http/https)"},
            "placeholders": {
                "host": "sqlite:////opt/mlflow/mlflow.db  or  mlflow.internal",
                "schema": "http",
                "port": "5000",
                "registry_uri": "leave empty to use the tracking URI",
            },
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {"registry_uri": StringField(lazy_gettext("Registry URI"), widget=BS3TextFieldWidget())}

    def __init__(self, mlflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id
        self._client: MlflowClient | None = None
        self._uris: tuple[str, str] | None = None

    # -- connection -------------------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        return self._resolve_uris()[0]

    @property
    def registry_uri(self) -> str:
        return self._resolve_uris()[1]

    def _resolve_uris(self) -> tuple[str, str]:
        if self._uris is None:
            conn = self.get_connection(self.mlflow_conn_id)
            host = (conn.host or "").strip()
            if "://" in host or host in ("databricks",):
                tracking = host
            elif host:
                scheme = conn.schema or "http"
                tracking = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
            else:
                tracking = conn.extra_dejson.get("tracking_uri", "")
            if not tracking:
                raise RegistryUnavailableError(
                    f"connection {self.mlflow_conn_id!r} names no MLflow tracking URI: set its Host "
                    "to a URI such as sqlite:////path/mlflow.db or http://mlflow:5000"
                )
            self._uris = (tracking, conn.extra_dejson.get("registry_uri") or tracking)
        return self._uris

    def get_conn(self) -> MlflowClient:
        """An ``MlflowClient`` bound to this connection's tracking and registry URIs."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    # -- registry ---------------------------------------------------------------------------
    def resolve(self, ref: str | ModelRef) -> ResolvedModel:
        """Pin ``name/version`` or ``name@alias`` to a concrete version and its run id."""
        from mlflow.exceptions import MlflowException

        model_ref = parse_model_ref(ref) if isinstance(ref, str) else ref
        client = self.get_conn()
        try:
            if model_ref.version is not None:
                version = client.get_model_version(model_ref.name, model_ref.version)
            else:
                version = client.get_model_version_by_alias(model_ref.name, model_ref.alias)
        except MlflowException as exc:
            raise self._translate(exc, model_ref) from exc
        except OSError as exc:
            raise RegistryUnavailableError(
                f"MLflow registry at {self.registry_uri} is unreachable: {exc}"
            ) from exc
        self.log.info("Resolved %s to %s version %s (run %s)", model_ref, version.name, version.version, version.run_id)
        return ResolvedModel(
            name=version.name,
            version=str(version.version),
            run_id=version.run_id or "",
            source_uri=version.source,
            requested=str(model_ref),
        )

    def _translate(self, exc: Exception, ref: ModelRef) -> Exception:
        code = getattr(exc, "error_code", "")
        message = str(exc)
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
        """Load a resolved version as a pyfunc model, once per worker process."""
        key = (self.registry_uri, model.name, model.version)
        with _MODEL_CACHE_LOCK:
            cached = _MODEL_CACHE.get(key)
        if cached is not None:
            self.log.info("Using cached %s version %s", model.name, model.version)
            return cached

        import tempfile

        import mlflow.artifacts
        import mlflow.pyfunc

        download_uri = self.get_conn().get_model_version_download_uri(model.name, model.version)
        local_dir = tempfile.mkdtemp(prefix=f"somlier-model-{model.version}-")
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=download_uri,
                dst_path=local_dir,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
            with warnings.catch_warnings():
                # skops (MLflow's default sklearn format) looks up ufuncs by probing every
                # loaded module's attributes; in a worker that includes Airflow's deprecated
                # import shims, each of which would emit (and log) a warning.
                warnings.simplefilter("ignore")
                # MLflow's requirement-mismatch check walks every installed distribution
                # (seconds in an Airflow image); the resolved version is logged instead.
                loaded = mlflow.pyfunc.load_model(path, suppress_warnings=True)
        except OSError as exc:
            raise RegistryUnavailableError(
                f"could not download {model.uri} from {download_uri}: {exc}"
            ) from exc
        with _MODEL_CACHE_LOCK:
            _MODEL_CACHE[key] = loaded
        return loaded
