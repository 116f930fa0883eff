"""Bad input fails with a named error that names the value, and the destination is untouched.

Every case runs against a destination that already holds one scored day; after the
failure the destination must hold exactly what it held before (rows, checksum,
schema) and no staging table may be left behind.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.devtools.emulator import free_port
from airflow_provider_somlier.devtools.sample_model import FEATURES, register_model
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context, staging_tables

UTC = dt.timezone.utc
RUN_AT = dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # KST 2026-11-20 → target day 2026-11-19


class RaisesOnSecondChunk:
    """A pyfunc model that works for a while, then fails mid-run."""

    def __init__(self):
        self.calls = 0

    def predict(self, context, model_input, params=None):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("feature store drifted")
        return model_input["bmi"] * 2


class DropsARow:
    def predict(self, context, model_input, params=None):
        return model_input["bmi"].iloc[:-1] * 2


class OddOutputNames:
    """Class probabilities under names a DataFrame allows and BigQuery does not."""

    def predict(self, context, model_input, params=None):
        import pandas as pd

        return pd.DataFrame({"p(high)": model_input["bmi"] * 0 + 0.25, "p(low)": model_input["bmi"] * 0 + 0.75})


def _register_pyfunc(registry, name: str, python_model) -> str:
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("double", f) for f in FEATURES]))

    def save(path: str) -> None:
        wrapper = type(python_model.__name__, (python_model, mlflow.pyfunc.PythonModel), {})
        mlflow.pyfunc.save_model(path, python_model=wrapper(), signature=signature, pip_requirements=[])

    return f"{name}/{register_model(registry['uri'], name, save).version}"


@pytest.fixture(scope="module")
def faulty_models(registry):
    return {
        "raises": _register_pyfunc(registry, "faulty-raises", RaisesOnSecondChunk),
        "drops_row": _register_pyfunc(registry, "faulty-drops-row", DropsARow),
        "odd_names": _register_pyfunc(registry, "faulty-odd-names", OddOutputNames),
    }


@pytest.fixture(scope="module")
def odd_tables(emulator, bq_client, features_table):
    """Source tables with a STRING feature, NULL features, and a destination of the wrong shape."""
    dataset = f"{emulator.project}.features"
    cols = ", ".join(f for f in FEATURES if f != "bmi")
    bq_client.query(
        f"CREATE OR REPLACE TABLE `{dataset}.string_bmi` AS "
        f"SELECT row_id, load_date, {cols}, CAST(bmi AS STRING) AS bmi FROM `{features_table}`"
    ).result()
    bq_client.query(
        f"CREATE OR REPLACE TABLE `{dataset}.null_bmi` AS "
        f"SELECT row_id, load_date, {cols}, IF(MOD(row_id, 7) = 0, NULL, bmi) AS bmi FROM `{features_table}`"
    ).result()
    bq_client.query(
        f"CREATE OR REPLACE TABLE `{dataset}.nan_bmi` AS "
        f"SELECT row_id, load_date, {cols}, IF(MOD(row_id, 7) = 0, CAST('NaN' AS FLOAT64), bmi) AS bmi FROM `{features_table}`"
    ).result()
    for name, value in (("inf_bmi", "CAST('inf' AS FLOAT64)"),
                        ("both_inf_bmi", "IF(MOD(row_id, 2) = 0, CAST('inf' AS FLOAT64), CAST('-inf' AS FLOAT64))")):
        bq_client.query(
            f"CREATE OR REPLACE TABLE `{dataset}.{name}` AS "
            f"SELECT row_id, load_date, {cols}, IF(MOD(row_id, 7) = 0, {value}, bmi) AS bmi FROM `{features_table}`"
        ).result()
    bq_client.query(
        f"CREATE OR REPLACE TABLE `{dataset}.keyword_load_column` AS "
        f"SELECT f.* EXCEPT (load_date), load_date AS `end` FROM `{features_table}` AS f"
    ).result()
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    wrong = f"{emulator.project}.predictions.wrong_shape"
    bq_client.query(
        f"CREATE OR REPLACE TABLE `{wrong}` (row_id INT64, prediction STRING, target_date DATE)"
    ).result()
    return {
        "string_bmi": f"{dataset}.string_bmi", "null_bmi": f"{dataset}.null_bmi", "nan_bmi": f"{dataset}.nan_bmi",
        "inf_bmi": f"{dataset}.inf_bmi", "both_inf_bmi": f"{dataset}.both_inf_bmi",
        "keyword_load_column": f"{dataset}.keyword_load_column", "wrong_destination": wrong,
    }


# Types a staging file cannot carry, as the emulator can hold them in a schema (it answers
# BIGNUMERIC and JSON columns with an internal error; tests/unit/test_output.py covers those).
ODD_PASSTHROUGH_TYPES = {
    "t_time": "TIME", "t_geography": "GEOGRAPHY", "t_interval": "INTERVAL", "t_range": "RANGE",
    "t_record": "RECORD", "t_array": "ARRAY",
}


@pytest.fixture(scope="module")
def odd_typed_source(emulator, bq_client):
    """An (empty) source whose extra columns are of types a staging file cannot carry."""
    from google.cloud import bigquery

    from airflow_provider_somlier.devtools.sample_data import feature_schema

    table = bigquery.Table(f"{emulator.project}.features.odd_types", schema=[
        *feature_schema(),
        *(bigquery.SchemaField(name, kind) for name, kind in ODD_PASSTHROUGH_TYPES.items() if kind in ("TIME", "GEOGRAPHY", "INTERVAL")),
        bigquery.SchemaField("t_range", "RANGE", range_element_type="DATE"),
        bigquery.SchemaField("t_record", "RECORD", fields=[bigquery.SchemaField("a", "INT64")]),
        bigquery.SchemaField("t_array", "INT64", mode="REPEATED"),
    ])
    bq_client.delete_table(table, not_found_ok=True, retry=None, timeout=30)
    bq_client.create_table(table, retry=None, timeout=30)
    return f"{emulator.project}.features.odd_types"


@pytest.fixture
def scored(registry, features_table, destination, bq_client):
    """A destination already holding day 2026-11-18, and a way to prove it did not change."""
    base = dict(
        task_id="predict",
        model_ref="diabetes-ridge/1",
        dataset_ref=features_table,
        dataset_load_column="load_date",
        destination_table_ref=destination,
        passthrough_columns=["row_id"],
    )
    MLOpsOfflineOperator(**base).execute(run_context(dt.datetime(2026, 11, 19, 0, 0, tzinfo=UTC)))

    def snapshot():
        rows = bq_client.query(
            f"SELECT COUNT(*) AS n, SUM(row_id) AS ids, SUM(prediction) AS total, "
            f"MAX(predicted_at) AS last FROM `{destination}`"
        ).result()
        schema = [(f.name, f.field_type) for f in bq_client.get_table(destination).schema]
        return tuple(next(iter(rows)).values()), schema, staging_tables(bq_client, destination)

    before = snapshot()
    assert before[0][0] == 50 and before[2] == []
    return base, snapshot, before


def _fails(scored, expected: type[Exception], match: str, context_at: dt.datetime = RUN_AT, **overrides):
    base, snapshot, before = scored
    with pytest.raises(expected) as caught:
        MLOpsOfflineOperator(**{**base, **overrides}).execute(run_context(context_at))
    assert match in str(caught.value), str(caught.value)
    assert snapshot() == before, "the destination changed"
    return caught.value


@pytest.mark.parametrize(
    "model_ref, match",
    [
        ("diabetes-ridge", "'diabetes-ridge' is malformed"),
        ("diabetes-ridge/abc", "'abc'"),
        ("diabetes-ridge/0", "'0'"),
        ("diabetes-ridge@1bad", "'1bad'"),
        ("models:/diabetes-ridge/1/extra", "malformed"),
        ("diabetes'ridge/1", "malformed"),
    ],
)
def test_malformed_model_refs_are_refused(scored, model_ref, match):
    _fails(scored, errors.InvalidRefError, match, model_ref=model_ref)


@pytest.mark.parametrize(
    "model_ref, match",
    [
        ("no-such-model/1", "'no-such-model'"),
        ("diabetes-ridge/99", "version 99"),
        ("models:/diabetes-ridge@ghost", "alias 'ghost'"),
    ],
)
def test_unknown_models_versions_and_aliases_are_named(scored, model_ref, match):
    _fails(scored, errors.ModelNotFoundError, match, model_ref=model_ref)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("dataset_ref", "diabetes", "'diabetes' is malformed"),
        ("dataset_ref", "features.diabetes; DROP TABLE features.diabetes", "malformed"),
        ("dataset_ref", "features.diabetes` WHERE 1=1 --", "malformed"),
        ("destination_table_ref", "predictions.x'); DELETE FROM predictions.y; --", "malformed"),
        ("destination_table_ref", "a.b.c.d", "'a.b.c.d' is malformed"),
    ],
)
def test_malformed_or_injecting_table_refs_are_refused(scored, field, value, match):
    _fails(scored, errors.InvalidRefError, match, **{field: value})


def test_a_missing_source_table_is_named(scored):
    _fails(scored, errors.TableNotFoundError, "features.no_such_table", dataset_ref="features.no_such_table")


def test_a_missing_destination_dataset_is_named(scored):
    _fails(scored, errors.TableNotFoundError, "dataset somlier-local.no_such_dataset", destination_table_ref="no_such_dataset.preds")


def test_a_missing_load_column_is_named(scored):
    _fails(scored, errors.ColumnNotFoundError, "'loaded_on'", dataset_load_column="loaded_on")


def test_a_load_column_that_injects_sql_is_refused(scored):
    _fails(scored, errors.InvalidRefError, "load_date OR TRUE", dataset_load_column="load_date OR TRUE")


def test_a_load_column_of_another_type_is_refused(scored):
    _fails(scored, errors.UnsupportedColumnTypeError, "'bmi' has type FLOAT", dataset_load_column="bmi")


@pytest.mark.parametrize("window", [-1, "-2", 1.5, "1.5", "one", True, None])
def test_negative_or_non_integer_windows_are_refused(scored, window):
    _fails(scored, errors.InvalidWindowError, f"got {window!r}", dataset_load_window=window)


def test_a_feature_missing_from_the_source_is_named(scored):
    _fails(scored, errors.ColumnNotFoundError, "'glucose'", feature_columns=[*FEATURES, "glucose"])


def test_features_outside_the_signature_are_refused(scored):
    _fails(scored, errors.FeatureMismatchError, "'row_id'", feature_columns=[*FEATURES, "row_id"])


def test_a_feature_of_the_wrong_type_is_named(scored, odd_tables):
    _fails(scored, errors.FeatureMismatchError, "feature 'bmi' is STRING", dataset_ref=odd_tables["string_bmi"])


def test_null_features_are_refused_before_writing(scored, odd_tables):
    _fails(scored, errors.NullFeatureError, "feature 'bmi' has", dataset_ref=odd_tables["null_bmi"])


def test_an_incompatible_destination_is_refused(scored, odd_tables, bq_client):
    base, snapshot, before = scored
    wrong = odd_tables["wrong_destination"]
    schema_before = bq_client.get_table(wrong).schema
    with pytest.raises(errors.DestinationSchemaError, match="prediction is STRING, expected FLOAT64"):
        MLOpsOfflineOperator(**{**base, "destination_table_ref": wrong}).execute(run_context(RUN_AT))
    assert bq_client.get_table(wrong).schema == schema_before
    assert next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM `{wrong}`").result())).n == 0
    assert snapshot() == before


@pytest.mark.parametrize(
    "column", ["prediction", "model_version", "target_date", "prediction_0", "Prediction", "TARGET_DATE", "Model_Run_Id", "PREDICTION_x"]
)
def test_passthrough_names_that_collide_with_output_columns_in_any_letter_case_are_refused(scored, column):
    _fails(scored, errors.ColumnCollisionError, f"'{column}'", passthrough_columns=["row_id", column])


def test_a_passthrough_column_listed_twice_in_different_case_is_refused(scored):
    _fails(scored, errors.ColumnCollisionError, "'ROW_ID' repeats 'row_id'", passthrough_columns=["row_id", "ROW_ID"])


@pytest.mark.parametrize("column", sorted(ODD_PASSTHROUGH_TYPES))
def test_passthrough_columns_the_staging_cannot_carry_are_refused_before_reading(scored, odd_typed_source, column):
    error = _fails(
        scored, errors.UnsupportedColumnTypeError, f"'{column}'", dataset_ref=odd_typed_source,
        passthrough_columns=["row_id", column], on_empty="write_empty",
    )
    assert "passthrough columns must be one of" in str(error)


@pytest.mark.parametrize("window", ["--1", "²", "\uff11", "\u0663", "1e3", 3661, "100000000", 10**12])
def test_odd_windows_are_refused_by_name_before_anything_is_written(scored, window):
    _fails(scored, errors.InvalidWindowError, repr(window), dataset_load_window=window)


@pytest.mark.parametrize(
    "field, value",
    [("dataset_load_column", "load_date\n"), ("passthrough_columns", ["row_id\n"]), ("feature_columns", ["bmi\n"])],
)
def test_identifiers_with_a_trailing_newline_are_refused(scored, field, value):
    shown = repr(value if isinstance(value, str) else value[0])
    _fails(scored, errors.InvalidRefError, shown, **{field: value})


def test_nan_features_are_named_like_nulls(scored, odd_tables):
    error = _fails(scored, errors.NullFeatureError, "feature 'bmi' has", dataset_ref=odd_tables["nan_bmi"])
    assert "NaN value(s)" in str(error) and "Input X contains NaN" not in str(error)


@pytest.mark.parametrize("table", ["inf_bmi", "both_inf_bmi"])
def test_infinite_features_are_named_before_writing(scored, odd_tables, table):
    # The sample Ridge is predicted as X @ coef + intercept, which would answer inf or NaN:
    # the operator refuses them by name where scikit-learn's check would have, without one.
    error = _fails(scored, errors.InfiniteFeatureError, "feature 'bmi' has", dataset_ref=odd_tables[table])
    assert "infinite value(s)" in str(error)


def test_a_load_column_named_like_a_keyword_works(registry, odd_tables, destination, bq_client):
    from tests.helpers import rows_per_day

    summary = MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=odd_tables["keyword_load_column"],
        dataset_load_column="end", destination_table_ref=destination, passthrough_columns=["row_id"],
    ).execute(run_context(RUN_AT))
    assert summary["rows_written"] == 50
    assert rows_per_day(bq_client, destination) == {"2026-11-19": 50}


def test_a_destination_name_too_long_for_the_old_staging_names_works(registry, features_table, destination, bq_client):
    from tests.helpers import rows_per_day

    long_destination = destination + "_" + "d" * (250 - len(destination.rsplit(".", 1)[1]))
    assert len(long_destination.rsplit(".", 1)[1]) == 251  # the emulator takes names up to 255 characters
    MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=long_destination,
    ).execute(run_context(RUN_AT))
    assert rows_per_day(bq_client, long_destination) == {"2026-11-19": 50}
    from airflow_provider_somlier.hooks.bigquery_staging import is_staging_of

    dataset, table = long_destination.rsplit(".", 1)
    assert not [t for t in bq_client.list_tables(dataset) if is_staging_of(t.table_id, table)]


def test_a_model_that_raises_mid_run_writes_nothing(scored, faulty_models):
    error = _fails(
        scored, errors.ModelPredictionError, "feature store drifted", model_ref=faulty_models["raises"], chunk_rows=10
    )
    assert "after 10 row(s)" in str(error)


def test_a_model_that_returns_the_wrong_number_of_rows_writes_nothing(scored, faulty_models):
    _fails(scored, errors.ModelPredictionError, "returned 9 prediction(s) for 10", model_ref=faulty_models["drops_row"], chunk_rows=10)


def test_output_columns_bigquery_would_refuse_are_named_before_anything_is_written(scored, faulty_models):
    _fails(scored, errors.ModelPredictionError, "'p(high)' (→ prediction_p(high)), 'p(low)' (→ prediction_p(low))",
           model_ref=faulty_models["odd_names"])


def test_an_empty_day_fails_when_asked_to(scored):
    _fails(scored, errors.EmptyWindowError, "2026-10-31", context_at=dt.datetime(2026, 11, 1, tzinfo=UTC), on_empty="fail")


def test_an_empty_day_is_skipped_by_default(scored):
    from airflow.sdk.exceptions import AirflowSkipException

    _fails(scored, AirflowSkipException, "2026-10-31", context_at=dt.datetime(2026, 11, 1, tzinfo=UTC))


def test_an_unreachable_bigquery_is_named(scored, monkeypatch):
    extras = {"project": "somlier-local", "is_anonymous": True, "retry_deadline_seconds": 1,
              "api_endpoint": f"http://127.0.0.1:{free_port()}", "storage_read_endpoint": f"grpc://127.0.0.1:{free_port()}"}
    monkeypatch.setenv("AIRFLOW_CONN_BQ_DOWN", json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
    _fails(scored, errors.WarehouseUnavailableError, extras["api_endpoint"], gcp_conn_id="bq_down")


def test_an_unreachable_mlflow_is_named(scored, monkeypatch):
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": down}))
    # MLflow's HTTP client retries for minutes by default; these knobs are MLflow's own.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    _fails(scored, errors.RegistryUnavailableError, down, mlflow_conn_id="mlflow_down")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"on_empty": "ignore"}, "'ignore'"),
        ({"chunk_rows": 0}, "0"),
        # a string would be read as one column per character
        ({"feature_columns": "age, bmi"}, "feature_columns must be a list of column names, got the string 'age, bmi'; "
                                          "write ['age', 'bmi']"),
        ({"passthrough_columns": "row_id"}, "write ['row_id']"),
        ({"passthrough_columns": ["row_id", 3]}, "(strings), got ['row_id', 3]"),
        ({"passthrough_columns": {"row_id"}}, "got {'row_id'}"),
    ],
)
def test_bad_operator_arguments_fail_when_the_dag_is_parsed(kwargs, match):
    with pytest.raises(errors.InvalidArgumentError, match=re.escape(match)):
        MLOpsOfflineOperator(
            task_id="predict", model_ref="m/1", dataset_ref="d.t", dataset_load_column="c",
            destination_table_ref="d.o", **kwargs,
        )


def test_a_templated_column_list_is_read_once_rendered(scored):
    base, snapshot, before = scored
    operator = MLOpsOfflineOperator(**{**base, "passthrough_columns": "{{ params.ids }}"})
    context = run_context(dt.datetime(2026, 11, 19, 0, 0, tzinfo=UTC)) | {"params": {"ids": ["row_id"]}}
    operator.render_template_fields(context)
    assert operator.passthrough_columns == "['row_id']"  # what a list renders to without native rendering
    assert operator.execute(context)["rows_written"] == 50
    assert snapshot()[0][:2] == before[0][:2]  # the same day again: the same rows and ids


def test_a_template_that_renders_to_no_list_is_named(scored):
    base, _, _ = scored
    operator = MLOpsOfflineOperator(**{**base, "passthrough_columns": "{{ params.ids }}"})
    context = run_context(RUN_AT) | {"params": {"ids": "row_id, other"}}
    operator.render_template_fields(context)
    with pytest.raises(errors.InvalidArgumentError, match=r"passthrough_columns rendered to 'row_id, other', which is not"):
        operator.execute(context)


@pytest.mark.parametrize("field", ["dag_id", "run_id"])
def test_lineage_with_a_control_character_is_refused_before_reading(scored, field):
    base, snapshot, before = scored
    context = run_context(RUN_AT, **{field: "manual__bell\x07"})
    with pytest.raises(errors.InvalidArgumentError, match=r"airflow_%s 'manual__bell\\x07' holds the control character" % field):
        MLOpsOfflineOperator(**base).execute(context)
    assert snapshot() == before, "the destination changed"
