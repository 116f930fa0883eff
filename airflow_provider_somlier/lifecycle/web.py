"""The seed's lifecycle web server: ``/train``, ``/search``, ``/register``, ``/deploy``.

The same functions as the CLI behind JSON bodies and answers shaped as the seed shows.
``create_app(tracking_uri)``; run with ``flask --app 'airflow_provider_somlier.lifecycle.web:create_app()' run``
(the tracking URI from ``MLFLOW_TRACKING_URI``). Every answer is JSON, errors included:
400 for bad input (naming the field), 404/405 for unknown routes and methods, 502 when
the registry or cluster fails, 500 otherwise.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from airflow_provider_somlier.errors import InvalidArgumentError, SomlierError, SomlierInputError


def _flag(data: dict, name: str, default: bool) -> bool:
    """A JSON boolean, or the strings "true"/"false"; anything else is refused, not read as truthy."""
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidArgumentError(f"{name} must be true or false, got {value!r}")


def _integer(data: dict, name: str, default: int, minimum: int = 1) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


def _text(data: dict, name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {value!r}")
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Answers are strict JSON: a NaN or an infinity fails on our side instead of in the client's parser."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def _refuse_constant(name: str) -> None:
    raise InvalidArgumentError(f"the body holds {name}, which JSON does not allow: send a finite number or a string")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"the body holds {text}, which is not a finite number: send a smaller number")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice would silently keep its last value (``{"alpha": 1, "alpha": 2}``): refused."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise InvalidArgumentError(f"the body gives {key!r} twice ({data[key]!r} and {value!r}); give it once")
        data[key] = value
    return data


def parse_body(mimetype: str, raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, strictly: each way it can be wrong has its own message."""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise InvalidArgumentError(f"send Content-Type: application/json (got {repr(mimetype) if mimetype else 'none'})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"the body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        ) from None
    if not text.strip():
        raise InvalidArgumentError("the body is empty: send a JSON object")
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                          object_pairs_hook=_no_duplicates)
    except InvalidArgumentError:
        raise
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise InvalidArgumentError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"the body must be a JSON object, got {type(data).__name__} {data!r:.80}")
    return data


def error_code(exc: Exception) -> str:
    """An error's code in the UPPER_SNAKE form of every other code (``ModelNotFoundError`` → ``MODEL_NOT_FOUND``)."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def create_app(tracking_uri: str | None = None, *, github_uri: str | None = None, deploy_dry_run: bool = True) -> Flask:
    from airflow_provider_somlier.lifecycle.jobs import TrainJobs

    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    github_uri = github_uri or os.environ.get("SOMLIER_PROJECTS_REPO", "")
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    jobs = TrainJobs()

    def client():
        from mlflow import MlflowClient

        if not tracking_uri:
            raise InvalidArgumentError("the server has no MLflow registry: set MLFLOW_TRACKING_URI")
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def body(*required: str) -> dict:
        data = parse_body(request.mimetype, request.get_data(cache=True))
        missing = [key for key in required if data.get(key) in (None, "")]
        if missing:
            raise InvalidArgumentError(f"missing field(s) {', '.join(missing)}")
        return data

    def error(status: int, code: str, message: str):
        return jsonify({"error_code": code, "message": message}), status

    @app.errorhandler(SomlierError)
    def _somlier_error(exc: SomlierError):
        return error(400 if isinstance(exc, SomlierInputError) else 502, error_code(exc), str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        original = getattr(exc, "original_exception", None)
        if original is not None:  # raised while Flask made the answer (e.g. a NaN in it): say what it was
            return _unexpected(original)
        return error(exc.code or 500, (exc.name or "error").upper().replace(" ", "_"), exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            status = 400 if exc.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") else 502
            return error(status, exc.error_code, exc.message)
        app.logger.exception("unexpected error")
        return error(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")

    @app.post("/train")
    def train():
        from airflow_provider_somlier.lifecycle.grid import expand_grid
        from airflow_provider_somlier.lifecycle.train import ensure_experiment, experiment_name, train_grid

        data = body("project_name", "project_ref")
        project, ref = _text(data, "project_name"), _text(data, "project_ref")
        repository = _text(data, "github_uri", "") or github_uri
        if not repository:
            raise InvalidArgumentError("no github_uri in the body and no SOMLIER_PROJECTS_REPO on the server")
        params: Any = data.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"params must be an object of name → values, got {params!r}")
        max_parallel = _integer(data, "max_parallel", 2)
        grid = expand_grid(params) if params else [{}]
        client()  # the registry is configured before a job is accepted
        ensure_experiment(tracking_uri, experiment_name(project))
        job = jobs.start(grid, lambda **callbacks: train_grid(
            repository, project, ref, grid, tracking_uri, max_parallel=max_parallel, **callbacks))
        return jsonify({"job_id": job.job_id, "status": "running", "combinations": len(grid),
                        "url": f"/train/{job.job_id}"}), 202

    @app.get("/train/<job_id>")
    def train_status(job_id: str):
        answer = jobs.get(job_id)
        if answer is None:
            return error(404, "NOT_FOUND", f"no training job {job_id!r} on this server")
        return jsonify(answer)

    @app.post("/search")
    def search():
        from airflow_provider_somlier.lifecycle.registry import search_runs

        data = body("project_name", "standard_metric", "order_by")
        best = search_runs(client(), _text(data, "project_name"), _text(data, "standard_metric"),
                           _text(data, "order_by"), limit=1)[0]
        return jsonify({"run_id": best.run_id, "metric_value": str(best.metric_value)})

    @app.post("/register")
    def register():
        from airflow_provider_somlier.lifecycle.registry import register_run

        data = body("run_id", "model_name")
        alias = data.get("alias")
        return jsonify(register_run(
            client(), _text(data, "run_id"), _text(data, "model_name"),
            metric=_text(data, "standard_metric", "training_mae"), order_by=_text(data, "order_by", "ASC"),
            alias=_text(data, "alias") if alias is not None else None,
        ))

    @app.post("/deploy")
    def deploy():
        from airflow_provider_somlier.lifecycle.deploy import apply, check_version, manifests, validate

        data = body("project_name", "model_name", "model_version")
        version = data["model_version"]
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise InvalidArgumentError(f"model_version must be a version number, got {version!r}")
        objects = manifests(
            _text(data, "project_name"), _text(data, "model_name"), str(version),
            image=_text(data, "image", "somlier-online:latest"), use_k8s_job=_flag(data, "use_k8s_job", False),
            istio_enabled=_flag(data, "istio_enabled", False),
            mlflow_secret=_text(data, "mlflow_secret", "somlier-mlflow"),
        )
        validate(objects)
        check_version(client(), _text(data, "model_name"), str(version))
        if _flag(data, "dry_run", deploy_dry_run):
            return jsonify({"status": "validated", "message": f"dry run: {', '.join(o['kind'] for o in objects)}"})
        return jsonify({"status": "deployed", "message": ", ".join(apply(objects))})

    return app
