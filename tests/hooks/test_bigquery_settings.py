"""The deadline extras of the BigQuery connection: defaults, and odd values refused by name."""

from __future__ import annotations

import json

import pytest

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook


def _hook(monkeypatch, **extras) -> SomlierBigQueryHook:
    extra = {"project": "somlier-local", "is_anonymous": True, **extras}
    monkeypatch.setenv("AIRFLOW_CONN_BQ_SETTINGS", json.dumps({"conn_type": "google_cloud_platform", "extra": extra}))
    return SomlierBigQueryHook(gcp_conn_id="bq_settings")


def test_deadlines_default_to_two_minutes(monkeypatch):
    hook = _hook(monkeypatch)
    assert (hook.retry_deadline_seconds, hook.read_stall_seconds) == (120.0, 120.0)


def test_deadlines_come_from_the_connection_extras(monkeypatch):
    hook = _hook(monkeypatch, retry_deadline_seconds="7.5", read_stall_seconds=3)
    assert (hook.retry_deadline_seconds, hook.read_stall_seconds) == (7.5, 3.0)
    assert hook.rest.deadline_seconds == 7.5


@pytest.mark.parametrize("value", ["soon", 0, -1, "nan", 10**6])
@pytest.mark.parametrize("extra", ["retry_deadline_seconds", "read_stall_seconds"])
def test_odd_deadlines_are_refused_by_name(monkeypatch, extra, value):
    hook = _hook(monkeypatch, **{extra: value})
    with pytest.raises(InvalidArgumentError, match=rf"extra {extra} must be a number of seconds .* got {value!r}"):
        getattr(hook, extra)
