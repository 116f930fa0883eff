"""Real local servers for the whole test session.

* a local BigQuery emulator (bqemulator, its own venv) that the real
  google-cloud-bigquery and Storage Read clients talk to over HTTP/gRPC;
* an MLflow registry on SQLite with a Ridge model trained here (versions 1 and 2,
  alias ``champion`` on version 1);
* an Airflow home with a migrated metadata database, for ``dag.test()``.

Airflow reads its configuration at import time, so the environment is set up here,
before anything imports ``airflow``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="somlier-tests-"))
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_SESSION_DIR / "airflow" / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR / 'airflow' / 'airflow.db'}"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Every task of the session (in-process and on the real Airflows) shares one host model cache.
os.environ["AIRFLOW__SOMLIER__MODEL_CACHE_DIR"] = str(_SESSION_DIR / "model-cache")

from airflow_provider_somlier.devtools.emulator import running_emulator  # noqa: E402
from airflow_provider_somlier.devtools.sample_data import load_features  # noqa: E402
from airflow_provider_somlier.devtools.sample_model import train_and_register  # noqa: E402

MODEL_NAME = "diabetes-ridge"
FEATURE_DAYS = [dt.date(2026, 11, 14) + dt.timedelta(days=i) for i in range(8)]  # 11-14 .. 11-21
ROWS_PER_DAY = 50


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def emulator(session_dir):
    with running_emulator(session_dir / "bqemulator.log") as running:
        os.environ["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"] = running.connection_uri_json()
        yield running


@pytest.fixture(scope="session")
def bq_client(emulator):
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    return SomlierBigQueryHook().client()


@pytest.fixture(scope="session")
def registry(session_dir):
    """A SQLite MLflow registry with two versions of the model; ``champion`` → version 1."""
    uri = f"sqlite:///{session_dir / 'mlflow.db'}"
    artifacts = (session_dir / "mlartifacts").as_uri()
    first = train_and_register(uri, MODEL_NAME, alpha=1.0, alias="champion", artifact_root=artifacts)
    second = train_and_register(uri, MODEL_NAME, alpha=0.1, artifact_root=artifacts)
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps({"conn_type": "mlflow", "host": uri})
    return {"uri": uri, "v1": first, "v2": second}


@pytest.fixture(scope="session")
def features_table(emulator, bq_client) -> str:
    table_id = f"{emulator.project}.features.diabetes"
    load_features(bq_client, table_id, FEATURE_DAYS, ROWS_PER_DAY)
    return table_id


@pytest.fixture(scope="session")
def airflow_db(session_dir):
    """A migrated Airflow metadata database (needed by ``dag.test()``)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return session_dir / "airflow"


_counter = iter(range(1_000_000))


@pytest.fixture
def destination(emulator, bq_client) -> str:
    """A fresh destination table id (not created) in the ``predictions`` dataset."""
    bq_client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    return f"{emulator.project}.predictions.t{next(_counter)}_{os.getpid()}"


