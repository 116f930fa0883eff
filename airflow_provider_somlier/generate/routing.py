"""``create_v2``'s options for where the score task(s) run: ``--score_queue``, ``--score_pool``,
``--score_executor``, ``--score_cpu``, ``--score_memory``.

They apply to what scores the rows: the sharded group's score tasks, or the single task
(its own score task). Queue and pool go to Celery and Airflow's pools, the executor to
Airflow's choice among the deployment's executors (``[core] executor``); CPU and memory
become a KubernetesExecutor pod override built by ``operators.routing.shard_pod_override``
in the generated file. Checked here, named in every error, rendered as literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Celery queue and Airflow pool names: printable, no spaces or quotes, as the UI and CLIs take them.
ROUTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,199}")
OPTIONS = ("score_queue", "score_pool", "score_executor", "score_cpu", "score_memory")


@dataclass(frozen=True)
class ScoreRouting:
    queue: str | None = None
    pool: str | None = None
    executor: str | None = None
    cpu: str | None = None
    memory: str | None = None

    @property
    def pod_override(self) -> bool:
        return self.cpu is not None or self.memory is not None

    def _values(self) -> tuple[str | None, ...]:
        return self.queue, self.pool, self.executor, self.cpu, self.memory

    def flags(self) -> list[str]:
        """The options as the header's canonical command spells them."""
        return [item for name, value in zip(OPTIONS, self._values())
                if value is not None for item in (f"--{name}", value)]

    def described(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in zip(OPTIONS, self._values())
                if value is not None]


def validate_routing(values: dict[str, object]) -> ScoreRouting:
    """``values`` holds the five options (None: left out). An empty value is refused, never read as left out."""
    from airflow_provider_somlier.errors import InvalidArgumentError  # imports Airflow: not at the CLI's start
    from airflow_provider_somlier.generate.spec import QUANTITY, _shown, checked_text

    checked: dict[str, str] = {}
    for name in OPTIONS:
        value = values.get(name)
        if value is None:
            continue
        text = checked_text(value, f"--{name}").strip(" ")
        pattern, example = (QUANTITY, "1, 500m, 2Gi") if name in ("score_cpu", "score_memory") else (
            ROUTE_NAME, "KubernetesExecutor" if name == "score_executor" else "bigmem, somlier_scoring")
        if not pattern.fullmatch(text):
            raise InvalidArgumentError(f"--{name} {_shown(text)} is invalid: expected e.g. {example}")
        checked[name[6:]] = text
    return ScoreRouting(**checked)


def routing_options(command: Callable) -> Callable:
    """The five options on a click command (its function takes them as keyword arguments)."""
    import click

    helps = {
        "score_queue": "Celery queue of the score task(s), e.g. a big-memory queue.",
        "score_pool": "Airflow pool of the score task(s), bounding warehouse concurrency across runs.",
        "score_executor": "Executor of the score task(s) where the deployment runs several, e.g. KubernetesExecutor.",
        "score_cpu": "CPU of each score task's pod on the KubernetesExecutor (request = limit), e.g. 1.",
        "score_memory": "Memory of each score task's pod on the KubernetesExecutor (request = limit), e.g. 4Gi.",
    }
    for name in reversed(OPTIONS):
        command = click.option(f"--{name}", default=None, help=helps[name])(command)
    return command
