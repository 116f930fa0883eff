"""Example: score yesterday's (KST) diabetes feature rows with the registry's champion model.

The refs name the demo's local tables; on real BigQuery they are the same refs under
your project (set on the ``google_cloud_default`` connection). Outages are retried by the
operator's defaults (3 retries, 2 minutes apart, doubling); bad input fails at once.
"""

import datetime as dt

from airflow.sdk import DAG

from airflow_provider_somlier.operators import MLOpsOfflineOperator

with DAG(
    dag_id="example_offline_inference",
    schedule="0 9 * * *",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=4,
    tags=["somlier", "example"],
) as dag:
    MLOpsOfflineOperator(
        task_id="predict",
        model_ref="diabetes-ridge@champion",
        dataset_ref="features.diabetes",
        dataset_load_column="load_date",
        destination_table_ref="predictions.diabetes_ridge",
        dataset_load_window=1,
        dataset_load_by_kst=True,
        passthrough_columns=["row_id"],
        execution_timeout=dt.timedelta(hours=2),  # on timeout, on_kill cancels the BigQuery job in flight
    )
