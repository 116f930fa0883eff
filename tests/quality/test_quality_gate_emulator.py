"""Bad days on the emulator: each is caught by the check that names it, before anyone reads it.

One source table holds seven normal days (the baseline, scored once for the module) and,
on later days, a normal day drawn anew and each kind of bad day. ``fail`` leaves the
destination's day (and its profile) as they were with no staging table left; ``warn``
writes the day and records the failures with its profile.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.devtools.sample_model import register_model
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context, staging_tables

UTC = dt.timezone.utc
BASELINE_DAYS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(7)]
ROWS = 2_000
REGIONS = ["seoul", "busan", "incheon", "daegu"]


def quality_day(day: dt.date, seed: int, rows: int = ROWS, **change) -> pa.Table:
    """One day of features: x ~ N(0, 1), amount in won (log-normal), region of four; ``change`` alters a column."""
    rng = np.random.default_rng(seed)
    columns = {
        "x": rng.normal(0, 1, rows),
        "amount": rng.lognormal(10, 0.5, rows),
        "region": rng.choice(REGIONS, rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
    }
    for name, alter in change.items():
        columns[name] = alter(columns[name])
    return pa.table({
        "row_id": pa.array(np.arange(rows) + seed * 1_000_000, pa.int64()),
        "load_date": pa.array([day] * rows, pa.date32()),
        **{name: pa.array(values, pa.string() if name == "region" else pa.float64())
           for name, values in columns.items()},
    })


def load(client, table_id: str, tables: list[pa.Table]) -> None:
    import pyarrow.parquet as pq
    from google.cloud import bigquery

    with tempfile.NamedTemporaryFile(suffix=".parquet") as staged:
        pq.write_table(pa.concat_tables(tables), staged.name)
        with open(staged.name, "rb") as parquet:
            client.load_table_from_file(parquet, table_id, job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET, write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            )).result()


class WonModel:
    """Uses every feature; log(amount) is NaN for a negative amount, as a real model's transform would be."""

    def predict(self, context, model_input, params=None):
        import numpy as np

        with np.errstate(invalid="ignore"):
            return 2 * model_input["x"] + np.log(model_input["amount"]) + (model_input["region"] == "seoul")


def register_won_model(uri: str, name: str) -> object:
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("double", "x"), ColSpec("double", "amount"),
                                              ColSpec("string", "region")]))

    def save(path: str) -> None:
        wrapper = type("WonModel", (WonModel, mlflow.pyfunc.PythonModel), {})
        mlflow.pyfunc.save_model(path, python_model=wrapper(), signature=signature, pip_requirements=[])

    return register_model(uri, name, save)


