"""A local stand-in for a Kubernetes API server and its one node, for the KubernetesExecutor end to end.

No Kubernetes control plane installs from the package registries, so this edge is served
the way the tests serve GitHub's: the REST shapes the Kubernetes Python clients use, on
loopback, with Kubernetes' semantics where the executor depends on them —

- discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``) for the dynamic client;
- pods: create, get, list and watch (label selectors with ``=``, ``!=``, ``in``, ``notin``
  and existence; field selectors on ``status.phase`` and ``metadata.name``), merge patch,
  delete, and ``/log``;
- watches that start from a resource version (``0``: the current pods as ``ADDED``), and
  that turn a pod leaving the selector into ``DELETED`` and one entering it into ``ADDED``,
  as the API server's watch cache does.

Its node runs each pod's ``base`` container as a local process — the container's
``command`` and ``args`` with the image's environment (``environment``), the container's
``env`` values, ``HOSTNAME`` set to the pod's name and ``KUBERNETES_SERVICE_HOST``/``PORT``
pointing here, under ``pod_shim`` so that the container's processes live and die together —
and reports the pod's phase as the kubelet does: ``Pending``, ``Running``,
then ``Succeeded`` or ``Failed`` with the exit code. A container whose ``env`` takes a value
from a Secret stays ``Pending`` with ``CreateContainerConfigError`` (no Secrets here). A
deleted running pod gets its grace period (SIGTERM, then SIGKILL to every process in it);
:meth:`KubernetesApi.kill` kills one as a lost node would.
It records every pod as created (:attr:`KubernetesApi.created`) — requests and limits
included — but schedules nothing against them and enforces no limit.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_somlier.devtools.airflow_local import kill_tree
from airflow_provider_somlier.devtools.pidfiles import PidFiles

DEFAULT_GRACE_SECONDS = 30
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_POD_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+))?(/log)?$")
_DISCOVERY = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-somlier-local", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
         "verbs": ["create", "delete", "get", "list", "patch", "watch"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    ]},
}


class KubernetesApiError(Exception):
    """A request the API server refuses: answered as a ``Status`` object with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def _pid_name(namespace: str, name: str) -> str:
    return f"pod-{namespace}-{name}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_requirements(selector: str) -> list[str]:
    """``a=b,c in (d,e)`` → ``["a=b", "c in (d,e)"]``: commas inside parentheses belong to a set."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def label_selector_matches(selector: str | None, labels: dict[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a Kubernetes label selector (equality-, set-based and existence)."""
    labels = labels or {}
    for requirement in _split_requirements(selector or ""):
        if found := re.fullmatch(r"(\S+)\s+(notin|in)\s+\((.*)\)", requirement):
            key, operator, values = found[1], found[2], {v.strip() for v in found[3].split(",")}
            inside = key in labels and labels[key] in values
            if inside != (operator == "in"):
                return False
        elif found := re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", requirement):
            key, operator, value = found[1], found[2], found[3]
            if (labels.get(key) == value) != (operator != "!="):
                return False
        elif found := re.fullmatch(r"!(\S+)", requirement):
            if found[1] in labels:
                return False
        elif requirement not in labels:
            return False
    return True


def field_selector_matches(selector: str | None, pod: dict[str, Any]) -> bool:
    """Whether ``pod`` satisfies a field selector on ``status.phase``, ``metadata.name`` or ``metadata.namespace``."""
    fields = {"status.phase": pod.get("status", {}).get("phase"), "metadata.name": pod["metadata"]["name"],
              "metadata.namespace": pod["metadata"]["namespace"]}
    for requirement in _split_requirements(selector or ""):
        found = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", requirement)
        if found is None or found[1] not in fields:
            raise KubernetesApiError(400, "BadRequest", f"field selector {requirement!r} is not supported")
        if (fields[found[1]] == found[3]) != (found[2] != "!="):
            return False
    return True


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386): dicts merge, ``None`` removes, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


@dataclass
class _Event:
    version: int
    type: str  # ADDED | MODIFIED | DELETED
    pod: dict[str, Any]
    before: dict[str, Any] | None  # the pod as it was, for MODIFIED (a selector can stop or start matching)


