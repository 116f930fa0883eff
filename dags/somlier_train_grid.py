"""Train an MLflow Project over a parameter grid on Airflow workers: one mapped task per combination.

Trigger with a config such as::

    {"project_name": "example-projects/ridge", "project_ref": "main",
     "github_uri": "https://github.com/my-org/ml-projects.git",
     "grid": {"alpha": "0.1..1.0..0.3", "fit_intercept": "True,False"}}

The tracking URI is the ``mlflow_default`` connection's. A failed combination fails its
own mapped task only.
"""

import datetime as dt

from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="somlier_train_grid",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["somlier", "train"],
    params={
        "project_name": Param("", type="string", description="folder of the project in the repository"),
        "project_ref": Param("main", type="string", description="branch or commit"),
        "github_uri": Param("", type="string", description="git repository of the MLflow Projects"),
        "grid": Param({}, type="object", description="flag name → START..END..INCREMENT, V1,V2 or a value"),
        "max_combinations": Param(256, type="integer"),
    },
) as dag:

    @task
    def combinations(params=None) -> list[dict]:
        from airflow_provider_somlier.lifecycle.grid import expand_grid

        grid = {name: str(spec) for name, spec in params["grid"].items()}
        return expand_grid(grid, max_combinations=params["max_combinations"]) if grid else [{}]

    @task
    def pin_commit(params=None) -> str:
        """Resolve the ref once, so every combination trains the same commit."""
        from airflow_provider_somlier.lifecycle.checkout import project_checkout

        with project_checkout(params["github_uri"], params["project_ref"], params["project_name"]) as checkout:
            return checkout.commit

    @task(max_active_tis_per_dag=4)
    def train(combination: dict, commit: str, params=None) -> dict:
        from airflow_provider_somlier.errors import SomlierError
        from airflow_provider_somlier.hooks.mlflow import MLflowHook
        from airflow_provider_somlier.lifecycle.checkout import project_checkout
        from airflow_provider_somlier.lifecycle.train import ensure_experiment, experiment_name, train_one

        tracking_uri = MLflowHook().tracking_uri
        experiment_id = ensure_experiment(tracking_uri, experiment_name(params["project_name"]))
        with project_checkout(params["github_uri"], commit, params["project_name"]) as checkout:
            result = train_one(checkout, experiment_id, combination, tracking_uri)
        if result.status != "succeeded":
            raise SomlierError(f"combination {combination} failed: {result.detail}")
        return {"run_id": result.run_id, "params": combination}

    train.partial(commit=pin_commit()).expand(combination=combinations())
