"""The SoMLier demo on the embedded default: no cloud account, everything on loopback.

1. starts the local BigQuery emulator and an MLflow UI over a SQLite registry,
2. trains a Ridge model on sklearn's diabetes data, registers it, points ``champion`` at it,
   and loads 14 days of feature rows into ``features.diabetes``,
3. generates the DAG with ``somlier offline create_v2`` into a local git repository that
   is Airflow's dags folder,
4. starts a real Airflow (API server, scheduler, DAG processor; LocalExecutor, SQLite),
   waits for the DAG (``--check_airflow``), triggers a run through the REST API v2, then a
   7-day backfill, then reruns one finished day by clearing it,
5. prints a table per target day and where to open the Airflow and MLflow UIs and the
   Predictions page (the provider's Airflow plugin).

``--executor celery`` runs the same path on the production-shaped stack instead
(PostgreSQL, Redis, CeleryExecutor with the workers ``worker-a`` and ``worker-b``, plus the
triggerer) with a DAG of 4 shards (``create_v2 --shards 4``) over bigger days, and prints
which worker ran each shard of each day. ``--executor kubernetes`` adds the KubernetesExecutor
beside Celery, on the local Kubernetes API stand-in, and generates the DAG with
``--score_executor KubernetesExecutor --score_cpu 1 --score_memory 1Gi``: each shard runs in
a pod of its own (plan and commit on the Celery workers), and the table names the pods.

Everything it started is stopped on exit, on Ctrl-C and on SIGTERM or SIGHUP alike
(``--serve`` keeps the UIs up until one of them). Each server is recorded in a pid file
under ``.somlier/pids/`` while it runs, so a demo whose own process was killed with ``-9``
leaves nothing behind for long: the next demo stops those servers before starting its own.
Run it through ``scripts/demo.sh``, which installs the locked environment first.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KST = dt.timezone(dt.timedelta(hours=9))
DAG_ID = "inference_diabetes_ridge"
# Waits give up when nothing moved for this long: more than the generated DAG's first retry
# delay (2 minutes), so a task retrying after a timeout on a busy machine is waited for.
NO_PROGRESS_SECONDS = 240
CELERY_SHARDS = 4
CELERY_ROWS_PER_DAY = 16_000  # a read under ~1 MB is one stream: a day this big splits into 4


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal, raised wherever the demo is, so every ``with`` block stops what it started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: list[int] = []  # stop signals that arrived while the demo was already stopping
_requested: list[int] = []  # the stop signal raised as Stopped (raised again if Python dropped it)
_shielded: list[bool] = []  # set once the demo is stopping: nothing is raised from then on


def _stop(signum: int, frame: object) -> None:
    # Ctrl-C, `kill`, `timeout`, `docker stop` and a closed terminal all end the same way; a
    # second signal must not cut the cleanup short, so the rest are ignored from here on.
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    _requested.append(signum)
    raise Stopped(signum)


def stop_if_requested() -> None:
    """Raise again a stop that Python dropped.

    A signal handler runs wherever the main thread is, and that can be a garbage collector's
    callback (seen: SQLAlchemy's weakref callbacks while google-cloud-bigquery was imported);
    Python prints an exception raised there as "Exception ignored" and goes on, and the demo
    would run to its end after a SIGTERM. Every step and every wait calls this, so such a stop
    takes effect at the next one.
    """
    if _requested and not _shielded:
        raise Stopped(_requested[0])


def _quiet_dropped_stop(unraisable: object) -> None:
    """The dropped Stopped is not an error to print: ``stop_if_requested`` raises it again."""
    if isinstance(getattr(unraisable, "exc_value", None), Stopped):
        return
    sys.__unraisablehook__(unraisable)


def _stopping(signum: int, frame: object) -> None:
    """Once the demo is stopping (after an error too), a signal is noted, never raised: cleanup runs whole."""
    _received.append(signum)


def shield_cleanup() -> None:
    _shielded.append(True)
    for each in STOP_SIGNALS:
        if signal.getsignal(each) is _stop:
            signal.signal(each, _stopping)


def watch_servers(servers: dict[str, int]) -> None:
    """Fail by name when a server the demo started (the emulator, the MLflow UI) has died."""
    stop_if_requested()
    import psutil

    from airflow_provider_somlier.devtools.airflow_local import ComponentDiedError

    for name, pid in servers.items():
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            raise ComponentDiedError(f"{name} (pid {pid}) has exited; its log is in the state folder")


def step(message: str) -> None:
    stop_if_requested()
    print(f"\033[1m==> {message}\033[0m", flush=True)


@contextlib.contextmanager
def mlflow_ui(tracking_uri: str, artifacts: Path, port: int, state: Path, pids):
    from airflow_provider_somlier.devtools.mlflow_server import start_mlflow_server
    from airflow_provider_somlier.devtools.processes import stop_pid

    process = start_mlflow_server(tracking_uri, port, state / "mlflow-ui.log", default_artifact_root=artifacts.as_uri())
    pids.record("mlflow-ui", process.pid)
    try:
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_pid(process.pid)
        pids.forget("mlflow-ui")


def print_shard_workers(airflow, session, runs: list[dict], where: str = "worker") -> None:
    """Per run, which Celery worker (or pod) ran each shard: the task instance's hostname is its name."""
    step(f"Which {where} ran each shard")
    for run in sorted(runs, key=lambda r: r["logical_date"]):
        instances = session.get(
            f"{airflow.url}/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/predict.score/listMapped",
            timeout=30,
        ).json().get("task_instances", [])
        workers = ", ".join(f"shard {ti['map_index']} {ti.get('hostname') or '-'}"
                            for ti in sorted(instances, key=lambda ti: ti["map_index"]))
        print(f"    run of {run['logical_date'][:10]}  {workers or 'no shard (an empty day)'}")


def main() -> int:
    parser = argparse.ArgumentParser(description="SoMLier demo on a local BigQuery emulator, MLflow and Airflow.")
    parser.add_argument("--serve", action="store_true", help="keep Airflow and the MLflow UI up until Ctrl-C")
    parser.add_argument("--executor", choices=("local", "celery", "kubernetes"), default="local",
                        help="local: LocalExecutor on SQLite (light); celery: PostgreSQL, Redis, two Celery workers, "
                             "a DAG of 4 shards; kubernetes: the same with the KubernetesExecutor beside Celery, "
                             "each shard in a pod of the local Kubernetes API stand-in")
    parser.add_argument("--rows-per-day", type=int, default=None,
                        help="feature rows per day (default 1000; 16000 with --executor celery or kubernetes, "
                             "so a day splits in 4)")
    parser.add_argument("--state-dir", type=Path, default=REPO / ".somlier", help="logs, databases and pid files")
    args = parser.parse_args()
    state: Path = args.state_dir.resolve()

    from airflow_provider_somlier.devtools.pidfiles import PidFiles

    state.mkdir(parents=True, exist_ok=True)
    pids = PidFiles(state / "pids")
    stale_servers = pids.stop_stale()
    if stale_servers:
        step(f"Stopped what a previous demo left running: {', '.join(stale_servers)}")
    if args.rows_per_day is None:
        args.rows_per_day = CELERY_ROWS_PER_DAY if args.executor != "local" else 1_000
    for stale in ("airflow", "celery", "dags-repo", "bigquery"):  # a demo run starts from scratch, so it can run twice
        shutil.rmtree(state / stale, ignore_errors=True)
    tracking_uri = f"sqlite:///{state / 'mlflow.db'}"
    today = dt.datetime.now(KST).date()

    with contextlib.ExitStack() as stack:
        try:
            return run_demo(args, state, pids, tracking_uri, today, stack)
        except Exception as error:
            shield_cleanup()
            step(f"Stopping every server after: {type(error).__name__}: {str(error).splitlines()[0]}")
            raise
        finally:
            shield_cleanup()  # the stack below stops every server even if a signal arrives now


def run_demo(args: argparse.Namespace, state: Path, pids, tracking_uri: str, today: dt.date, stack) -> int:
    """Start the servers (entered on ``stack``), generate the DAG, run, backfill and clear it, print the days."""
    from airflow_provider_somlier.devtools.airflow_local import local_connections, running_airflow
    from airflow_provider_somlier.devtools.emulator import free_port, running_emulator
    from airflow_provider_somlier.devtools.sample_data import load_features
    from airflow_provider_somlier.devtools.sample_model import train_and_register

    # The model trains on a thread while the emulator starts: neither needs the other, and each
    # spends most of its few seconds importing, which two processes do side by side.
    step(f"Starting the local BigQuery emulator; training diabetes-ridge into the registry at {tracking_uri} meanwhile")
    training = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="demo-training")
    trained = training.submit(train_and_register, tracking_uri, "diabetes-ridge", alias="champion",
                              artifact_root=(state / "mlartifacts").as_uri())
    training.shutdown(wait=False)
    emulator = stack.enter_context(running_emulator(state / "bqemulator.log", data_dir=state / "bigquery", pids=pids))
    os.environ.update(local_connections(emulator, tracking_uri))
    print(f"    REST {emulator.api_endpoint}, Storage Read {emulator.storage_read_endpoint}")
    model = trained.result()
    print(f"    version {model.version} (run {model.run_id}), alias champion → {model.version}")
    mlflow_url, mlflow_pid = stack.enter_context(mlflow_ui(tracking_uri, state / "mlartifacts", free_port(), state, pids))
    servers = {"the BigQuery emulator": emulator.pid, "the MLflow UI": mlflow_pid}

    days = [today - dt.timedelta(days=i) for i in range(14, 0, -1)]
    step(f"Loading {args.rows_per_day} feature rows a day for {days[0]} .. {days[-1]}")
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

    client = SomlierBigQueryHook().client()
    load_features(client, f"{emulator.project}.features.diabetes", days, args.rows_per_day)
    client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)

    repo = state / "dags-repo"
    (repo / "dags").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    celery, kubernetes = args.executor != "local", args.executor == "kubernetes"
    # The Predictions pages link each model version to the MLflow UI the demo started.
    ui_env = {"AIRFLOW__SOMLIER__MLFLOW_UI_URL": mlflow_url}
    if celery:
        from airflow_provider_somlier.devtools.airflow_celery import running_celery_airflow

        step("Starting Airflow on PostgreSQL and Redis (API server, scheduler, DAG processor, triggerer, "
             "Celery workers worker-a and worker-b" + (", the KubernetesExecutor beside them)" if kubernetes else ")"))
        airflow = stack.enter_context(running_celery_airflow(state / "celery", repo / "dags", pids=pids,
                                                             extra_env=ui_env, kubernetes=kubernetes))
        print(f"    PostgreSQL on port {airflow.postgres.port}, Redis on port {airflow.redis.port}")
        if airflow.kubernetes is not None:
            print(f"    Kubernetes API (local stand-in) at {airflow.kubernetes.url}, pods' logs under "
                  f"{airflow.kubernetes.folder / 'pods'}")
    else:
        step("Starting Airflow (API server, scheduler, DAG processor)")
        airflow = stack.enter_context(running_airflow(state / "airflow", repo / "dags", pids=pids, extra_env=ui_env))
    print(f"    Airflow at {airflow.url}")

    def wait_runs(count: int) -> list[dict]:
        # Waits follow progress: a task retrying after a busy-machine timeout is not a hang,
        # and a dead component (Airflow's, the emulator, the MLflow UI) fails within seconds by name.
        return airflow.wait_runs(
            session, DAG_ID, count, no_progress_seconds=NO_PROGRESS_SECONDS,
            watch=lambda: watch_servers(servers), on_progress=lambda line: print(f"    {line}", flush=True),
        )

    shards = ["--shards", str(CELERY_SHARDS)] if celery else []
    if kubernetes:
        shards += ["--score_executor", "KubernetesExecutor", "--score_cpu", "1", "--score_memory", "1Gi"]
    step(f"somlier offline create_v2 … {DAG_ID} … {' '.join(shards)} --local_repo {repo} --check_airflow".replace("  ", " "))
    generated = subprocess.run(
        [sys.executable, "-m", "airflow_provider_somlier.cli", "offline", "create_v2", "diabetes-ridge@champion",
         DAG_ID, "0 0 * * *", "features.diabetes", "load_date", "predictions.diabetes_ridge", "-",
         "--start_date", str(days[0]), "--passthrough_columns", "row_id", "--local_repo", str(repo),
         *shards, "--check_airflow"],
        env=os.environ | {"SOMLIER_AIRFLOW_API_URL": airflow.url, "SOMLIER_CONFIG": "/nonexistent"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # one stream, in the order it was written
    )
    print("    " + generated.stdout.strip().replace("\n", "\n    "))
    if generated.returncode:
        return generated.returncode

    session = airflow.session()
    session.patch(f"{airflow.url}/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
    # Runs at 00:00 UTC (09:00 KST) score the previous KST day. Unpausing lets the scheduler
    # run the latest interval (today 00:00 UTC); the manual run takes the day before.
    last = dt.datetime.combine(dt.datetime.now(dt.timezone.utc).date(), dt.time(0), dt.timezone.utc)
    manual = last - dt.timedelta(days=1)
    # The scheduler's run goes first and alone: the first event of a new asset, emitted by two
    # tasks finishing at the same moment, makes Airflow 3.3 create the asset twice, and the
    # task that loses (UNIQUE constraint failed: asset.name, asset.uri) is marked failed after
    # its day was written. Once the asset exists, runs may finish together.
    step(f"Unpaused: the scheduler runs {last:%Y-%m-%d}")
    wait_runs(1)
    step(f"Triggering a run for {manual:%Y-%m-%d} through the REST API")
    airflow.trigger(session, DAG_ID, manual.isoformat())
    wait_runs(2)

    first = last - dt.timedelta(days=6)
    before_manual = manual - dt.timedelta(days=1)
    step(f"Backfilling {first:%Y-%m-%d} .. {before_manual:%Y-%m-%d} (the days before those that ran)")
    airflow.backfill(session, DAG_ID, first.isoformat(), before_manual.isoformat(), max_active_runs=3)
    runs = wait_runs(7)

    # A finished day runs again by clearing it: its rows are replaced, never added to.
    rerun = sorted(runs, key=lambda r: r["logical_date"])[5]
    step(f"Clearing {rerun['dag_run_id']} so that its day runs again")
    session.post(
        f"{airflow.url}/api/v2/dags/{DAG_ID}/clearTaskInstances",
        json={"dag_run_id": rerun["dag_run_id"], "dry_run": False, "only_failed": False},
    ).raise_for_status()
    time.sleep(3)
    runs = wait_runs(7)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        print(f"    failed runs: {failed}; task logs under {state / 'airflow' / 'logs'}")
        return 1

    if celery:
        print_shard_workers(airflow, session, runs, "pod" if kubernetes else "worker")

    step("Predictions in predictions.diabetes_ridge, per target day")
    query = f"""
        SELECT CAST(target_date AS STRING) AS day, COUNT(*) AS n_rows,
               COUNT(*) - COUNT(DISTINCT row_id) AS duplicates, MAX(model_version) AS version
        FROM `{emulator.project}.predictions.diabetes_ridge` GROUP BY day ORDER BY day"""
    source = f"SELECT CAST(load_date AS STRING) AS day, COUNT(*) AS n FROM `{emulator.project}.features.diabetes` GROUP BY day"
    available = {row.day: row.n for row in client.query(source).result()}
    print(f"    {'target day':<12} {'source rows':>11} {'rows written':>12} {'duplicates':>10} {'model version':>13}")
    for row in client.query(query).result():
        print(f"    {row.day:<12} {available.get(row.day, 0):>11} {row.n_rows:>12} {row.duplicates:>10} {row.version:>13}")

    print(f"\n    Airflow UI: {airflow.url}   MLflow UI: {mlflow_url}")
    print(f"    Predictions page: {airflow.url}/plugin/somlier (in the Airflow UI: Browse › SoMLier)   "
          f"JSON: {airflow.url}/somlier/api/destinations")
    if args.serve:
        print("    serving until Ctrl-C (or SIGTERM/SIGHUP) …")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
                stop_if_requested()
        _requested.clear()  # the signal that ends serving is its normal end: exit 0
    step("Stopping Airflow, MLflow and the emulator")
    return 0


if __name__ == "__main__":
    for each in STOP_SIGNALS:
        signal.signal(each, _stop)
    sys.unraisablehook = _quiet_dropped_stop
    try:
        code = main()
    except Stopped as stopped:  # the shell's convention: 128 + the signal's number
        sys.exit(128 + stopped.signum)
    except Exception as error:  # noqa: BLE001 - one line naming what failed, after every server stopped
        print(f"\033[1m==> The demo failed:\033[0m {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        code = 1
    sys.exit(128 + _received[0] if _received else code)
