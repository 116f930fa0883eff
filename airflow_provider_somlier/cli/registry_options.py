"""The MLflow registry a lifecycle command talks to: the ``--tracking_uri`` option, checked before any work."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click


REGISTRY_PROBE_SECONDS = 10


def registry_errors(action: Callable[[], None]) -> Callable[[], None]:
    """MLflow's own errors as a named SoMLier error (a message, not a traceback)."""

    def run() -> None:
        from mlflow.exceptions import MlflowException

        from airflow_provider_somlier.errors import RegistryUnavailableError

        try:
            action()
        except MlflowException as exc:
            raise RegistryUnavailableError(f"MLflow failed: {exc.message}") from None

    return run



def tracking_uri_checked(tracking_uri: str | None) -> str:
    """The registry to use, checked before any work: a known scheme, and an HTTP server that answers.

    MLflow's client retries an unreachable server for minutes without a word; a probe of
    its ``/health`` endpoint with a short deadline says so at once instead.
    """
    import urllib.error
    import urllib.request

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from airflow_provider_somlier.errors import InvalidArgumentError, RegistryUnavailableError

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InvalidArgumentError("no MLflow registry: pass --tracking_uri or set MLFLOW_TRACKING_URI")
    if uri.startswith("sqlite:///"):
        # Building MLflow's store here would create the database's tables before the command's
        # own arguments are checked, and a typo in them would leave an empty registry behind:
        # only the folder is checked, and MLflow creates the file when the command first uses it.
        folder = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).parent
        if not folder.is_dir():
            raise InvalidArgumentError(f"tracking URI {uri!r} names a database in {str(folder)!r}, which is not a folder")
        return uri
    try:
        MlflowClient(tracking_uri=uri, registry_uri=uri)
    except MlflowException as exc:
        raise InvalidArgumentError(f"tracking URI {uri!r} is not one MLflow can use: {exc.message}") from None
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REGISTRY_PROBE_SECONDS).close()
        except urllib.error.HTTPError:
            pass  # it answered; auth or a proxy path is MLflow's to report
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)  # URLError wraps the socket's error
            if isinstance(reason, TimeoutError):
                raise RegistryUnavailableError(
                    f"MLflow at {uri} did not answer within {REGISTRY_PROBE_SECONDS} s: {reason}"
                ) from None
            raise RegistryUnavailableError(f"MLflow at {uri} cannot be reached: {reason}") from None
    return uri


def mlflow_client(tracking_uri: str | None):
    from mlflow import MlflowClient

    uri = tracking_uri_checked(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


tracking_option = click.option(
    "--tracking_uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI)."
)
