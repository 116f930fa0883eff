"""Training grids run in the background for the web server: one job per ``POST /train``.

A grid can take hours; an HTTP request cannot. A job records, per combination, its
status, run id and failure reason as results land, so ``GET /train/<id>`` can answer at
any moment. Jobs live in the server process (a restart forgets them; the runs themselves
are in MLflow).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_somlier.lifecycle.train import TrainResult


@dataclass
class TrainJob:
    job_id: str
    grid: list[dict[str, object]]
    status: str = "running"  # running | succeeded | failed | error
    message: str = ""
    commit: str = ""
    results: dict[int, TrainResult] = field(default_factory=dict)
    training: set[int] = field(default_factory=set)  # combinations that left the queue

    def combination_status(self, index: int) -> str:
        """``pending`` (waiting for a slot), ``running``, or the result's ``succeeded``/``failed``."""
        result = self.results.get(index)
        if result is not None:
            return result.status
        return "running" if index in self.training else "pending"

    def as_json(self) -> dict[str, Any]:
        combinations = []
        for index, params in enumerate(self.grid):
            result = self.results.get(index)
            entry: dict[str, Any] = {"params": params, "status": self.combination_status(index),
                                     "run_id": (result.run_id or "") if result else ""}
            if result and result.detail:
                entry["reason"] = result.detail
            combinations.append(entry)
        answer: dict[str, Any] = {"job_id": self.job_id, "status": self.status, "commit": self.commit,
                                  "combinations": combinations}
        if self.message:
            answer["message"] = self.message
        if len(self.grid) == 1:
            # The seed's answer for one combination: its run id and status at the top level. The
            # top level never says "pending": while the repository is cloned the job is running.
            answer["run_id"] = combinations[0]["run_id"]
            if self.status == "error":
                answer["status"] = "error"
            elif combinations[0]["status"] in ("succeeded", "failed"):
                answer["status"] = combinations[0]["status"]
            else:
                answer["status"] = "running"
        return answer


class TrainJobs:
    """The jobs of one web app; safe to read while their threads write."""

    def __init__(self) -> None:
        self._jobs: dict[str, TrainJob] = {}
        self._lock = threading.Lock()

    def start(self, grid: list[dict[str, object]], run: Callable[..., list[TrainResult]]) -> TrainJob:
        """Start ``run(on_start=…, on_result=…, on_training=…)`` in a daemon thread; return the job at once."""
        job = TrainJob(uuid.uuid4().hex, grid)
        with self._lock:
            self._jobs[job.job_id] = job
        positions = {repr(sorted(params.items())): index for index, params in enumerate(grid)}

        def on_start(checkout: Any) -> None:
            with self._lock:
                job.commit = checkout.commit

        def on_training(params: dict[str, object]) -> None:
            with self._lock:
                job.training.add(positions[repr(sorted(params.items()))])

        def on_result(result: TrainResult) -> None:
            with self._lock:
                job.results[positions[repr(sorted(result.params.items()))]] = result

        def work() -> None:
            try:
                results = run(on_start=on_start, on_result=on_result, on_training=on_training)
                status = "succeeded" if all(r.status == "succeeded" for r in results) else "failed"
                message = ""
            except Exception as exc:  # noqa: BLE001 - reported through GET /train/<id>
                status, message = "error", f"{type(exc).__name__}: {exc}"
            with self._lock:
                job.status, job.message = status, message

        threading.Thread(target=work, name=f"somlier-train-{job.job_id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.as_json() if job else None
