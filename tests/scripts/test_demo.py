"""The demo stops every server it started on SIGTERM and SIGHUP, and after a kill -9 on its next run.

Each test runs the real ``scripts/demo.py`` (emulator, MLflow UI, Airflow) in a private
state folder and signals it as soon as the servers under test are up, so a run lasts
only as long as their start-up. Marked ``e2e``: it starts real Airflow processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_somlier.devtools.pidfiles import PidFiles

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
AIRFLOW_UP = {"bqemulator", "mlflow-ui", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor"}
START_TIMEOUT = 400  # seconds: Airflow's start-up on a busy 2-core machine


class Demo:
    """One real demo process with its own state folder and output file."""

    def __init__(self, state: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.output = state / "demo-output.log"
        env = {
            k: v for k, v in os.environ.items()
            # the demo sets its own connections and settings; only the emulator interpreter is passed on
            if not k.startswith(("AIRFLOW", "SOMLIER")) or k == "SOMLIER_BQEMULATOR_PYTHON"
        }
        env["AIRFLOW_HOME"] = str(state / "demo-airflow-home")
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(DEMO), "--state-dir", str(state), "--rows-per-day", "20"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        self.pids = PidFiles(state / "pids")

    def wait_for(self, names: set[str], not_before: dict[str, int] | None = None) -> dict[str, int]:
        """Wait until the demo has recorded ``names`` (with pids other than ``not_before``'s); return name → pid."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            recorded = self.pids.recorded()
            if names <= set(recorded) and all(recorded[n] != (not_before or {}).get(n) for n in names):
                return recorded
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        pytest.fail(f"demo did not start {sorted(names)} (exit {self.process.poll()}):\n{self.output.read_text()[-3000:]}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=120)

    def kill_everything(self) -> None:
        """Teardown safety net: never leave a test's servers behind, whatever happened."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.pids.stop_stale(timeout=5)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def demos(tmp_path):
    started: list[Demo] = []
    yield lambda: started.append(Demo(tmp_path / "state")) or started[-1]
    for demo in started:
        demo.kill_everything()


def test_the_next_demo_stops_what_a_demo_killed_with_sigkill_left_running_and_sigterm_stops_all_it_started(demos):
    killed = demos()
    left = killed.wait_for({"bqemulator", "mlflow-ui"})
    killed.process.kill()
    killed.process.wait()
    assert all(group_alive(pid) for pid in left.values())

    demo = demos()
    servers = demo.wait_for(set(left), not_before=left)
    assert [name for name, pid in left.items() if group_alive(pid)] == []
    assert "Stopped what a previous demo left running: bqemulator, mlflow-ui" in demo.output.read_text()

    # as on Ctrl-C: everything started so far (Airflow's components, when up, are stopped on the
    # same path; the SIGHUP test below sends its signal with all of them running)
    assert demo.stop(signal.SIGTERM) == 128 + signal.SIGTERM
    assert [name for name, pid in servers.items() if group_alive(pid)] == []
    assert demo.pids.recorded() == {}
    assert "Traceback" not in demo.output.read_text()


def test_the_demo_runs_green_and_writes_every_day_once(demos):
    demo = demos()
    assert demo.process.wait(timeout=900) == 0, demo.output.read_text()[-4000:]

    output = demo.output.read_text()
    table = output[output.index("per target day"):output.index("Airflow UI:")]
    days = [line.split() for line in table.splitlines()[2:] if line.strip()]
    # 7 backfilled days (one of them cleared and run again) and the manual run's day; 20 rows each
    assert len(days) >= 7 and all(row[1:4] == ["20", "20", "0"] for row in days), table
    assert "Predictions page: http://127.0.0.1:" in output and "/plugin/somlier" in output
    assert demo.pids.recorded() == {}
    assert "Traceback" not in output


def test_a_component_killed_mid_run_fails_the_demo_by_name_and_a_sighup_during_cleanup_stops_everything(demos):
    demo = demos()
    servers = demo.wait_for(AIRFLOW_UP)
    deadline = time.monotonic() + START_TIMEOUT
    while "Unpaused: the scheduler runs" not in demo.output.read_text():  # its first run is under way
        assert demo.process.poll() is None and time.monotonic() < deadline, demo.output.read_text()[-3000:]
        time.sleep(0.5)
    os.killpg(servers["airflow-scheduler"], signal.SIGKILL)
    killed_at = time.monotonic()
    while "Stopping every server after" not in demo.output.read_text():
        assert demo.process.poll() is None and time.monotonic() - killed_at < 60, demo.output.read_text()[-3000:]
        time.sleep(0.2)
    seconds_to_notice = time.monotonic() - killed_at

    assert demo.stop(signal.SIGHUP) == 128 + signal.SIGHUP  # arrives while the demo is stopping

    output = demo.output.read_text()
    assert "ComponentDiedError: Airflow scheduler" in output, output[-3000:]
    assert seconds_to_notice < 30, f"the dead scheduler was noticed after {seconds_to_notice:.0f} s"
    assert [name for name, pid in servers.items() if group_alive(pid)] == []
    assert demo.pids.recorded() == {}
