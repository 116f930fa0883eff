"""The mlflow connection on real sockets: its form, auth through a gateway, and a bounded registry."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_somlier.devtools.sample_model import FEATURES, diabetes_frame, train_and_register
from airflow_provider_somlier.errors import InvalidArgumentError, RegistryUnavailableError
from airflow_provider_somlier.hooks.mlflow import MLflowHook

BASIC = "Basic " + base64.b64encode(b"ml-user:s3cret").decode()
BEARER = "Bearer tok-123"


class _Gateway(BaseHTTPRequestHandler):
    """An authenticating reverse proxy in front of the real MLflow server (as nginx would be)."""

    upstream: tuple[str, int]
    accepted: set[str]

    def _forward(self) -> None:
        if self.headers.get("Authorization") not in self.accepted:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(mlflow_server):
    registered = train_and_register(mlflow_server, "gated-ridge", alias="prod", experiment="connection-tests")
    return mlflow_server, registered


@pytest.fixture(scope="module")
def gateway(served):
    url, _ = served
    host, port = url.removeprefix("http://").split(":")
    handler = type("Gateway", (_Gateway,), {"upstream": (host, int(port)), "accepted": {BASIC, BEARER}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(autouse=True)
def abandoned_calls_end_soon(monkeypatch):
    """MLflow's own timeout (longer than any hook deadline here) and no retries of its own.

    A call the hook abandons at its deadline goes on under MLflow's settings (120 s and seven
    retries by default); bounded here, it ends seconds after its test instead of logging its
    retries into later tests' output, and the hook's deadline is still the one that fires.
    """
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "8")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture
def silent_port():
    """A socket that accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def hook_for(monkeypatch, conn_id: str, **conn) -> MLflowHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "mlflow", **conn}))
    return MLflowHook(mlflow_conn_id=conn_id)


def test_the_connection_form_is_declared_without_flask_appbuilder():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    fields = {name for name in manager.connection_form_widgets if name.startswith("extra__mlflow__")}
    assert fields == {f"extra__mlflow__{name}" for name in
                      ("registry_uri", "token", "request_timeout_seconds", "max_retries", "download_timeout_seconds")}
    assert manager.connection_form_widgets["extra__mlflow__token"].is_sensitive
    assert manager.field_behaviours["mlflow"]["relabeling"]["login"] == "Username (basic auth)"


@pytest.mark.parametrize("auth", [{"login": "ml-user", "password": "s3cret"}, {"extra": {"token": "tok-123"}}])
def test_basic_and_token_auth_resolve_and_load_through_a_gateway(served, gateway, monkeypatch, auth):
    _, registered = served
    hook = hook_for(monkeypatch, "mlflow_gated", host=gateway, **auth)
    assert hook.test_connection()[0] is True
    resolved = hook.resolve("gated-ridge@prod")
    assert resolved.version == registered.version
    model = hook.load_pyfunc(resolved)
    assert model.predict(diabetes_frame()[0][list(FEATURES)].head(2)).shape == (2,)
    assert not any(name.startswith("MLFLOW_TRACKING_") for name in os.environ)


def test_wrong_credentials_are_named_and_fail_at_once(served, gateway, monkeypatch):
    hook = hook_for(monkeypatch, "mlflow_wrong", host=gateway, login="ml-user", password="wrong")
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="refused the connection's credentials"):
        hook.resolve("gated-ridge@prod")
    assert time.monotonic() - started < 30
    ok, message = hook.test_connection()
    assert ok is False and "credentials" in message


def test_a_silent_registry_is_unavailable_within_the_bound(silent_port, monkeypatch):
    hook = hook_for(monkeypatch, "mlflow_silent", host=f"http://127.0.0.1:{silent_port}",
                    extra={"request_timeout_seconds": 1, "max_retries": 1})
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="no answer within 1 s"):
        hook.resolve("any-model@prod")
    assert time.monotonic() - started < hook.settings.bound_seconds + 10


def test_a_closed_port_is_unavailable_within_the_bound(closed_port, monkeypatch):
    hook = hook_for(monkeypatch, "mlflow_closed", host="127.0.0.1", port=closed_port,
                    extra={"request_timeout_seconds": 2, "max_retries": 0})
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match=f"127.0.0.1:{closed_port}"):
        hook.resolve("any-model/1")
    assert time.monotonic() - started < hook.settings.bound_seconds + 10
    assert hook.test_connection()[0] is False


def test_a_silent_registry_does_not_slow_other_connections_in_the_process(served, silent_port, monkeypatch):
    url, registered = served
    stuck = hook_for(monkeypatch, "mlflow_stuck", host=f"http://127.0.0.1:{silent_port}",
                     extra={"request_timeout_seconds": 5, "max_retries": 0})
    healthy = hook_for(monkeypatch, "mlflow_healthy", host=url)
    environment = dict(os.environ)
    errors = []
    waiting = threading.Thread(target=lambda: errors.append(pytest.raises(RegistryUnavailableError, stuck.resolve, "m/1")))
    waiting.start()
    assert healthy.resolve("gated-ridge@prod").version == registered.version
    assert healthy.settings.request_timeout_seconds == 30 and healthy.settings.max_retries == 2
    waiting.join()
    assert len(errors) == 1 and dict(os.environ) == environment


@pytest.mark.parametrize("extra, message", [
    ({"request_timeout_seconds": "soon"}, "extra request_timeout_seconds is 'soon'"),
    ({"request_timeout_seconds": 0}, "a positive number of seconds"),
    ({"max_retries": -1}, "extra max_retries is -1, expected a non-negative integer"),
    ({"max_retries": "2.5"}, "extra max_retries is '2.5'"),
])
def test_bad_extras_are_named_before_any_call(monkeypatch, extra, message):
    hook = hook_for(monkeypatch, "mlflow_bad", host="http://127.0.0.1:9", extra=extra)
    with pytest.raises(InvalidArgumentError, match=message):
        hook.resolve("m/1")


def test_calls_without_credentials_never_run_while_another_connections_are_set():
    from airflow_provider_somlier.hooks.mlflow_connection import MLflowSettings, credentials

    gated = MLflowSettings("http://a:5000", "http://a:5000", token="tok-123")
    plain = MLflowSettings("http://b:5000", "http://b:5000")
    with credentials(plain, 1), credentials(plain, 1):  # side by side
        pass
    with credentials(gated, 1):
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == "tok-123"
        seen = []
        other = threading.Thread(target=lambda: seen.append(pytest.raises(RegistryUnavailableError, _enter, plain)))
        other.start()
        other.join()
        assert len(seen) == 1
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ
    with credentials(plain, 1):
        assert "MLFLOW_TRACKING_TOKEN" not in os.environ


def _enter(settings):
    from airflow_provider_somlier.hooks.mlflow_connection import credentials

    with credentials(settings, 0.2):
        pass
