"""The Kubernetes API stand-in, through the real Kubernetes client: what the KubernetesExecutor relies on."""

from __future__ import annotations

import os
import threading
import time

import pytest

from airflow_provider_somlier.devtools.kubernetes_api import KubernetesApi, label_selector_matches
from airflow_provider_somlier.devtools.pidfiles import PidFiles

NAMESPACE = "somlier"


@pytest.fixture
def cluster(tmp_path):
    from kubernetes import client, config

    api = KubernetesApi(tmp_path, dict(os.environ), pids=PidFiles(tmp_path / "pids")).start()
    loaded = client.Configuration()
    config.load_kube_config(str(api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)),
                            client_configuration=loaded)
    yield api, client.CoreV1Api(client.ApiClient(loaded))
    api.stop()
    assert api.pids.recorded() == {}, "a pod's pid file outlived the stand-in"


def pod(name: str, command: list[str], labels: dict[str, str] | None = None, env: list | None = None):
    from kubernetes import client

    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": "x"}),
                        spec=client.V1PodSpec(restart_policy="Never", containers=[
                            client.V1Container(name="base", image="somlier-local:dev", command=command, env=env)]))


def wait_phase(v1, name: str, phases: set[str], timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while (found := v1.read_namespaced_pod(name, NAMESPACE)).status.phase not in phases:
        assert time.monotonic() < deadline, f"{name} stayed {found.status.phase}"
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("selector, labels, matches", [
    ("airflow-worker=7,airflow_executor_done!=True", {"airflow-worker": "7"}, True),
    ("airflow-worker=7,airflow_executor_done!=True", {"airflow-worker": "7", "airflow_executor_done": "True"}, False),
    ("kubernetes_executor=True,airflow-worker notin (7,8)", {"kubernetes_executor": "True", "airflow-worker": "9"}, True),
    ("kubernetes_executor=True,airflow-worker notin (7,8)", {"kubernetes_executor": "True", "airflow-worker": "8"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier", {}, False),
    ("!tier", {}, True),
])
def test_label_selectors_follow_kubernetes(selector, labels, matches):
    assert label_selector_matches(selector, labels) is matches


def test_a_pod_runs_as_a_process_and_reports_its_exit_code_hostname_and_log(cluster):
    api, v1 = cluster
    v1.create_namespaced_pod(NAMESPACE, pod("p-fails", ["sh", "-c", "echo on $HOSTNAME; exit 3"]))
    done = wait_phase(v1, "p-fails", {"Succeeded", "Failed"})
    assert done.status.phase == "Failed"
    assert done.status.container_statuses[0].state.terminated.exit_code == 3
    assert api.log_path(NAMESPACE, "p-fails").read_text() == "on p-fails\n"
    assert api.pids.recorded() == {}  # an ended pod's file is gone
    failed = v1.list_namespaced_pod(NAMESPACE, field_selector="status.phase=Failed").items
    assert [p.metadata.name for p in failed] == ["p-fails"]
    with pytest.raises(Exception, match="409|AlreadyExists"):
        v1.create_namespaced_pod(NAMESPACE, pod("p-fails", ["true"]))


def test_a_watch_sees_a_pod_leave_its_selector_as_deleted_and_a_running_pod_deleted_after_its_grace(cluster):
    from kubernetes import watch

    api, v1 = cluster
    seen: list[tuple[str, str, str]] = []

    def follow() -> None:
        for event in watch.Watch().stream(v1.list_namespaced_pod, NAMESPACE, label_selector="app=x,done!=True",
                                          timeout_seconds=6, _request_timeout=30):
            seen.append((event["type"], event["object"].metadata.name, event["object"].status.phase))

    watcher = threading.Thread(target=follow)
    watcher.start()
    time.sleep(0.5)
    v1.create_namespaced_pod(NAMESPACE, pod("p-ok", ["true"]))
    v1.create_namespaced_pod(NAMESPACE, pod("p-sleeps", ["sleep", "60"]))
    wait_phase(v1, "p-ok", {"Succeeded"})
    wait_phase(v1, "p-sleeps", {"Running"})
    v1.patch_namespaced_pod("p-ok", NAMESPACE, {"metadata": {"labels": {"done": "True"}}})
    v1.delete_namespaced_pod("p-sleeps", NAMESPACE, grace_period_seconds=1)
    watcher.join(15)
    assert ("DELETED", "p-ok", "Succeeded") in seen  # left the selector: not a deletion of the pod
    assert [p.metadata.name for p in v1.list_namespaced_pod(NAMESPACE).items] == ["p-ok"]
    assert seen[-1] == ("DELETED", "p-sleeps", "Running") and api.pid(NAMESPACE, "p-sleeps") is None


def test_an_env_from_a_secret_leaves_the_pod_pending_with_the_reason_the_executor_fails_it_on(cluster):
    from kubernetes import client

    _, v1 = cluster
    secret = client.V1EnvVar(name="TOKEN", value_from=client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name="s", key="k")))
    v1.create_namespaced_pod(NAMESPACE, pod("p-secret", ["true"], env=[secret]))
    deadline = time.monotonic() + 10
    while not (statuses := v1.read_namespaced_pod("p-secret", NAMESPACE).status.container_statuses):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert statuses[0].state.waiting.reason == "CreateContainerConfigError"


def test_a_container_ends_with_every_process_it_started_even_one_in_a_session_of_its_own(cluster, tmp_path):
    import psutil

    api, v1 = cluster
    marker = tmp_path / "escaped.pid"
    # the first process starts a long sleeper in a new session (as Airflow's supervisor puts its task in a
    # process group of its own), then exits: the container, and so the sleeper, ends with it
    script = f"setsid sleep 300 & echo $! > {marker}; sleep 0.5"
    v1.create_namespaced_pod(NAMESPACE, pod("p-leaves-a-child", ["sh", "-c", script]))
    assert wait_phase(v1, "p-leaves-a-child", {"Succeeded", "Failed"}).status.phase == "Succeeded"
    escaped = int(marker.read_text())
    assert not psutil.pid_exists(escaped) or psutil.Process(escaped).status() == psutil.STATUS_ZOMBIE

    v1.create_namespaced_pod(NAMESPACE, pod("p-killed", ["sh", "-c", f"setsid sleep 300 & echo $! > {marker}; wait"]))
    wait_phase(v1, "p-killed", {"Running"})
    deadline = time.monotonic() + 10
    while not marker.read_text().strip() or int(marker.read_text()) == escaped:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    sleeper = int(marker.read_text())
    assert sleeper in api.kill(NAMESPACE, "p-killed")  # a lost node: everything in the container
    done = wait_phase(v1, "p-killed", {"Failed"})
    assert done.status.container_statuses[0].state.terminated.exit_code == 137
    assert not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE


def test_a_running_pod_is_in_the_pid_files_so_a_killed_demo_s_pods_are_stopped_by_the_next(cluster):
    """A demo killed with -9 leaves its pods' processes; the next one stops what the pid files name."""
    import psutil

    api, v1 = cluster
    v1.create_namespaced_pod(NAMESPACE, pod("p-left", ["sleep", "600"]))
    wait_phase(v1, "p-left", {"Running"})
    shim = api.pid(NAMESPACE, "p-left")
    assert api.pids.recorded() == {f"pod-{NAMESPACE}-p-left": shim}
    processes = [psutil.Process(shim), *psutil.Process(shim).children(recursive=True)]
    # as if the stand-in had died without stopping its pods: the pid file is what is left
    assert api.pids.stop_stale(timeout=5) == [f"pod-{NAMESPACE}-p-left"]
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, f"still running: {alive}"
    assert wait_phase(v1, "p-left", {"Failed"}).status.phase == "Failed"
