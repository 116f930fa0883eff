"""The profile table's rows: named beside the destination, written as literals, read back mergeable."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_somlier.quality.profile import profile_table
from airflow_provider_somlier.quality.store import (
    PROFILE_COLUMNS,
    days_from_rows,
    merge_days,
    profile_rows,
    profile_table_ref,
    replace_statements,
)
from airflow_provider_somlier.refs import TableRef

DAY = dt.date(2026, 11, 20)
LINEAGE = {"model_name": "m", "model_version": 3, "airflow_run_id": "r",
           "predicted_at": dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)}


def test_the_profile_table_sits_beside_the_destination_and_long_names_keep_within_255():
    assert profile_table_ref(TableRef("p", "d", "churn")) == TableRef("p", "d", "churn__profile")
    long = profile_table_ref(TableRef("p", "d", "t" * 251)).table
    assert len(long) <= 255 and long.endswith("__profile")
    assert long != profile_table_ref(TableRef("p", "d", "t" * 250 + "u")).table


def test_rows_read_back_give_the_same_profile():
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(5, 2, 1000), "s": rng.choice(["a", "b'c"], 1000),
                      "prediction": np.append(rng.normal(0, 1, 999), np.nan)})
    profile = profile_table(table, {"x": "feature", "s": "feature", "prediction": "prediction"})
    rows = profile_rows(DAY, profile, None, LINEAGE)
    assert [r["column_name"] for r in rows] == ["x", "s", "prediction"]
    assert all(set(r) == set(PROFILE_COLUMNS) for r in rows)
    back = days_from_rows(rows)[DAY]
    assert back.rows == 1000
    for name, column in profile.columns.items():
        again = back.columns[name]
        assert (again.nulls, again.nans, again.count, again.min, again.max) == (
            column.nulls, column.nans, column.count, column.min, column.max)
        assert again.histogram() == column.histogram() and again.categories == column.categories
        if column.kind == "numeric":
            assert again.std == pytest.approx(column.std, rel=1e-12)
    two = merge_days([back, back])
    assert two.rows == 2000 and two.columns["x"].count == 2000
    assert two.columns["x"].std == pytest.approx(column_std := profile.columns["x"].std, rel=1e-12) and column_std


def test_statements_replace_the_day_with_escaped_literals():
    profile = profile_table(pa.table({"s": ["it's", None]}), {"s": "feature"})
    delete, insert = replace_statements(TableRef("p", "d", "t__profile"), DAY, profile_rows(DAY, profile, None, LINEAGE))
    assert delete == "DELETE FROM `p.d.t__profile` WHERE `target_date` = DATE '2026-11-20';"
    assert "it\\'s" in insert and "CAST(NULL AS FLOAT64)" in insert
    assert json.loads(profile_rows(DAY, profile, None, LINEAGE)[0]["histogram"]) == {"categories": {"it's": 1}, "other": 0}
    assert replace_statements(TableRef("p", "d", "t"), DAY, []) == [delete.replace("t__profile", "t")]


def test_free_text_features_keep_the_day_s_statements_small_and_their_text_readable():
    """50 Korean reviews of ~4,600 characters made a 1.3 M-character transaction (BigQuery allows 1,024 K)."""
    from airflow_provider_somlier.quality.profile import CATEGORY_CHARS, category_key

    reviews = [f"리뷰 {i}: " + "배송이 빠르고 포장이 꼼꼼했어요. " * 250 for i in range(60)]
    assert min(map(len, reviews)) > 4_000
    profile = profile_table(pa.table({"review": reviews * 3, "label": ["좋음\x7f"] * 180}),
                            {"review": "feature", "label": "prediction"})
    rows = profile_rows(DAY, profile, None, LINEAGE)
    statements = replace_statements(TableRef("p", "d", "t__profile"), DAY, rows)
    assert sum(map(len, statements)) < 15_000
    stored = json.loads(rows[0]["histogram"])["categories"]
    assert len(stored) == 50 and all(len(key) <= CATEGORY_CHARS for key in stored)
    assert set(stored) <= {category_key(r) for r in reviews}
    assert len({category_key(r) for r in reviews}) == 60  # one key per value, though they share a beginning
    assert category_key(reviews[7]).startswith("리뷰 7: 배송이") and category_key("짧은 값") == "짧은 값"
    assert json.loads(rows[1]["histogram"])["categories"] == {"좋음\x7f": 180}  # DEL escaped, read back whole
    assert "좋음\\\\u007f" in statements[1]


def test_a_transaction_over_bigquery_s_length_limit_is_refused_by_name_before_it_is_sent(emulator):
    from airflow_provider_somlier.errors import TransactionTooLargeError
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    hook = SomlierBigQueryHook()
    destination, staging = TableRef(emulator.project, "d", "t"), TableRef(emulator.project, "d", "t_staging")
    with pytest.raises(TransactionTooLargeError, match=r"replaces 2026-11-20 in somlier-local.d.t is 1,1\d\d,\d\d\d "
                                                        r"characters \(1,100,0\d\d of them the day's profile rows\)"):
        hook.commit_staged(destination, [], "target_date", DAY, [staging], "digest",
                           also=["SELECT '" + "x" * 1_100_000 + "';"])
