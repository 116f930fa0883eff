"""Routing score tasks: queue, pool, executor and a KubernetesExecutor pod override, on the group and from the generator.

No cluster here: the pod override is checked with the Kubernetes client's models and merged
into a base pod the way the KubernetesExecutor merges it (``PodGenerator.reconcile_pods``).
Celery queue routing is tested on the Celery stack (``tests/celery/``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.operators.routing import BASE_CONTAINER, score_routing, shard_pod_override
from tests.generate.test_cli import OFFLINE_ARGS, somlier


def _group_dag(**routing):
    from airflow.sdk import DAG

    from airflow_provider_somlier.operators.sharded import sharded_offline

    with DAG("routed", schedule=None, start_date=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)) as dag:
        sharded_offline("predict", shards=4, model_ref="m@champion", dataset_ref="f.t", dataset_load_column="d",
                        destination_table_ref="p.t", **routing)
    return dag


def test_the_pod_override_is_a_kubernetes_pod_whose_base_container_gets_cpu_and_memory_as_requests_and_limits():
    from kubernetes.client import models as k8s

    override = shard_pod_override(cpu="1", memory="4Gi")["pod_override"]
    assert isinstance(override, k8s.V1Pod)
    (container,) = override.spec.containers
    assert container.name == BASE_CONTAINER == "base"
    assert container.resources.requests == container.resources.limits == {"cpu": "1", "memory": "4Gi"}


def test_the_kubernetes_executor_merges_the_override_into_its_worker_pod():
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    from kubernetes.client import models as k8s

    worker = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", image="somlier:1")]))
    merged = PodGenerator.reconcile_pods(worker, shard_pod_override(memory="2Gi")["pod_override"])
    (container,) = merged.spec.containers
    assert container.image == "somlier:1"
    assert container.resources.limits == {"memory": "2Gi"}


def test_a_pod_override_without_resources_or_with_a_non_string_quantity_is_refused():
    with pytest.raises(InvalidArgumentError, match="cpu, memory or both"):
        shard_pod_override()
    with pytest.raises(InvalidArgumentError, match="quantity"):
        shard_pod_override(cpu=2)


def test_queue_pool_and_executor_config_reach_the_score_tasks_only():
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _group_dag(score_queue="bigmem", score_pool="somlier_scoring", score_executor="KubernetesExecutor",
                     score_executor_config=shard_pod_override(cpu="1", memory="4Gi"))
    score, plan, commit = (dag.get_task(f"predict.{name}") for name in ("score", "plan", "commit"))
    assert (score.queue, score.pool, score.executor) == ("bigmem", "somlier_scoring", "KubernetesExecutor")
    assert score.executor_config["pod_override"].spec.containers[0].resources.limits == {"cpu": "1", "memory": "4Gi"}
    for light in (plan, commit):
        assert light.queue != "bigmem" and light.pool != "somlier_scoring" and not light.executor_config
        assert light.executor is None
    # what the scheduler and the executors read: the serialized DAG keeps the pod override
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("predict.score")
    assert restored.executor_config["pod_override"].spec.containers[0].resources.requests["memory"] == "4Gi"


@pytest.mark.parametrize("bad", [{"queue": ""}, {"pool": "  "}, {"queue": 3}, {"executor_config": "pod"},
                                 {"executor": ""}])
def test_a_blank_or_mistyped_route_is_refused_by_name(bad):
    with pytest.raises(InvalidArgumentError, match="score_"):
        score_routing(**bad)


def test_create_v2_renders_the_routes_on_the_score_tasks_and_the_file_loads_in_a_dagbag(tmp_path):
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--shards", "4", "--score_queue", "bigmem",
                   "--score_pool", "somlier_scoring", "--score_cpu", "1", "--score_memory", "4Gi",
                   "--score_executor", "KubernetesExecutor", "--dry_run", check=True)
    assert ("--score_queue bigmem --score_pool somlier_scoring --score_executor KubernetesExecutor --score_cpu 1 "
            "--score_memory 4Gi") in done.stdout
    assert "score_executor='KubernetesExecutor'," in done.stdout
    assert "score_executor_config=shard_pod_override(cpu='1', memory='4Gi')" in done.stdout
    source = done.stdout.split("\n# dry run:")[0]
    (tmp_path / "routed.py").write_text(source)
    probe = textwrap.dedent(f"""
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(tmp_path)!r}, safe_mode=False)
        assert not bag.import_errors, bag.import_errors
        score = bag.dags["inference_boston_house_price"].get_task("predict.score")
        limits = score.executor_config["pod_override"].spec.containers[0].resources.limits
        print("ROUTE", score.queue, score.pool, score.executor, limits["cpu"], limits["memory"])
    """)
    # A DAG file may name only executors the deployment runs: Celery with Kubernetes beside it
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor,KubernetesExecutor"}
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
    routes = [line.split()[1:] for line in loaded.stdout.splitlines() if line.startswith("ROUTE ")]
    assert routes == [["bigmem", "somlier_scoring", "KubernetesExecutor", "1", "4Gi"]], loaded.stderr[-2000:]


def test_create_v2_without_shards_routes_the_single_task():
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--score_queue", "bigmem", "--dry_run", check=True)
    assert "        queue='bigmem',\n" in done.stdout and "score_queue=" not in done.stdout.split("#   somlier")[1].split("\n", 1)[1]


@pytest.mark.parametrize("option,value", [("--score_queue", ""), ("--score_queue", "big mem"),
                                          ("--score_cpu", "lots"), ("--score_memory", "4 GB"),
                                          ("--score_executor", "Kube rnetes")])
def test_create_v2_refuses_a_bad_route_naming_the_option(option, value):
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--shards", "2", option, value, "--dry_run")
    assert done.returncode == 2 and option in done.stderr


def test_create_v2_names_an_executor_this_machine_does_not_run_and_still_lints_and_commits(tmp_path):
    repo = tmp_path / "dags-repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    done = somlier(*OFFLINE_ARGS, "--start_date", "2026-11-22", "--shards", "2", "--score_executor",
                   "KubernetesExecutor", "--local_repo", str(repo),
                   env={"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}, check=True)  # the generating machine's
    written = (repo / "dags" / "inference_boston_house_price.py").read_text()
    assert "score_executor='KubernetesExecutor'," in written and "lint" in done.stderr.lower()