@pytest.fixture(scope="session")
def gcs():
    """gcp-storage-emulator on loopback; the Google client finds it through STORAGE_EMULATOR_HOST."""
    import time

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from airflow_provider_somlier.devtools.emulator import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    client = storage.Client(project="somlier-local", credentials=AnonymousCredentials())
    try:
        for _ in range(100):
            try:
                list(client.list_buckets())
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        yield {"client": client, "host": os.environ["STORAGE_EMULATOR_HOST"]}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def lineage_collector():
    """A local OpenLineage HTTP endpoint: ``(url, events)``; the provider's HTTP transport posts run events here."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    events: list[dict] = []

    class Collect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", events
    server.shutdown()


@pytest.fixture(scope="session")
def shared_airflow(session_dir, emulator, registry, lineage_collector):
    """One real local Airflow (API server, scheduler, DAG processor; LocalExecutor on SQLite) for the
    modules that only add DAGs to it: ``tests/e2e/test_airflow_end_to_end.py`` and
    ``tests/sharded/test_sharded_on_airflow.py``. Starting one costs ~40 s of CPU on these two cores.

    Its DAGs folder is ``repo/dags`` in a git work tree (``create_v2 --local_repo`` commits
    there; files the tests write beside are left untracked). Its tasks post OpenLineage
    events to ``lineage_events``. Modules that kill its components, or need other settings
    (authentication), start their own.
    """
    from airflow_provider_somlier.devtools.airflow_local import running_airflow

    repo = session_dir / "shared-airflow-dags-repo"
    (repo / "dags").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    transport = {"type": "http", "url": lineage_collector[0], "endpoint": "api/v1/lineage", "timeout": 10}
    with running_airflow(
        session_dir / "shared-airflow", repo / "dags", extra_env={"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)}
    ) as running:
        running.repo = repo
        running.lineage_events = lineage_collector[1]
        yield running


@pytest.fixture(scope="session")
def mlflow_server(session_dir):
    """A real MLflow tracking server and registry on loopback, SQLite-backed, serving artifacts."""
    import time
    import urllib.request

    from airflow_provider_somlier.devtools.emulator import free_port, stop_pid
    from airflow_provider_somlier.devtools.mlflow_server import start_mlflow_server

    port = free_port()
    folder = session_dir / "mlflow-server"
    folder.mkdir()
    process = start_mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", port, folder / "server.log",
                                  artifacts_destination=folder / "artifacts")
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"mlflow server exited; see {folder / 'server.log'}") from None
                time.sleep(0.2)
        yield url
    finally:
        stop_pid(process.pid)


# Modules that drive real Airflow schedulers, whole demos, gunicorn fleets or training
# grids: minutes each. ``./scripts/test.sh --quick`` (``-m "not slow"``) leaves them out
# for everyday work; CI runs everything.
SLOW_MODULES = (
    "tests/scripts/",
    "tests/e2e/",
    "tests/devtools/test_airflow_local.py",
    "tests/sharded/test_sharded_on_airflow.py",
    "tests/sharded/test_sharded_kill.py",
    "tests/sharded/test_sharded_dag.py",
    "tests/sharded/test_generated_sharded_dag.py",
    "tests/lifecycle/",
    "tests/online/test_mlflow_model.py",
    "tests/online/test_gunicorn_switch.py",
    "tests/online/test_worker_exits.py",
    "tests/online/test_slow_clients.py",
    "tests/online/test_native_threads.py",
    "tests/online/test_follow.py",
    "tests/online/test_tf_model.py",
    "tests/generate/",
    "tests/operators/test_offline_dag.py",
    "tests/operators/test_offline_retries.py",
    "tests/operators/test_offline_on_kill.py",
    "tests/faults/",
    "tests/hooks/test_mlflow_hook.py",
    "tests/unit/test_skops_import.py",
    "tests/unit/test_preload.py",
    "tests/ui/test_browser.py",
    "tests/celery/",
    "tests/devtools/test_servers.py",
)


# ``./scripts/test.sh`` runs the suite on three pytest-xdist workers (``--dist loadscope``, with
# the scheduler below). The modules that start a whole Airflow (or a demo, which starts one),
# but for LIGHT_AIRFLOW_MODULES, run one after another on one worker: two of them at once on
# two cores starve each other's schedulers. Every other module goes to a worker whole (its
# module- and session-scoped servers start once per worker), the longest first, so that none
# is left to end the run alone. The Airflow modules spend much of their time waiting on
# schedulers and heartbeats (about 0.75 of a core on average), so two workers left a third of
# the two cores idle; with three, the other two workers fill it and the serial Airflow modules
# end the run (measured on one clone: 10 min 16 s with two workers, 9 min 38 s with three, the
# same CPU seconds in all; 7 min 23 s – 8 min 31 s with the light module beside them).
# Tried: three workers with these modules in two groups (at most two Airflows at once) took
# longer from fresh clones, 18 min 24 s against 15 min 39 s: the two cores were already busy,
# and contention made the processes spend more CPU in all (1,948 s against 1,505 s).
REAL_AIRFLOW_MODULES = (
    "tests/scripts/test_demo.py",
    "tests/celery/",
    "tests/sharded/test_sharded_on_airflow.py",
    "tests/e2e/test_airflow_end_to_end.py",
    "tests/ui/test_browser.py",
)
# Modules marked e2e whose Airflow is light enough to run beside one of the above: a DAG of one
# EmptyOperator (~0.5 of a core), and waits that follow progress rather than fixed limits. Out of
# the serial group, its minute no longer lengthens the run's longest path.
LIGHT_AIRFLOW_MODULES = (
    "tests/devtools/test_airflow_local.py",
)
LONGEST_FIRST = (  # by wall seconds in a profiled run (SOMLIER_TEST_PROFILE, tests/module_cost.py)
    *REAL_AIRFLOW_MODULES,
    "tests/lifecycle/test_train.py",
    "tests/e2e/test_lifecycle_chain.py",
    "tests/lifecycle/test_register_anywhere.py",
    *LIGHT_AIRFLOW_MODULES,
    "tests/online/test_mlflow_model.py",
    "tests/generate/test_cli.py",
    "tests/online/test_slow_clients.py",
    "tests/online/test_gunicorn_switch.py",
    "tests/operators/test_offline_bad_input.py",
    "tests/lifecycle/test_web.py",
    "tests/faults/",
    "tests/operators/test_offline_dag.py",
    "tests/hooks/test_mlflow_hook.py",
    "tests/sharded/test_sharded_kill.py",
    "tests/lifecycle/test_registry_and_config.py",
    "tests/lifecycle/test_register_v2.py",
)


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent.parent
    where = {item: Path(str(item.fspath)).resolve().relative_to(root).as_posix() for item in items}

    def rank(item) -> int:
        return next((i for i, prefix in enumerate(LONGEST_FIRST) if where[item].startswith(prefix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: a module's tests keep their order
    for item in items:
        if where[item].startswith(SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
    listed = REAL_AIRFLOW_MODULES + LIGHT_AIRFLOW_MODULES
    unlisted = sorted({where[item] for item in items
                       if item.get_closest_marker("e2e") and not where[item].startswith(listed)})
    if unlisted:
        raise pytest.UsageError(f"modules marked e2e start a whole Airflow: list {unlisted} in REAL_AIRFLOW_MODULES "
                                "(tests/conftest.py) so that they never run beside another, or in "
                                "LIGHT_AIRFLOW_MODULES if their Airflow is light enough to")


def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadscope``: a work unit is a module, or all of REAL_AIRFLOW_MODULES together."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "real-airflow" if module.startswith(REAL_AIRFLOW_MODULES) else module

    return ModuleScheduling(config, log)


def pytest_sessionfinish(session, exitstatus):
    """The session's folder (Airflow home, registry, emulator data, model cache) goes with it,
    unless SOMLIER_KEEP_TEST_DIR asks to keep it for a look after a failure."""
    import shutil

    if os.environ.get("SOMLIER_KEEP_TEST_DIR"):
        print(f"\nSoMLier test session folder kept: {_SESSION_DIR}")
        return
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def pytest_configure(config):
    if os.environ.get("SOMLIER_TEST_PROFILE"):
        from tests.module_cost import ModuleCost

        config.pluginmanager.register(ModuleCost(Path(os.environ["SOMLIER_TEST_PROFILE"])), "somlier-module-cost")
