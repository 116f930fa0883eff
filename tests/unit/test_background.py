"""Side calls run alongside the scoring and never hold the process at exit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from airflow_provider_somlier.background import in_background


def test_the_result_or_the_error_waits_in_the_future():
    assert in_background("t", lambda a, b: a + b, 2, 3).result(timeout=5) == 5
    with pytest.raises(ZeroDivisionError):
        in_background("t", lambda: 1 / 0).result(timeout=5)


def test_a_call_that_never_returns_does_not_hold_the_process_at_exit():
    code = (
        "import time\n"
        "from airflow_provider_somlier.background import in_background\n"
        "in_background('stuck', time.sleep, 60)\n"
        "raise SystemExit(3)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], timeout=30)
    assert done.returncode == 3
    assert time.monotonic() - started < 20  # not the 60 s of the stuck call
