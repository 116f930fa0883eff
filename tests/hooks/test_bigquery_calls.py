"""WarehouseCalls: transient failures are retried within one deadline; answers pass through."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions as api

from airflow_provider_somlier.errors import WarehouseUnavailableError
from airflow_provider_somlier.hooks.bigquery_calls import WarehouseCalls, is_transient


def test_transient_failures_are_retried_and_each_attempt_gets_the_time_left():
    timeouts, failures = [], [ConnectionResetError("reset"), api.ServiceUnavailable("down")]

    def flaky(*, timeout):
        timeouts.append(timeout)
        if failures:
            raise failures.pop(0)
        return "answer"

    assert WarehouseCalls(10, "http://wh").call("get_table t", flaky) == "answer"
    assert len(timeouts) == 3 and 9 < timeouts[0] <= 10 and timeouts[2] < timeouts[0]


def test_answers_are_not_retried():
    calls = []

    def missing(*, timeout):
        calls.append(timeout)
        raise api.NotFound("no such table")

    with pytest.raises(api.NotFound):
        WarehouseCalls(10, "http://wh").call("get_table t", missing)
    assert len(calls) == 1


def test_a_failure_that_lasts_becomes_a_named_error_at_the_deadline():
    def down(*, timeout):
        raise ConnectionRefusedError("refused")

    started = time.monotonic()
    with pytest.raises(WarehouseUnavailableError, match=r"BigQuery upload at http://wh failed for 1 s \(\d+ attempt") as caught:
        WarehouseCalls(1, "http://wh").call("upload", down)
    assert time.monotonic() - started < 1 + 5
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize(
    "exc, transient",
    [
        (api.TooManyRequests("slow down"), True),
        (api.InternalServerError("x", errors=[{"reason": "backendError"}]), True),
        (api.InternalServerError("An internal error occurred"), False),
        (api.BadRequest("Syntax error"), False),
        (api.Forbidden("denied"), False),
        (TimeoutError("read timed out"), True),
    ],
)
def test_which_failures_count_as_transient(exc, transient):
    assert is_transient(exc) is transient
