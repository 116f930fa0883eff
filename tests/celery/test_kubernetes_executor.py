"""The sharded day on the KubernetesExecutor: a pod per shard with its resources, a lost pod retried.

The executor runs in the session's production-shaped stack beside Celery (``[core] executor =
CeleryExecutor,KubernetesExecutor``; the DAG is generated with ``create_v2 --score_executor
KubernetesExecutor``), against the local Kubernetes API stand-in (``devtools/kubernetes_api.py``):
it builds each shard's pod from the template and the task's ``pod_override``, creates it,
follows it through a watch and deletes it, as on a cluster. Each pod is a process tree whose
host name is its pod's name, so a task instance's ``hostname`` says which pod ran it.
"""

from __future__ import annotations

import time

import psutil
import pytest

from airflow_provider_somlier.devtools.airflow_kubernetes import NAMESPACE
from tests.celery.conftest import Dags, day_rows, shards, source_ids, task_instances, trigger, wait_run

pytestmark = pytest.mark.e2e
SHARD_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def pods_of(stack, dag_id: str, run_id: str) -> dict[str, dict]:
    """Every pod the executor created for the run, by name, as it sent them."""
    return {pod["metadata"]["name"]: pod for pod in stack.kubernetes.created
            if pod["metadata"]["annotations"].get("dag_id") == dag_id
            and pod["metadata"]["annotations"].get("run_id") == run_id}


def test_generated_shards_run_in_pods_with_their_resources_and_a_killed_pod_is_retried_in_a_new_one(
    celery_stack, celery_features, hang_model, bq_client
):
    stack, session, destinations = celery_stack
    _, armed = hang_model
    hanging = armed.with_name(armed.name + ".hanging")
    armed.touch()  # the next predict anywhere hangs: its pod is then killed, as when its node is lost
    run_id = trigger(stack, session, Dags.PODS)  # create_v2 --shards 2 --score_executor KubernetesExecutor …
    deadline = time.monotonic() + 240
    while True:
        stack.check_alive()
        running = [ti for ti in shards(stack, session, Dags.PODS, run_id) if ti["state"] == "running"]
        hung = [ti for ti in running if ti["hostname"] in pods_of(stack, Dags.PODS, run_id)]
        if hanging.exists() and len(running) == 1 and hung and stack.kubernetes.pid(NAMESPACE, hung[0]["hostname"]):
            break
        assert time.monotonic() < deadline, f"the hanging shard never ran alone in a pod: {running}"
        time.sleep(0.5)
    victim, index = hung[0]["hostname"], hung[0]["map_index"]
    container = psutil.Process(stack.kubernetes.pid(NAMESPACE, victim))
    killed = [container, *container.children(recursive=True)]  # taken before the kill: pids are reaped after it
    assert running[0]["pid"] in {process.pid for process in killed}  # the task's own process, in a group of its own
    stack.kubernetes.kill(NAMESPACE, victim)  # every process in it
    hanging.unlink()
    assert wait_run(stack, session, Dags.PODS, run_id) == "success"

    tis = {(ti["task_id"], ti["map_index"]): ti for ti in task_instances(stack, session, Dags.PODS, run_id)}
    assert sorted(tis) == [("predict.commit", -1), ("predict.plan", -1), ("predict.score", 0), ("predict.score", 1)]
    assert {ti["state"] for ti in tis.values()} == {"success"}
    scores = [tis[("predict.score", i)] for i in (0, 1)]
    assert {ti["executor"] for ti in scores} == {"KubernetesExecutor"}
    assert scores[index]["try_number"] >= 2 and scores[index]["hostname"] != victim
    for light in (tis[("predict.plan", -1)], tis[("predict.commit", -1)]):  # plan and commit stay on Celery
        assert light["executor"] != "KubernetesExecutor" and light["hostname"] in stack.workers
    pods = pods_of(stack, Dags.PODS, run_id)
    # a pod per attempt of a shard: the killed one and its retry's, and the other shard's
    assert {ti["hostname"] for ti in scores} | {victim} == set(pods) and len(pods) == 3
    for pod in pods.values():
        base = pod["spec"]["containers"][0]
        assert base["name"] == "base" and base["image"] == "somlier-local:dev"
        assert base["args"][:3] == ["python", "-m", "airflow.sdk.execution_time.execute_workload"]
        assert base["resources"] == SHARD_RESOURCES
    assert day_rows(bq_client, destinations[Dags.PODS]) == (source_ids(bq_client, celery_features), 1)
    assert not [process.pid for process in killed if process.is_running() and process.status() != "zombie"]
    succeeded = {ti["hostname"] for ti in scores}
    deadline = time.monotonic() + 60  # succeeded pods are deleted ([kubernetes_executor] delete_worker_pods)
    while succeeded & {pod["metadata"]["name"] for pod in stack.kubernetes.pods()}:
        assert time.monotonic() < deadline, "the run's succeeded pods were not deleted within 60 s"
        time.sleep(1)
