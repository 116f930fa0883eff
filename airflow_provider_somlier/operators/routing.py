"""Where score tasks run: Celery queue, pool, executor, and a KubernetesExecutor pod override per shard.

The sharded group passes these to its score tasks only (``sharded_offline(score_queue=…,
score_pool=…, score_executor_config=…)``): the plan and the commit are short and light,
the shards carry the model and the rows. A generated DAG spells them out from
``somlier offline create_v2 --score_queue/--score_pool/--score_cpu/--score_memory``.

Imported by DAG files: the Kubernetes client loads only when a pod override is built.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_somlier.errors import InvalidArgumentError

BASE_CONTAINER = "base"
"""The KubernetesExecutor runs the task in the container named ``base``; an override must name it to apply."""


def shard_pod_override(*, cpu: str | None = None, memory: str | None = None) -> dict[str, Any]:
    """``executor_config`` giving each task its own CPU and memory on the KubernetesExecutor.

    Requests equal limits (Kubernetes' Guaranteed class): a shard holds one batch of
    rows and the model, and should neither be squeezed by neighbours nor squeeze them.
    ``cpu`` and ``memory`` are Kubernetes quantities (``"1"``, ``"500m"``, ``"2Gi"``).
    The other executors ignore ``pod_override``, so the same DAG runs on Celery.
    """
    from kubernetes.client import models as k8s

    quantities = {name: value for name, value in (("cpu", cpu), ("memory", memory)) if value is not None}
    if not quantities:
        raise InvalidArgumentError("shard_pod_override needs cpu, memory or both (e.g. cpu='1', memory='2Gi')")
    for name, value in quantities.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(f"shard_pod_override {name} must be a Kubernetes quantity string, got {value!r}")
    resources = k8s.V1ResourceRequirements(requests=dict(quantities), limits=dict(quantities))
    pod = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(name=BASE_CONTAINER, resources=resources)]))
    return {"pod_override": pod}


def score_routing(
    queue: object = None, pool: object = None, executor_config: object = None, executor: object = None
) -> dict[str, Any]:
    """The BaseOperator arguments (``queue``, ``pool``, ``executor_config``, ``executor``) for the score tasks, checked.

    None leaves Airflow's default (the ``[operators] default_queue``, ``default_pool``, no
    override, the first of ``[core] executor``); anything else must be a non-blank name, or a
    dict for ``executor_config``. ``executor`` names one of the deployment's executors
    (``KubernetesExecutor`` beside Celery: the shards in pods, plan and commit on the workers).
    """
    routing: dict[str, Any] = {}
    for name, value, what in (("score_queue", queue, "a queue"), ("score_pool", pool, "a pool"),
                              ("score_executor", executor, "an executor")):
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(f"{name} must be {what}'s name (or None for the default), got {value!r}")
        routing[name[6:]] = value
    if executor_config is not None:
        if not isinstance(executor_config, dict):
            raise InvalidArgumentError(
                f"score_executor_config must be a dict such as shard_pod_override(cpu='1', memory='2Gi'), "
                f"got {type(executor_config).__name__}"
            )
        routing["executor_config"] = executor_config
    return routing
