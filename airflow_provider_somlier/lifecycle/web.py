"""The seed's lifecycle web server: ``/train``, ``/search``, ``/register``, ``/deploy``.

The same functions as the CLI behind JSON bodies and answers shaped as the seed shows.
``create_app(tracking_uri)``; run with ``flask --app 'airflow_provider_somlier.lifecycle.web:create_app()' run``
(the tracking URI from ``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request

from airflow_provider_somlier.errors import InvalidArgumentError, SomlierError, SomlierInputError


def create_app(tracking_uri: str | None = None, *, github_uri: str | None = None, deploy_dry_run: bool = True) -> Flask:
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    github_uri = github_uri or os.environ.get("SOMLIER_PROJECTS_REPO", "")
    app = Flask(__name__)

    def client():
        from mlflow import MlflowClient

        if not tracking_uri:
            raise InvalidArgumentError("the server has no MLflow registry: set MLFLOW_TRACKING_URI")
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def body(*required: str) -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise InvalidArgumentError("the body must be a JSON object")
        missing = [key for key in required if not data.get(key)]
        if missing:
            raise InvalidArgumentError(f"missing field(s) {', '.join(missing)}")
        return data

    @app.errorhandler(SomlierError)
    def _error(exc: SomlierError):
        status = 400 if isinstance(exc, SomlierInputError) else 502
        return jsonify({"error_code": type(exc).__name__, "message": str(exc)}), status

    @app.post("/train")
    def train():
        from airflow_provider_somlier.lifecycle.grid import expand_grid
        from airflow_provider_somlier.lifecycle.train import train_grid

        data = body("project_name", "project_ref")
        repository = data.get("github_uri") or github_uri
        if not repository:
            raise InvalidArgumentError("no github_uri in the body and no SOMLIER_PROJECTS_REPO on the server")
        params = {k: str(v) for k, v in (data.get("params") or {}).items()}
        grid = expand_grid(params) if params else [{}]
        results = train_grid(repository, data["project_name"], data["project_ref"], grid, tracking_uri,
                             max_parallel=int(data.get("max_parallel", 2)))
        first = results[0]
        answer = {"run_id": first.run_id or "", "status": first.status}
        if len(results) > 1:
            answer["runs"] = [{"run_id": r.run_id or "", "status": r.status, "params": r.params} for r in results]
        return jsonify(answer)

    @app.post("/search")
    def search():
        from airflow_provider_somlier.lifecycle.registry import search_runs

        data = body("project_name", "standard_metric", "order_by")
        best = search_runs(client(), data["project_name"], data["standard_metric"], data["order_by"], limit=1)[0]
        return jsonify({"run_id": best.run_id, "metric_value": str(best.metric_value)})

    @app.post("/register")
    def register():
        from airflow_provider_somlier.lifecycle.registry import register_run

        data = body("run_id", "model_name")
        return jsonify(register_run(
            client(), data["run_id"], data["model_name"], metric=data.get("standard_metric", "training_mae"),
            order_by=data.get("order_by", "ASC"), alias=data.get("alias"),
        ))

    @app.post("/deploy")
    def deploy():
        from airflow_provider_somlier.lifecycle.deploy import apply, manifests, validate

        data = body("project_name", "model_name", "model_version")
        objects = manifests(
            data["project_name"], data["model_name"], str(data["model_version"]),
            image=data.get("image", "somlier-online:latest"), use_k8s_job=bool(data.get("use_k8s_job", False)),
            istio_enabled=bool(data.get("istio_enabled", False)), mlflow_uri=tracking_uri,
        )
        validate(objects)
        if data.get("dry_run", deploy_dry_run):
            return jsonify({"status": "validated", "message": f"dry run: {', '.join(o['kind'] for o in objects)}"})
        try:
            created = apply(objects)
        except Exception as exc:  # noqa: BLE001 - the cluster's answer, whatever its type
            raise SomlierError(f"applying to the cluster failed: {type(exc).__name__}: {exc}") from None
        return jsonify({"status": "deployed", "message": ", ".join(created)})

    return app
