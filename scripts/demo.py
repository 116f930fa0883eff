"""The SoMLier demo on the embedded default: no cloud account, everything on loopback.

1. starts the local BigQuery emulator (data kept in .somlier/bigquery),
2. trains a Ridge model on sklearn's diabetes data into a SQLite MLflow registry
   (.somlier/mlflow.db) and points the alias ``champion`` at it,
3. loads 14 days of feature rows into ``features.diabetes``,
4. runs the example DAG (dags/example_offline_inference.py) with Airflow's
   ``airflow dags test`` for the last 3 days, one of them twice,
5. prints the predictions per target day: rows, distinct ids, model version.

Run it through ``scripts/demo.sh`` (which installs the locked environment first).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".somlier"
KST = dt.timezone(dt.timedelta(hours=9))


def step(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def main() -> int:
    from airflow_provider_somlier.devtools import emulator as emulator_cli
    from airflow_provider_somlier.devtools.emulator import STATE_FILE, Emulator
    from airflow_provider_somlier.devtools.sample_data import load_features
    from airflow_provider_somlier.devtools.sample_model import train_and_register

    step("Starting the local BigQuery emulator")
    emulator_cli.main(["start"])
    emulator = Emulator(**json.loads(STATE_FILE.read_text()))

    tracking_uri = f"sqlite:///{STATE / 'mlflow.db'}"
    env = os.environ | {
        "AIRFLOW_HOME": str(STATE / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": emulator.connection_uri_json(),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": tracking_uri}),
    }
    os.environ.update(env)  # the demo process is the "deployment": it configures Airflow for its children

    step(f"Training and registering diabetes-ridge in {tracking_uri}")
    model = train_and_register(
        tracking_uri, "diabetes-ridge", alias="champion", artifact_root=(STATE / "mlartifacts").as_uri()
    )
    print(f"    registered diabetes-ridge version {model.version} (run {model.run_id}), alias champion")

    today_kst = dt.datetime.now(KST).date()
    days = [today_kst - dt.timedelta(days=i) for i in range(14, 0, -1)]
    step(f"Loading 14 days of features ({days[0]} .. {days[-1]}) into features.diabetes")
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    client = SomlierBigQueryHook().client()
    rows = load_features(client, f"{emulator.project}.features.diabetes", days, rows_per_day=1_000)
    client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    print(f"    {rows} rows; predictions go to predictions.diabetes_ridge")

    step("Migrating the Airflow metadata database")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=env, stdout=subprocess.DEVNULL)

    run_dates = [today_kst - dt.timedelta(days=i) for i in (2, 1, 0, 0)]
    for run_date in run_dates:
        logical = dt.datetime.combine(run_date, dt.time(9), KST).astimezone(dt.timezone.utc)
        step(f"airflow dags test example_offline_inference {logical.isoformat()}")
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", "example_offline_inference", logical.isoformat()],
            env=env, capture_output=True, text=True,
        )
        summary = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if "SoMLier summary" in line]
        print("    " + (summary[-1].split("SoMLier summary: ", 1)[1].split(" [airflow", 1)[0] if summary else "(no summary)"))
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
            return result.returncode

    step("Predictions in predictions.diabetes_ridge (the last day was run twice)")
    table = f"{emulator.project}.predictions.diabetes_ridge"
    query = f"""
        SELECT CAST(target_date AS STRING) AS target_date, COUNT(*) AS n_rows, COUNT(DISTINCT row_id) AS n_ids,
               COUNT(*) - COUNT(DISTINCT row_id) AS duplicates, MAX(model_version) AS model_version,
               ROUND(AVG(prediction), 2) AS mean_prediction
        FROM `{table}` GROUP BY target_date ORDER BY target_date"""
    print(f"    {'target_date':<12} {'rows':>6} {'ids':>6} {'duplicates':>10} {'version':>8} {'mean prediction':>16}")
    for row in client.query(query).result():
        print(f"    {row.target_date:<12} {row.n_rows:>6} {row.n_ids:>6} {row.duplicates:>10} {row.model_version:>8} {row.mean_prediction:>16}")
    sample = f"SELECT row_id, ROUND(prediction, 1) AS prediction, model_name, model_version, airflow_run_id FROM `{table}` ORDER BY target_date DESC, row_id LIMIT 3"
    for row in client.query(sample).result():
        print(f"    {dict(row.items())}")
    print("\nThe emulator keeps running (state in .somlier/); stop it with: "
          ".venv/bin/python -m airflow_provider_somlier.devtools.emulator stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
