"""Train an MLflow Project over a parameter grid on Airflow workers, then register the best run.

Trigger with a config such as::

    {"project_name": "example-projects/ridge", "project_ref": "main",
     "github_uri": "https://github.com/my-org/ml-projects.git",
     "grid": {"alpha": [0.1, 0.5, 1.0], "fit_intercept": "True,False"},
     "model_name": "ridge", "standard_metric": "training_mae", "order_by": "ASC"}

``pin_commit`` resolves the ref once, so every combination trains the same commit. One
mapped task per combination, labelled by its parameters, trains it on a private clone;
a combination whose code fails fails its own task at once, while infrastructure
failures (registry, git) are retried. ``register_best`` runs when all of them are done,
registers the best finished run of this grid and moves the alias (default ``champion``)
only when the new version beats the best registered one. The tracking URI is the
``mlflow_default`` connection's.
"""

import datetime as dt

from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="somlier_train_grid",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["somlier", "train"],
    default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "project_name": Param("", type="string", description="folder of the project in the repository"),
        "project_ref": Param("main", type="string", description="branch, tag or commit"),
        "github_uri": Param("", type="string", description="git repository of the MLflow Projects"),
        "grid": Param({}, type="object", description="name → START..END..INCREMENT, V1,V2, a value, or a JSON list"),
        "max_combinations": Param(256, type="integer", minimum=1),
        "model_name": Param("", type="string", description="registered model to add the best run to ('' skips)"),
        "standard_metric": Param("training_mae", type="string"),
        "order_by": Param("ASC", type="string", enum=["ASC", "DESC"]),
        "alias": Param("champion", type="string", description="moved to the new version when it is better"),
    },
) as dag:

    @task
    def combinations(params=None) -> list[dict]:
        from airflow_provider_somlier.lifecycle.grid import expand_grid

        grid = params["grid"]
        return expand_grid(grid, max_combinations=params["max_combinations"]) if grid else [{}]

    @task
    def pin_commit(params=None) -> str:
        """Resolve the ref once, so every combination trains the same commit."""
        from airflow_provider_somlier.lifecycle.checkout import project_checkout

        with project_checkout(params["github_uri"], params["project_ref"], params["project_name"]) as checkout:
            return checkout.commit

    @task(max_active_tis_per_dag=4, map_index_template="{{ combination_label }}")
    def train(combination: dict, commit: str, params=None) -> str:
        from airflow.sdk import get_current_context

        from airflow_provider_somlier.errors import SomlierInputError
        from airflow_provider_somlier.hooks.mlflow import MLflowHook
        from airflow_provider_somlier.lifecycle.checkout import project_checkout
        from airflow_provider_somlier.lifecycle.train import ensure_experiment, experiment_name, run_label, train_one

        get_current_context()["combination_label"] = run_label(combination)
        tracking_uri = MLflowHook().tracking_uri
        experiment_id = ensure_experiment(tracking_uri, experiment_name(params["project_name"]))
        with project_checkout(params["github_uri"], commit, params["project_name"]) as checkout:
            result = train_one(checkout, experiment_id, combination, tracking_uri)
        if result.status != "succeeded":
            # The project's own code failed: a retry would train the same commit the same way.
            raise SomlierInputError(f"combination {run_label(combination)} failed (run {result.run_id}): {result.detail}")
        return result.run_id

    @task(trigger_rule="all_done", retries=2)
    def register_best(run_ids, params=None) -> dict:
        from airflow_provider_somlier.hooks.mlflow import MLflowHook
        from airflow_provider_somlier.lifecycle.registry import best_finished_run, register_run

        finished = [run_id for run_id in run_ids if run_id]
        if not params["model_name"]:
            return {"registered": False, "message": "no model_name in the run conf: nothing registered"}
        client = MLflowHook().get_conn()
        best = best_finished_run(client, finished, params["standard_metric"], params["order_by"])
        answer = register_run(
            client, best.run_id, params["model_name"], metric=params["standard_metric"],
            order_by=params["order_by"], alias=params["alias"] or None,
        )
        return {"registered": True, "run_id": best.run_id, **answer}

    trained = train.partial(commit=pin_commit()).expand(combination=combinations())
    register_best(trained)
