import datetime as dt

from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context, rows_per_day


def test_operator_scores_one_day(registry, features_table, destination, bq_client):
    op = MLOpsOfflineOperator(
        task_id="predict",
        model_ref="diabetes-ridge@champion",
        dataset_ref=features_table,
        dataset_load_column="load_date",
        destination_table_ref=destination,
        passthrough_columns=["row_id"],
    )
    summary = op.execute(run_context(dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.timezone.utc)))
    print(summary)
    assert summary["rows_written"] == 50
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}
