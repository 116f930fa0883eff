"""The Flask application factory: routes only; loading, storage and switching live elsewhere."""

from __future__ import annotations

import fcntl
import hmac
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from online_server import access, metrics, wire
from online_server.guard import JsonGuard
from online_server.hot_path import PREDICT_FAILURE, ResultHotPath
from online_server.load_deadline import RETIRE_WORKER, LoadTimeoutError, within
from online_server.models import BadInputError, ModelFailedError, ModelLoadError, load_predictor
from online_server.settings import Settings
from online_server.smoke import smoke_test
from online_server.state import ServingState, as_path
from online_server.storage import ArchiveTooLargeError, StorageError, latest_model_zip, storage_from_settings
from online_server.swap import Current, ForeignPointerError, UnnamedPointerError, UnsafeArchiveError, prune, unpack

NEEDS_SOURCES = ("custom", "tf")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    state = ServingState(settings)
    app.extensions["somlier_state"] = state
    work_dir = Path(settings.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        if state.pointer.read().model:  # a (re)started worker answers its first request without unpickling
            state.ensure_loaded()
    except ForeignPointerError as exc:  # another model's pointer is never served; requests and /readyz say why
        app.logger.error("not serving the current model: %s", exc)
    except Exception:  # noqa: BLE001 - the worker still starts; requests and /readyz report it
        app.logger.exception("the current model did not load at start")

    def error(status: int, code: str, message: str) -> Response:
        if status >= 500 or code in ("BAD_INPUT", "MODEL_REJECTED"):  # the model's words: logged whole, cut for the client
            app.logger.warning("%s %s: %s", status, code, message)
        response = jsonify({"error_code": code, "message": wire.public_message(message)})
        response.status_code = status
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = {413: "PAYLOAD_TOO_LARGE", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.code, "BAD_REQUEST")
        return error(exc.code or 400, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error(500, "INTERNAL_ERROR", f"{type(exc).__name__} (see the server log)")

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        version = g.get("model_version", "")  # set from the predictor that answered, never read afterwards
        for name, value in access.response_headers(version):
            response.headers[name] = value
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        access.record(request.method, request.path, request.endpoint or "unknown", response.status_code, elapsed, version)
        return response

    def predictor():
        try:
            model = state.ensure_loaded()
        except ModelLoadError as exc:
            raise ApiError(503, "MODEL_NOT_LOADED", str(exc)) from None
        g.model_version = model.version
        return model

    def require_token() -> None:
        expected = settings.download_token
        if expected:
            scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
                raise ApiError(401, "UNAUTHORIZED", "downloads need 'Authorization: Bearer <DOWNLOAD_TOKEN>'")

    @app.post("/")
    def load():
        predictor()
        return jsonify({"state": "done"})

    @app.post("/result")
    def result():
        shape = "the body must be a JSON object like {\"test\": input}"
        if not wire.is_json(request.content_type or ""):
            raise ApiError(400, "BAD_REQUEST", f"{shape}, sent as application/json")
        try:
            body = wire.parse_json(wire.read_body(request.environ, settings.max_body_bytes))
        except wire.BodyTooLargeError as exc:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", str(exc)) from None
        except wire.BadBodyError as exc:
            raise ApiError(400, "BAD_REQUEST", f"{shape}: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", shape)
        if "test" not in body:
            raise ApiError(400, "BAD_REQUEST", "missing key 'test': send {\"test\": input}")
        model = predictor()
        failed = request.environ.pop(PREDICT_FAILURE, None)  # the hot path's predict already raised this
        if isinstance(failed, ModelLoadError):  # not the model's answer: no model then; predictor() decided now
            failed = None
        try:
            if failed is not None:
                raise failed
            answer = wire.encode_answer(model.predict(body["test"]))
        except BadInputError as exc:
            raise ApiError(400, "BAD_INPUT", str(exc)) from None
        except (ModelFailedError, wire.AnswerNotJsonError) as exc:
            raise ApiError(500, "MODEL_FAILED", str(exc)) from None
        except ApiError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any other failure of the model's code (a scikit-learn error, sys.exit)
            app.logger.warning("the model raised", exc_info=(type(exc), exc, exc.__traceback__))
            raise ApiError(500, "MODEL_FAILED", f"the model failed: {type(exc).__name__}: {exc}") from None
        return Response(answer, content_type="application/json")

    def switch(kind: str) -> tuple[Current, str]:
        """Download, unpack into a fresh folder, load + smoke-test, then move the pointer.

        Returns the new pointer and the version now serving. A refused download deletes
        its folder; a switch deletes every unpacked folder but the current and the previous.
        """
        storage = storage_from_settings(settings)
        with open(work_dir / ".download.lock", "w") as lock:
            wait_for_download_lock(lock)
            try:
                current = state.pointer.read()  # ForeignPointerError: another model's, left alone (409)
            except UnnamedPointerError:  # an older server's pointer, maybe another model's: replaced, none of it kept
                current = Current(None, None, None)
            if kind == "model" and settings.model_type == "mlflow":
                return install_registry_version(current)
            if kind == "src":
                name = f"{settings.model_name}.zip"
                if name not in storage.list("src"):
                    raise ApiError(404, "NOT_FOUND", f"src/{name} is not in storage")
            else:
                if settings.model_type in NEEDS_SOURCES and current.src is None:
                    raise ApiError(409, "SOURCES_MISSING", "download the sources first: call /src_download, then /model_download")
                name = latest_model_zip(storage.list("model"))
                if name is None:
                    raise ApiError(404, "NOT_FOUND", "no model/YYYYMMDD.zip (a real date) in storage")
            with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
                archive = Path(tmp) / name
                storage.fetch(f"{kind}/{name}", archive, settings.max_archive_bytes)
                folder = unpack(archive, work_dir / kind, max_bytes=settings.max_archive_bytes)
            if kind == "src":
                candidate = Current(str(folder), current.model, current.version)
            else:
                candidate = Current(current.src, str(folder), name.removesuffix(".zip"))
            try:
                new = None
                if candidate.model is not None:
                    new = load_checked(candidate, f"the load of {kind}/{name}")
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            state.pointer.write(candidate)
            if new is not None:
                state.install(candidate, new, state.pointer.identity())  # under the download lock
            previous = current.src if kind == "src" else current.model
            prune(work_dir / kind, keep={str(folder), previous})
            return candidate, new.version if new is not None else ""

    def wait_for_download_lock(lock: Any) -> None:
        """The download lock (shared by every worker), waited for at most DOWNLOAD_TIMEOUT_SECONDS.

        The download holding it ends within its own deadlines (the storage exchange's, the
        load's); a later one is answered 409 when its wait passes this one, naming it, while
        the current model keeps serving.
        """
        deadline = time.monotonic() + settings.download_timeout_seconds
        pause = 0.01
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ApiError(409, "DOWNLOAD_IN_PROGRESS", (
                        f"another download has held the lock for over DOWNLOAD_TIMEOUT_SECONDS="
                        f"{settings.download_timeout_seconds:g}; the current model keeps serving; try again when "
                        "it has ended")) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    def load_checked(candidate: Current, what: str):
        """The candidate's predictor, loaded and smoke-tested within LOAD_TIMEOUT_SECONDS (LoadTimeoutError)."""
        def load_and_test():
            new = load_predictor(settings, as_path(candidate.src), as_path(candidate.model), candidate.version)
            smoke_test(new, as_path(candidate.model))
            return new

        return within(settings.load_timeout_seconds, what, load_and_test)

    def install_registry_version(current: Current) -> tuple[Current, str]:
        """MODEL_TYPE=mlflow: resolve MODEL_REF again (an alias may have moved) and switch to it."""
        new = load_checked(Current(current.src, None, None), f"the load of {settings.model_ref}")
        candidate = Current(current.src, None, new.version)
        state.pointer.write(candidate)
        state.install(candidate, new, state.pointer.identity())  # under the download lock
        return candidate, new.version

    def download(kind: str):
        require_token()
        try:
            current, serving = switch(kind)
        except (UnsafeArchiveError, ArchiveTooLargeError) as exc:
            raise ApiError(422, "UNSAFE_ARCHIVE", str(exc)) from None
        except StorageError as exc:
            raise ApiError(502, "STORAGE_ERROR", str(exc)) from None
        except ForeignPointerError as exc:
            raise ApiError(409, "WORK_DIR_TAKEN", str(exc)) from None
        except ModelLoadError as exc:
            raise ApiError(422, "MODEL_REJECTED", f"{exc}; the previous model keeps serving") from None
        except LoadTimeoutError as exc:  # the download lock is released; the stuck thread ends with this worker
            request.environ[RETIRE_WORKER] = str(exc)
            raise ApiError(504, "LOAD_TIMEOUT", str(exc)) from None
        g.model_version = serving
        return jsonify({"state": "done", "version": current.version})

    app.add_url_rule("/src_download", "src_download", lambda: download("src"), methods=["GET", "POST"])
    app.add_url_rule("/model_download", "model_download", lambda: download("model"), methods=["GET", "POST"])

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        try:
            model = state.ensure_loaded()
        except ModelLoadError as exc:
            return error(503, "MODEL_NOT_LOADED", str(exc))
        g.model_version = model.version
        return jsonify({"status": "ready", "version": model.version})

    @app.get("/metrics")
    def metrics_endpoint():
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    app.wsgi_app = JsonGuard(ResultHotPath(app.wsgi_app, state, settings))
    return app