@dataclass
class KubernetesApi:
    """The API server and node: :meth:`start` serves on ``127.0.0.1:port``; :meth:`stop` ends every pod."""

    folder: Path
    environment: dict[str, str]
    port: int = 0
    pids: PidFiles | None = None  # each running pod's shim is recorded here, so a killed demo's pods are stopped next time
    created: list[dict[str, Any]] = field(default_factory=list)
    _pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _processes: dict[tuple[str, str], subprocess.Popen] = field(default_factory=dict)
    _events: list[_Event] = field(default_factory=list)
    _version: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None
    _stopping: bool = False
    _watches_closed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubernetesApi:
        api = self

        class Handler(_Handler):
            server_api = api

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="kubernetes-api", daemon=True).start()
        return self

    def stop(self) -> None:
        """End every pod's process (TERM, then KILL after 5 s), then the server and its watches."""
        with self._changed:
            self._stopping = True
            processes = dict(self._processes)
            self._changed.notify_all()
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for (namespace, name), process in processes.items():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                kill_tree(process.pid)
                process.wait(5)
            if self.pids is not None:
                self.pids.forget(_pid_name(namespace, name))
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def close_watches(self) -> None:
        """End every watch and refuse new ones (503), as an API server going away does.

        The KubernetesExecutor's watcher process ignores SIGTERM and re-opens a watch that
        ends cleanly; refused, it exits. Called before the scheduler is stopped, so the
        scheduler's exit does not wait for its watcher until it is killed.
        """
        with self._changed:
            self._watches_closed = True
            self._changed.notify_all()

    @property
    def watches_closed(self) -> bool:
        return self._watches_closed

    def write_kubeconfig(self, path: Path, namespace: str) -> Path:
        """A kubeconfig whose current context is this server, as ``kubectl`` and the clients read it."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "somlier-local",
            "clusters": [{"name": "somlier-local", "cluster": {"server": self.url}}],
            "users": [{"name": "somlier-local", "user": {"token": "local"}}],
            "contexts": [{"name": "somlier-local",
                          "context": {"cluster": "somlier-local", "user": "somlier-local", "namespace": namespace}}],
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- what tests look at -------------------------------------------------------------------

    def pods(self) -> list[dict[str, Any]]:
        """Every pod that exists now (deleted ones are gone, as in Kubernetes)."""
        with self._changed:
            return copy.deepcopy(list(self._pods.values()))

    def pid(self, namespace: str, name: str) -> int | None:
        """The pid of a running pod's container (its shim, beneath which all its processes run), or None."""
        with self._changed:
            process = self._processes.get((namespace, name))
            return process.pid if process is not None and process.poll() is None else None

    def log_path(self, namespace: str, name: str) -> Path:
        return self.folder / "pods" / namespace / name / "container.log"

    # -- the API ------------------------------------------------------------------------------

    def _record(self, kind: str, pod: dict[str, Any], before: dict[str, Any] | None = None) -> None:
        """Give ``pod`` the next resource version and tell the watches (the caller holds the lock)."""
        self._version += 1
        pod["metadata"]["resourceVersion"] = str(self._version)
        self._events.append(_Event(self._version, kind, copy.deepcopy(pod), before))
        self._changed.notify_all()

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body.setdefault("metadata", {})
        name = metadata.get("name") or ""
        if not _NAME.match(name):
            raise KubernetesApiError(422, "Invalid", f"Pod {name!r} is invalid: metadata.name: a lowercase RFC 1123 "
                                                     "subdomain must consist of lower case alphanumeric characters")
        containers = body.get("spec", {}).get("containers") or []
        if not containers:
            raise KubernetesApiError(422, "Invalid", f"Pod {name!r} is invalid: spec.containers: Required value")
        with self._changed:
            if self._stopping:
                raise KubernetesApiError(503, "ServiceUnavailable", "the API server is shutting down")
            if (namespace, name) in self._pods:
                raise KubernetesApiError(409, "AlreadyExists", f'pods "{name}" already exists')
            self.created.append(copy.deepcopy(body))
            metadata.update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now())
            body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            self._pods[(namespace, name)] = body
            self._record("ADDED", body)
            answer = copy.deepcopy(body)
        threading.Thread(target=self._run, args=(namespace, name), name=f"node-{name}", daemon=True).start()
        return answer

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        with self._changed:
            if (namespace, name) not in self._pods:
                raise KubernetesApiError(404, "NotFound", f'pods "{name}" not found')
            return copy.deepcopy(self._pods[(namespace, name)])

    def list(self, namespace: str | None, labels: str | None, fields: str | None) -> dict[str, Any]:
        with self._changed:
            items = [copy.deepcopy(pod) for (ns, _), pod in self._pods.items()
                     if (namespace is None or ns == namespace) and label_selector_matches(labels, pod["metadata"].get(
                         "labels")) and field_selector_matches(fields, pod)]
            return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self._version)},
                    "items": items}

    def patch(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise KubernetesApiError(415, "UnsupportedMediaType", "only merge patches (a JSON object) are served here")
        with self._changed:
            pod = self._pods.get((namespace, name))
            if pod is None:
                raise KubernetesApiError(404, "NotFound", f'pods "{name}" not found')
            before = copy.deepcopy(pod)
            _merge(pod, {"metadata": patch.get("metadata", {})} if "metadata" in patch else {})
            self._record("MODIFIED", pod, before)
            return copy.deepcopy(pod)

    def delete(self, namespace: str, name: str, grace_seconds: float | None) -> dict[str, Any]:
        with self._changed:
            pod = self._pods.get((namespace, name))
            if pod is None:
                raise KubernetesApiError(404, "NotFound", f'pods "{name}" not found')
            process = self._processes.get((namespace, name))
            pod["metadata"].setdefault("deletionTimestamp", _now())
            if process is None or process.poll() is not None:
                del self._pods[(namespace, name)]
                self._record("DELETED", pod)
                return copy.deepcopy(pod)
            before = copy.deepcopy(pod)
            self._record("MODIFIED", pod, before)
            answer = copy.deepcopy(pod)
        grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        threading.Thread(target=self._terminate, args=(process, grace), daemon=True).start()
        return answer  # the node's thread removes the pod when its process has ended

    # -- the node -----------------------------------------------------------------------------

    def _set_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
        with self._changed:
            pod = self._pods.get((namespace, name))
            if pod is None:
                return None
            before = copy.deepcopy(pod)
            pod["status"].update(status)
            self._record("MODIFIED", pod, before)
            return pod

    def _run(self, namespace: str, name: str) -> None:
        with self._changed:
            pod = copy.deepcopy(self._pods[(namespace, name)])
        container = pod["spec"]["containers"][0]
        from_secrets = [e["name"] for e in container.get("env") or [] if "valueFrom" in e]
        if from_secrets:
            waiting = {"reason": "CreateContainerConfigError",
                       "message": f"env {', '.join(from_secrets)} take values from Secrets, which this node has none of"}
            self._set_status(namespace, name, {"containerStatuses": [
                {"name": container["name"], "ready": False, "restartCount": 0, "image": container.get("image", ""),
                 "imageID": "", "state": {"waiting": waiting}}]})
            return
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        env = {**self.environment, **{e["name"]: str(e.get("value", "")) for e in container.get("env") or []},
               "HOSTNAME": name, "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}
        log = self.log_path(namespace, name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with self._changed:
            if self._stopping or (namespace, name) not in self._pods:
                return
            with log.open("ab") as out:
                try:
                    process = subprocess.Popen([sys.executable, "-m", "airflow_provider_somlier.devtools.pod_shim",
                                                *argv], env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True)
                except OSError as exc:
                    out.write(f"cannot start {argv[:1]}: {exc}\n".encode())
                    process = None
            if process is not None:
                self._processes[(namespace, name)] = process
                if self.pids is not None:
                    self.pids.record(_pid_name(namespace, name), process.pid)
        started = _now()
        if process is None:
            self._finish(namespace, name, container, 128, started)
            return
        self._set_status(namespace, name, {"phase": "Running", "startTime": started, "containerStatuses": [
            {"name": container["name"], "ready": True, "restartCount": 0, "started": True,
             "image": container.get("image", ""), "imageID": "", "state": {"running": {"startedAt": started}}}]})
        code = process.wait()
        self._finish(namespace, name, container, code, started)

    def _finish(self, namespace: str, name: str, container: dict[str, Any], code: int, started: str) -> None:
        exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as the kubelet reports
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "startedAt": started, "finishedAt": _now()}
        with self._changed:
            self._processes.pop((namespace, name), None)
            if self.pids is not None:
                self.pids.forget(_pid_name(namespace, name))
            pod = self._pods.get((namespace, name))
            if pod is None:
                return
            before = copy.deepcopy(pod)
            pod["status"].update(phase="Succeeded" if exit_code == 0 else "Failed", containerStatuses=[
                {"name": container["name"], "ready": False, "restartCount": 0, "started": False,
                 "image": container.get("image", ""), "imageID": "", "state": {"terminated": terminated}}])
            if "deletionTimestamp" in pod["metadata"]:  # deleted while it ran: gone once its process ended
                del self._pods[(namespace, name)]
                self._record("DELETED", before)
            else:
                self._record("MODIFIED", pod, before)

    @staticmethod
    def _terminate(process: subprocess.Popen, grace: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)  # to the container's first process, which forwards it
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)

    def kill(self, namespace: str, name: str) -> list[int]:
        """SIGKILL every process of a running pod's container, as a lost node or the OOM killer does.

        The pod then fails with exit code 137. Returns the pids that were alive.
        """
        with self._changed:
            process = self._processes.get((namespace, name))
        return kill_tree(process.pid) if process is not None else []

    # -- watches ------------------------------------------------------------------------------

    def watch(self, namespace: str | None, labels: str | None, fields: str | None, since: str | None,
              timeout: float) -> Iterator[dict[str, Any] | None]:
        """Events after resource version ``since`` (``0``/none: the current pods first, as ``ADDED``).

        Yields None while there is nothing to send (so the caller can notice a closed client)
        and ends after ``timeout`` seconds or when the server stops.
        """

        def passes(pod: dict[str, Any] | None) -> bool:
            return (pod is not None and (namespace is None or pod["metadata"]["namespace"] == namespace)
                    and label_selector_matches(labels, pod["metadata"].get("labels"))
                    and field_selector_matches(fields, pod))

        deadline = time.monotonic() + timeout
        with self._changed:
            if not since or since == "0":
                position = self._version
                initial = [copy.deepcopy(p) for p in self._pods.values() if passes(p)]
            else:
                position = int(since)
                initial = []
        for pod in initial:
            yield {"type": "ADDED", "object": pod}
        while time.monotonic() < deadline:
            with self._changed:
                if self._stopping or self._watches_closed:
                    return
                fresh = [e for e in self._events if e.version > position]
                if not fresh:
                    self._changed.wait(1)
                    fresh = [e for e in self._events if e.version > position]
            for event in fresh:
                position = event.version
                sent = _as_seen(event, passes)
                if sent is not None:
                    yield sent
            if not fresh:
                yield None


def _as_seen(event: _Event, passes: Any) -> dict[str, Any] | None:
    """What a watch with a selector sees of ``event``: entering is ADDED, leaving is DELETED (the old object)."""
    now, before = passes(event.pod), passes(event.before) if event.before is not None else None
    if event.type != "MODIFIED" or before is None:
        return {"type": event.type, "object": event.pod} if now else None
    if now:
        return {"type": "MODIFIED" if before else "ADDED", "object": event.pod}
    if before:
        old = copy.deepcopy(event.before)
        old["metadata"]["resourceVersion"] = str(event.version)
        return {"type": "DELETED", "object": old}
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_api: KubernetesApi

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, error: KubernetesApiError) -> None:
        self._send(error.code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": str(error), "reason": error.reason, "code": error.code})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise KubernetesApiError(400, "BadRequest", "the request body is not JSON") from None

    def _route(self, method: str) -> None:
        api = self.server_api
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        try:
            if method == "GET" and url.path in _DISCOVERY:
                return self._send(200, _DISCOVERY[url.path])
            if url.path == "/api/v1/pods" and method == "GET":
                return self._list_or_watch(None, query)
            found = _POD_PATH.match(url.path)
            if found is None:
                raise KubernetesApiError(404, "NotFound", f"the server could not find the requested resource {url.path}")
            namespace, name, log = found[1], found[2], found[3]
            if name is None and method == "GET":
                return self._list_or_watch(namespace, query)
            if name is None and method == "POST":
                return self._send(201, api.create(namespace, self._body()))
            if log and method == "GET":
                api.get(namespace, name)
                path = api.log_path(namespace, name)
                text = path.read_bytes() if path.exists() else b""
                if "tailLines" in query:
                    text = b"".join(text.splitlines(keepends=True)[-int(query["tailLines"]):])
                return self._send(200, text, "text/plain")
            if name and method == "GET":
                return self._send(200, api.get(namespace, name))
            if name and method == "PATCH":
                return self._send(200, api.patch(namespace, name, self._body()))
            if name and method == "DELETE":
                body = self._body()
                grace = query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
                return self._send(200, api.delete(namespace, name, None if grace is None else float(grace)))
            raise KubernetesApiError(405, "MethodNotAllowed", f"{method} is not allowed on {url.path}")
        except KubernetesApiError as error:
            self._fail(error)

    def _list_or_watch(self, namespace: str | None, query: dict[str, str]) -> None:
        labels, fields = query.get("labelSelector"), query.get("fieldSelector")
        if query.get("watch", "").lower() not in ("true", "1"):
            return self._send(200, self.server_api.list(namespace, labels, fields))
        if self.server_api.watches_closed:
            raise KubernetesApiError(503, "ServiceUnavailable", "the API server is shutting down: no new watches")
        field_selector_matches(fields, {"metadata": {"name": "", "namespace": ""}})  # refuse a bad one up front
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        timeout = float(query.get("timeoutSeconds") or 1800)
        try:
            for event in self.server_api.watch(namespace, labels, fields, query.get("resourceVersion"), timeout):
                if event is None:
                    if self._client_left():
                        return
                    continue
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _client_left(self) -> bool:
        """Whether the client closed its end (a watch it gave up on must not hold a thread for an hour)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_GET(self) -> None:  # noqa: N802 - the http.server names
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._route("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")
