"""Where a run's time went: the summary and the task log name every phase the run went through."""

from __future__ import annotations

import datetime as dt
import pytest

from airflow_provider_somlier.operators import MLOpsOfflineOperator
from airflow_provider_somlier.phases import PHASES, PhaseClock
from tests.helpers import run_context

UTC = dt.timezone.utc


def test_the_summary_and_the_log_carry_the_seconds_of_every_phase(registry, features_table, destination, capfd):
    op = MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
    )
    summary = op.execute(run_context(dt.datetime(2026, 11, 21, tzinfo=UTC)))
    output = "".join(capfd.readouterr())  # the task log (Airflow's structlog writes to the process's stream)

    phases = summary["phases"]
    assert list(phases) == [p for p in PHASES if p in phases]  # in run order
    assert set(phases) == set(PHASES)  # a profiled first write goes through every phase
    assert all(seconds >= 0 for seconds in phases.values())
    # the phases are parts of the run: together no longer than it (rounding aside)
    assert sum(phases.values()) <= summary["seconds"] + 0.01 * len(phases)
    assert summary["model_seconds"] == pytest.approx(phases["registry"] + phases["model_load"], abs=0.002)
    logged = [line for line in output.splitlines() if "SoMLier phases: " in line]
    assert len(logged) == 1 and all(f"{phase} " in logged[0] for phase in PHASES)


def test_a_failed_run_logs_the_phases_it_went_through(registry, features_table, destination, capfd):
    from airflow_provider_somlier.errors import QualityCheckError

    op = MLOpsOfflineOperator(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=features_table,
        dataset_load_column="load_date", destination_table_ref=destination, passthrough_columns=["row_id"],
        quality_checks={"prediction_range": [0, 1]},  # the sample model answers beyond it: refused at the gate
    )
    with pytest.raises(QualityCheckError):
        op.execute(run_context(dt.datetime(2026, 11, 21, tzinfo=UTC)))
    logged = [line for line in "".join(capfd.readouterr()).splitlines() if "SoMLier phases until the failure: " in line]
    assert len(logged) == 1 and all(f"{phase} " in logged[0] for phase in ("checks", "registry", "read", "predict"))


def test_a_phase_clock_adds_up_and_refuses_unknown_phases():
    clock = PhaseClock()
    clock.add("read", 0.25)
    clock.add("read", 0.5)
    with clock.timing("predict"):
        pass
    assert list(clock.waiting("stage", iter([1, 2, 3]))) == [1, 2, 3]
    assert clock.as_dict()["read"] == 0.75
    assert list(clock.as_dict()) == ["read", "predict", "stage"]
    assert clock.line().startswith("read 0.75 s, predict ")
    with pytest.raises(ValueError, match="unknown phase 'reading'; expected one of checks"):
        clock.add("reading", 1.0)