BAD_DAYS = {
    "unit_x1000": (dt.date(2026, 10, 9), dict(amount=lambda a: a * 1000)),
    "three_percent": (dt.date(2026, 10, 10), dict(rows=ROWS * 3 // 100)),
    "nan_predictions": (dt.date(2026, 10, 12), dict(amount=lambda a: np.where(np.arange(len(a)) % 20 == 0, -a, a))),
    "unseen_category": (dt.date(2026, 10, 13), dict(region=lambda r: np.where(r == "busan", "Busan", r))),
    "all_null_feature": (dt.date(2026, 10, 14), dict(x=lambda x: [None] * len(x))),
    "warned": (dt.date(2026, 10, 20), dict(amount=lambda a: a * 1000)),
}
DUPLICATED_DAY = dt.date(2026, 10, 11)
NORMAL_DAY = dt.date(2026, 10, 8)
RERUN_DAY = dt.date(2026, 10, 16)


@pytest.fixture(scope="module")
def won(registry, emulator, bq_client):
    """The model, the source with every day loaded, and a destination whose baseline days are scored."""
    model = register_won_model(registry["uri"], "won-model")
    source = f"{emulator.project}.features.quality_days"
    bq_client.create_dataset(f"{emulator.project}.features", exists_ok=True)
    bq_client.delete_table(source, not_found_ok=True)
    bq_client.query(
        f"CREATE TABLE `{source}` (row_id INT64, load_date DATE, x FLOAT64, amount FLOAT64, region STRING)"
    ).result()
    days = [quality_day(day, seed, ROWS + 20 * seed) for seed, day in enumerate(BASELINE_DAYS, start=1)]
    days.append(quality_day(NORMAL_DAY, 100, ROWS + 60))
    days.append(quality_day(RERUN_DAY, 101))
    for name, (day, change) in BAD_DAYS.items():
        rows = change.pop("rows", ROWS)
        days.append(quality_day(day, 200 + len(days), rows, **change))
    twice = quality_day(DUPLICATED_DAY, 300)
    days += [twice, twice]
    load(bq_client, source, days)
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    destination = f"{emulator.project}.predictions.quality_{dt.datetime.now().strftime('%H%M%S%f')}"
    base = dict(task_id="predict", model_ref=f"won-model/{model.version}", dataset_ref=source,
                dataset_load_column="load_date", destination_table_ref=destination, dataset_load_window=0,
                dataset_load_by_kst=False, passthrough_columns=["row_id"])
    first = run(base, BASELINE_DAYS[0])
    for day in BASELINE_DAYS[1:]:
        run(base, day)
    return {"base": base, "model": model, "source": source, "destination": destination, "first": first}


def run(base: dict, day: dt.date, **overrides) -> dict:
    at = dt.datetime.combine(day, dt.time(0), UTC)
    return MLOpsOfflineOperator(**{**base, **overrides}).execute(run_context(at, run_id=f"run_{day}_{id(overrides)}"))


def day_state(client, destination: str, day: dt.date) -> tuple:
    rows = client.query(
        f"SELECT COUNT(*) AS n, MAX(predicted_at) AS at FROM `{destination}` WHERE target_date = '{day}'"
    ).result()
    profile = client.query(
        f"SELECT column_name, day_rows, verdict FROM `{destination}__profile` WHERE target_date = '{day}' "
        "ORDER BY column_name"
    ).result()
    return tuple(next(iter(rows)).values()), [tuple(r.values()) for r in profile], staging_tables(client, destination)


def refused(won, bq_client, day: dt.date, **overrides) -> errors.QualityCheckError:
    before = day_state(bq_client, won["destination"], day)
    with pytest.raises(errors.QualityCheckError) as caught:
        run(won["base"], day, **overrides)
    assert day_state(bq_client, won["destination"], day) == before, "the day or its profile changed"
    return caught.value


def failed(error: errors.QualityCheckError) -> set[tuple[str, str | None]]:
    return {(f["check"], f["column"]) for f in error.failures}


def test_the_first_run_writes_its_profile_and_says_drift_checks_were_skipped(won, bq_client):
    quality = won["first"]["quality"]
    assert quality["verdict"] == "pass" and quality["baseline"] is None
    assert set(quality["skipped"]) == {"max_psi", "max_mean_shift", "row_count_factor"}
    assert "no baseline" in quality["skipped"]["max_psi"]
    counts, profile, _ = day_state(bq_client, won["destination"], BASELINE_DAYS[0])
    assert [name for name, *_ in profile] == ["amount", "prediction", "region", "x"]
    assert {rows for _, rows, _ in profile} == {counts[0]} == {ROWS + 20}


def test_a_normal_day_passes_every_default_check(won, bq_client):
    summary = run(won["base"], NORMAL_DAY)
    quality = summary["quality"]
    assert quality["verdict"] == "pass", quality
    # NULLs and PSI on 4 columns, the mean of 3 numeric ones, the range, the rows
    assert quality["skipped"] == {} and quality["checks_passed"] == 4 + 4 + 3 + 1 + 1
    assert quality["baseline"].startswith("previous_days:7 (7 day(s), 2026-10-01 to 2026-10-07)")
    assert summary["rows_written"] == ROWS + 60
    assert quality["nulls"] == {"x": 0, "amount": 0, "region": 0, "prediction": 0}


@pytest.mark.parametrize(
    ("case", "check"),
    [
        ("unit_x1000", ("max_psi", "amount")),
        ("three_percent", ("row_count_factor", None)),
        ("nan_predictions", ("prediction_range", "prediction")),
        ("unseen_category", ("max_psi", "region")),
    ],
)
def test_a_bad_day_is_caught_by_the_check_that_names_it(won, bq_client, case, check):
    error = refused(won, bq_client, BAD_DAYS[case][0])
    assert check in failed(error), error
    assert "the day keeps its old rows" in str(error)
    if case == "unseen_category":
        assert "'Busan'" in str(error)


def test_every_row_duplicated_is_caught_by_the_row_count_alone(won, bq_client):
    error = refused(won, bq_client, DUPLICATED_DAY)
    assert failed(error) == {("row_count_factor", None)}
    assert re.search(r"row_count_factor: 4,000 rows = 1\.8\d*x the busiest of the baseline.s days", str(error)), error
    assert "outside [0.666667x, 1.5x]" in str(error)


def test_an_all_null_feature_is_refused_by_name_before_predicting(won, bq_client):
    day = BAD_DAYS["all_null_feature"][0]
    before = day_state(bq_client, won["destination"], day)
    with pytest.raises(errors.NullFeatureError, match="'x' has 2000 NULL"):
        run(won["base"], day)
    assert day_state(bq_client, won["destination"], day) == before


def test_an_all_null_feature_sent_to_the_model_is_caught_by_the_null_fraction_check(won, bq_client):
    """With ``null_features='pass'`` the NULLs reach the model (NaN predictions): the gate names both."""
    error = refused(won, bq_client, BAD_DAYS["all_null_feature"][0], null_features="pass")
    assert {("max_null_fraction", "x"), ("max_null_fraction", "prediction")} <= failed(error)
    assert "x" in str(error)


def test_fail_on_a_rerun_keeps_the_old_day_and_its_profile(won, bq_client):
    run(won["base"], RERUN_DAY)
    good = day_state(bq_client, won["destination"], RERUN_DAY)
    assert good[0][0] == ROWS and good[1]
    bq_client.query(f"DELETE FROM `{won['source']}` WHERE load_date = '{RERUN_DAY}'").result()
    load(bq_client, won["source"], [quality_day(RERUN_DAY, 101, amount=lambda a: a * 1000)])
    error = refused(won, bq_client, RERUN_DAY)
    assert ("max_psi", "amount") in failed(error)
    assert day_state(bq_client, won["destination"], RERUN_DAY) == good


def test_warn_writes_the_day_and_records_the_failures(won, bq_client):
    day = BAD_DAYS["warned"][0]
    summary = run(won["base"], day, on_quality_failure="warn")
    assert summary["rows_written"] == ROWS
    assert summary["quality"]["verdict"] == "warn"
    assert ("max_psi", "amount") in {(f["check"], f["column"]) for f in summary["quality"]["failures"]}
    rows = {r.column_name: r for r in bq_client.query(
        f"SELECT column_name, verdict, failures FROM `{won['destination']}__profile` WHERE target_date = '{day}'"
    ).result()}
    assert {r.verdict for r in rows.values()} == {"warn"}
    assert {f["check"] for f in json.loads(rows["amount"].failures)} == {"max_psi", "max_mean_shift"}
    assert json.loads(rows["x"].failures) == []


def test_bad_settings_are_refused_by_name_before_a_row_is_read(won, bq_client):
    base = won["base"]
    with pytest.raises(errors.QualitySettingError, match="'max_nul_fraction'"):
        MLOpsOfflineOperator(**base, quality_checks={"max_nul_fraction": 0.1})
    with pytest.raises(errors.QualitySettingError, match="'previous_days:0'"):
        MLOpsOfflineOperator(**base, baseline="previous_days:0")
    with pytest.raises(errors.QualitySettingError, match="max_psi must be a number from 0"):
        MLOpsOfflineOperator(**base, quality_checks='{"max_psi": -1}')
    before = day_state(bq_client, won["destination"], NORMAL_DAY)
    with pytest.raises(errors.QualitySettingError, match="'amont'"):
        run(base, NORMAL_DAY, quality_checks={"max_psi_per_column": {"amont": 0.1}})
    templated = MLOpsOfflineOperator(**base, baseline="{{ params.baseline }}")  # checked once rendered
    templated.baseline = "previous_days:0"  # what rendering gives
    with pytest.raises(errors.QualitySettingError, match="'previous_days:0'"):
        templated.execute(run_context(dt.datetime.combine(NORMAL_DAY, dt.time(0), UTC)))
    assert day_state(bq_client, won["destination"], NORMAL_DAY) == before


def test_a_training_baseline_the_run_never_logged_is_a_warning_naming_it(won, registry, bq_client, capfd):
    """baseline='training' asked for by name, and the model's run has none: said at WARNING, not buried."""
    bare = register_won_model(registry["uri"], "won-model")
    refused(won, bq_client, NORMAL_DAY, model_ref=f"won-model/{bare.version}", baseline="training",
            quality_checks={"prediction_range": [0, 0.001]})  # refused, so the day stays as it was
    logged = "".join(capfd.readouterr())
    assert "baseline='training', but the model's run logged no training profile" in logged
    assert "log_training_profile or register with --training_data" in logged


def test_a_training_profile_is_a_baseline_and_another_models_is_refused(won, registry, bq_client):
    from airflow_provider_somlier.quality import log_training_profile

    trained = register_won_model(registry["uri"], "won-model")
    frame = quality_day(NORMAL_DAY, 400, 5_000).select(["x", "amount", "region"]).to_pandas()
    logged = log_training_profile(frame, predictions=WonModel().predict(None, frame), run_id=trained.run_id,
                                  tracking_uri=registry["uri"])
    assert [c["name"] for c in logged["columns"]] == ["x", "amount", "region", "prediction"]
    at_training = {**won["base"], "model_ref": f"won-model/{trained.version}", "baseline": "training"}
    error = refused(won, bq_client, BAD_DAYS["unit_x1000"][0], **at_training)
    assert ("max_psi", "amount") in failed(error)
    assert f"training profile of run {trained.run_id}" in str(error)
    assert "row_count_factor" not in {f["check"] for f in error.failures}

    other = register_won_model(registry["uri"], "won-model")
    log_training_profile(frame.rename(columns={"x": "bmi"}), run_id=other.run_id, tracking_uri=registry["uri"])
    with pytest.raises(errors.ProfileMismatchError, match=r"no column\(s\) 'x' of the model's features"):
        run(won["base"], NORMAL_DAY, model_ref=f"won-model/{other.version}", baseline="training")
