"""A combination's command: its processes never outlive it, and its failure is told in its own words."""

from __future__ import annotations

import os
import signal
import time

import pytest

from airflow_provider_somlier.lifecycle.train import _last_words, _run_command

# bash starts a grandchild that writes its pid, then waits: killing bash alone would leave it.
TREE = 'sleep 60 & echo "$!" > "$PIDFILE"; wait'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return open(f"/proc/{pid}/stat").read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _grandchild(pidfile) -> int:
    deadline = time.monotonic() + 5
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started its grandchild"
        time.sleep(0.05)
    return int(pidfile.read_text())


def test_a_timeout_kills_the_whole_command_and_says_how_long(tmp_path):
    pidfile = tmp_path / "pid"
    returncode, output = _run_command(TREE, str(tmp_path), os.environ | {"PIDFILE": str(pidfile)}, 1.0)
    assert (returncode, output) == (-1, "training did not finish within 1.0 s")
    assert _gone_soon(_grandchild(pidfile))


def test_an_interrupted_wait_kills_the_command_and_raises_on(tmp_path):
    """As when Airflow's execution_timeout raises in the task while it waits for the training."""

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    pidfile = tmp_path / "pid"
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Interrupted):
            _run_command(TREE, str(tmp_path), os.environ | {"PIDFILE": str(pidfile)}, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _gone_soon(_grandchild(pidfile))


def test_the_exit_code_and_the_output_of_the_command_come_back(tmp_path):
    returncode, output = _run_command("echo out; echo err >&2; exit 3", str(tmp_path), dict(os.environ), 10)
    assert returncode == 3 and output.split() == ["out", "err"]


@pytest.mark.parametrize("output, words", [
    ("Traceback (most recent call last):\nValueError: bad alpha\n"
     "🏃 View run alpha=1 at: http://127.0.0.1:5000/#/experiments/1/runs/abc\n"
     "🧪 View experiment at: http://127.0.0.1:5000/#/experiments/1\n", "ValueError: bad alpha"),
    ("mlflow.exceptions.MlflowException: Run 'x' not found\n"
     "2026/12/02 16:27:39 WARNING mlflow.utils.environment: Failed to resolve installed pip version.\n",
     "mlflow.exceptions.MlflowException: Run 'x' not found"),
    ("", ""),
])
def test_the_failure_is_the_projects_last_line_not_a_notice_mlflow_printed_after_it(output, words):
    assert _last_words(output) == words


def test_a_grid_parameter_given_twice_is_refused_before_anything_runs(tmp_path):
    """The reviewer's form: ``--alpha 0.1 --alpha 0.2`` once trained only 0.2."""
    from click.testing import CliRunner

    from airflow_provider_somlier.cli import main

    result = CliRunner().invoke(main, ["online", "train", "p", "main", "--github_uri", str(tmp_path / "none"),
                                       "--alpha", "0.1", "--alpha", "0.2", "--tracking_uri", "sqlite:///unused.db"])
    assert result.exit_code == 2 and "--alpha is given twice ('0.1' and '0.2')" in result.stderr
    assert not (tmp_path / "none").exists()
