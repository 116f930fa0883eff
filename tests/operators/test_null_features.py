"""NULL features on the emulator: a model that handles missing values scores them, any other refuses the day by name.

Gradient-boosted trees route a missing value down a learned branch; that is why many
teams pick them. ``null_features='auto'`` sends NULLs as NaN to a scikit-learn model
whose every step declares ``allow_nan``, and keeps refusing them for the others,
where NaN would become a wrong prediction or an error that hides the column.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.devtools.sample_data import load_features
from airflow_provider_somlier.devtools.sample_model import train_and_register_hgb
from airflow_provider_somlier.features import model_accepts_missing
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.helpers import run_context, staging_tables

DAY = dt.date(2026, 10, 5)
ALL_NULL_DAY = dt.date(2026, 10, 6)
ROWS = 400


@pytest.fixture(scope="module")
def sparse_source(emulator, bq_client) -> str:
    """Two days: one with bmi NULL on every 20th row (5 %), one with bmi NULL on every row."""
    table_id = f"{emulator.project}.features.sparse_bmi"
    load_features(bq_client, table_id, [DAY, ALL_NULL_DAY], ROWS)
    bq_client.query(f"UPDATE `{table_id}` SET bmi = NULL WHERE (load_date = '{DAY}' AND MOD(row_id, 20) = 0) "
                    f"OR load_date = '{ALL_NULL_DAY}'").result()
    return table_id


@pytest.fixture(scope="module")
def hgb(registry, session_dir) -> str:
    registered = train_and_register_hgb(registry["uri"], "diabetes-hgb-nulls",
                                        artifact_root=(session_dir / "mlartifacts").as_uri())
    return f"diabetes-hgb-nulls/{registered.version}"


def _operator(model_ref: str, source: str, destination: str, **settings) -> MLOpsOfflineOperator:
    return MLOpsOfflineOperator(
        task_id="predict", model_ref=model_ref, dataset_ref=source, dataset_load_column="load_date",
        destination_table_ref=destination, dataset_load_window=0, dataset_load_by_kst=False,
        passthrough_columns=["row_id"], baseline="none", **settings,
    )


def _run(operator: MLOpsOfflineOperator, day: dt.date) -> dict:
    at = dt.datetime.combine(day, dt.time(0), dt.timezone.utc)
    return operator.execute(run_context(at, run_id=f"nulls_{day}_{id(operator)}"))


def _destination(emulator, bq_client, name: str) -> str:
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    return f"{emulator.project}.predictions.{name}_{dt.datetime.now().strftime('%H%M%S%f')}"


def _rows(bq_client, destination: str) -> int:
    """Rows in the destination; 0 when it was never created (a refused first day creates nothing)."""
    from google.api_core.exceptions import NotFound

    try:
        return next(iter(bq_client.query(f"SELECT COUNT(*) AS n FROM `{destination}`").result())).n
    except NotFound:
        return 0


def test_a_gradient_boosted_model_scores_a_day_with_null_features(hgb, sparse_source, emulator, bq_client):
    destination = _destination(emulator, bq_client, "hgb_nulls")
    summary = _run(_operator(hgb, sparse_source, destination), DAY)
    assert summary["rows_written"] == ROWS
    assert summary["quality"]["nulls"]["bmi"] == ROWS // 20 and summary["quality"]["verdict"] == "pass"
    rows = list(bq_client.query(f"SELECT row_id, prediction FROM `{destination}`").result())
    assert len(rows) == ROWS and all(math.isfinite(r.prediction) for r in rows)


def test_a_gradient_boosted_model_fitted_on_integer_columns_scores_their_nulls(
    registry, sparse_source, emulator, bq_client, session_dir
):
    """Trained the MLflow docs' way on int64 columns: the signature says ``long``, which MLflow's own
    check refuses to fill with NaN; the estimator itself takes them, as it does in scikit-learn."""
    import mlflow.models
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from airflow_provider_somlier.lifecycle.registry import register_model

    table = f"{emulator.project}.features.int_features_with_nulls"
    bq_client.query(f"CREATE OR REPLACE TABLE `{table}` AS SELECT row_id, load_date, "
                    f"CAST(ROUND(age * 1000) AS INT64) AS age, CAST(ROUND(bmi * 1000) AS INT64) AS bmi "
                    f"FROM `{sparse_source}`").result()
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"age": rng.integers(-100, 100, 500), "bmi": rng.integers(-100, 100, 500)})
    model = HistGradientBoostingRegressor(max_iter=20).fit(train, train["bmi"] * 2.0 + train["age"])
    def save(path: str) -> None:  # as log_model saves it: the signature inferred from the int64 example
        mlflow.sklearn.save_model(
            model, path, input_example=train.head(3),
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        )
        assert mlflow.models.Model.load(path).signature.inputs.to_dict()[0]["type"] == "long"

    registered = register_model(registry["uri"], "hgb-int-features", save,
                                artifact_root=(session_dir / "mlartifacts").as_uri())
    destination = _destination(emulator, bq_client, "hgb_int_nulls")
    summary = _run(_operator(f"hgb-int-features/{registered.version}", table, destination), DAY)
    assert summary["rows_written"] == ROWS and summary["quality"]["nulls"]["bmi"] == ROWS // 20
    written = bq_client.query(f"SELECT row_id, prediction FROM `{destination}` ORDER BY row_id").to_dataframe(
        create_bqstorage_client=False)
    day = bq_client.query(f"SELECT row_id, age, bmi FROM `{table}` WHERE load_date = '{DAY}' ORDER BY row_id"
                          ).to_dataframe(create_bqstorage_client=False)
    expected = model.predict(day[["age", "bmi"]].astype("float64"))  # NULL → NaN, as scikit-learn takes it
    assert written["prediction"].to_numpy() == pytest.approx(expected, rel=1e-9)


def test_an_all_null_feature_sent_to_such_a_model_is_caught_by_the_null_fraction_check(
    hgb, sparse_source, emulator, bq_client
):
    destination = _destination(emulator, bq_client, "hgb_all_null")
    with pytest.raises(errors.QualityCheckError) as caught:
        _run(_operator(hgb, sparse_source, destination), ALL_NULL_DAY)
    assert {(f["check"], f["column"]) for f in caught.value.failures} == {("max_null_fraction", "bmi")}
    assert "bmi" in str(caught.value)
    assert _rows(bq_client, destination) == 0 and staging_tables(bq_client, destination) == []


def test_a_linear_model_refuses_null_features_by_name_and_says_how_to_send_them(
    registry, sparse_source, emulator, bq_client
):
    destination = _destination(emulator, bq_client, "ridge_nulls")
    with pytest.raises(errors.NullFeatureError, match=r"'bmi' has 20 NULL value\(s\).*null_features='pass'"):
        _run(_operator("diabetes-ridge/1", sparse_source, destination), DAY)
    assert _rows(bq_client, destination) == 0 and staging_tables(bq_client, destination) == []


def test_null_features_pass_on_a_model_that_cannot_take_them_fails_in_the_model_and_writes_nothing(
    registry, sparse_source, emulator, bq_client
):
    destination = _destination(emulator, bq_client, "ridge_pass")
    with pytest.raises(errors.ModelPredictionError, match="NaN"):
        _run(_operator("diabetes-ridge/1", sparse_source, destination, null_features="pass"), DAY)
    assert _rows(bq_client, destination) == 0 and staging_tables(bq_client, destination) == []


def test_an_unknown_null_features_setting_is_refused_when_the_dag_is_parsed():
    with pytest.raises(errors.InvalidArgumentError, match="null_features must be one of auto, refuse, pass, got 'yes'"):
        _operator("m/1", "p.d.s", "p.d.t", null_features="yes")


class _Raw:
    """A pyfunc model as ``mlflow.pyfunc.load_model`` gives it: the estimator behind ``get_raw_model``."""

    def __init__(self, raw):
        self.raw = raw

    def get_raw_model(self):
        return self.raw


def test_which_models_declare_that_they_take_missing_values():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert model_accepts_missing(_Raw(HistGradientBoostingRegressor()))
    assert model_accepts_missing(_Raw(HistGradientBoostingClassifier()))
    assert model_accepts_missing(_Raw(make_pipeline(StandardScaler(), HistGradientBoostingRegressor())))
    assert not model_accepts_missing(_Raw(Ridge()))
    # scikit-learn's Pipeline tag would say yes here (its first step takes NaN); Ridge does not
    assert not model_accepts_missing(_Raw(make_pipeline(StandardScaler(), Ridge())))
    assert not model_accepts_missing(_Raw(make_pipeline(SimpleImputer(), Ridge())))  # 'pass' is the user's word
    assert not model_accepts_missing(_Raw(object()))
    assert not model_accepts_missing(object())  # a flavor without get_raw_model
