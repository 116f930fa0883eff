"""Online `/result` throughput and latency against `mlflow models serve` and a bare Flask app.

Same machine, the same model in each server -- a Ridge (diabetes), which SoMLier serves
through its linear shortcut; a StandardScaler + Ridge pipeline, which it serves through the
estimator's own ``predict``; a HistGradientBoostingRegressor (100 iterations), the kind of
model most tabular teams serve, CPU-bound and OpenMP-threaded, for which SoMLier is also
run with batching off (``MAX_BATCH=1``); and a Ridge registered in a SQLite MLflow
registry, served by SoMLier with ``MODEL_TYPE=mlflow`` and by ``mlflow models serve -m
models:/...`` -- 2 server workers each, one row per request, each server measured at every
number of concurrent connections given: ``wrk`` when installed (``apt-get install wrk``),
else separate Python client processes (which then share the 2 cores with the servers).

Usage: ``.venv/bin/python benchmarks/online.py [--seconds 15] [--clients 1 8 64] [--models hgb ridge]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import pickle
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ROW = [0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]

BARE_APP = '''
import pickle, os
from flask import Flask, request, jsonify
app = Flask(__name__)
model = pickle.load(open(os.environ["BARE_MODEL"], "rb"))
@app.post("/result")
def result():
    return jsonify({"result": model.predict([request.get_json()["test"]]).tolist()})
'''


def _client(url: str, body: bytes, seconds: float, queue) -> None:
    import http.client
    from urllib.parse import urlparse

    parsed = urlparse(url)
    latencies, errors = [], 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        try:
            connection.request("POST", parsed.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
        except OSError:
            errors += 1
        finally:
            connection.close()
        latencies.append(time.perf_counter() - started)
    queue.put((latencies, errors))


def _ms(text: str) -> float:
    value = float(text.rstrip("mun s"))
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[text.lstrip("0123456789.")]


def load_wrk(url: str, body: dict, seconds: float, clients: int) -> dict:
    """wrk (C, epoll) keeps the load generator's own CPU cost out of the comparison."""
    import re

    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    out = subprocess.run(
        ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s*(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"no 50%/99% latency lines in wrk's output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out)[1])
    return {
        "requests": total,
        "errors": int(errors[1]) if errors else 0,
        "socket_errors": socket_errors[1] if socket_errors else "",
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
    }


def load(url: str, body: dict, seconds: float, clients: int) -> dict:
    import shutil

    if shutil.which("wrk"):
        return load_wrk(url, body, seconds, clients)
    queue = multiprocessing.Queue()
    payload = json.dumps(body).encode()
    workers = [multiprocessing.Process(target=_client, args=(url, payload, seconds, queue)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    return {
        "requests": len(latencies),
        "errors": sum(e for _, e in results),
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def wait_up(url: str, body: dict, timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.post(url, json=body, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def bench_models(chosen: list[str]) -> dict:
    """Ridge takes the server's linear shortcut; the pipeline and gradient boosting go through their own predict."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_diabetes(return_X_y=True)
    makers = {
        "ridge": ("Ridge", lambda: Ridge()),
        "pipeline": ("StandardScaler+Ridge pipeline", lambda: make_pipeline(StandardScaler(), Ridge())),
        "hgb": ("HistGradientBoostingRegressor", lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0)),
    }
    return {makers[key][0]: makers[key][1]().fit(features, target) for key in chosen if key in makers}


SOMLIER = "somlier online_server (gunicorn, 2 workers)"
UNBATCHED = "somlier, batching off (MAX_BATCH=1)"
BARE = "bare Flask app (gunicorn, 2 sync workers, OMP_NUM_THREADS=1), predict only"
MLFLOW = "mlflow models serve (2 workers)"


def servers_for(model, work: Path) -> dict:
    """The three servers, each given the same pickled model: (command, env, path, body, cwd)."""
    import mlflow.sklearn

    (work / "storage" / "bench" / "model").mkdir(parents=True)
    with zipfile.ZipFile(work / "storage" / "bench" / "model" / "20261120.zip", "w") as zipped:
        zipped.writestr("bench.pkl", pickle.dumps(model))
    (work / "bare.pkl").write_bytes(pickle.dumps(model))
    (work / "bare_app.py").write_text(BARE_APP)
    (work / "metrics").mkdir()
    mlflow.sklearn.save_model(model, str(work / "mlflow_model"), serialization_format="cloudpickle")
    somlier_env = {"MODEL_NAME": "bench", "STORAGE_ROOT": str(work / "storage"), "WORK_DIR": str(work / "serving"),
                   "WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")}
    servers = {
        SOMLIER: (
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
            somlier_env, "/result", {"test": ROW}, REPO,
        ),
    }
    if "Boosting" in type(model).__name__:
        (work / "metrics-unbatched").mkdir()
        servers[UNBATCHED] = (
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
            somlier_env | {"MAX_BATCH": "1", "WORK_DIR": str(work / "serving-unbatched"),
                           "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics-unbatched")},
            "/result", {"test": ROW}, REPO,
        )
    return servers | {
        BARE: (
            [sys.executable, "-m", "gunicorn", "-w", "2", "bare_app:app"],
            {"BARE_MODEL": str(work / "bare.pkl"), "OMP_NUM_THREADS": "1"}, "/result", {"test": ROW}, work,
        ),
        MLFLOW: (
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(work / "mlflow_model"), "--env-manager", "local",
             "--workers", "2", "--host", "127.0.0.1"],
            {}, "/invocations", {"inputs": [ROW]}, work,
        ),
    }


@contextlib.contextmanager
def running(label: str, command: list[str], env: dict, path: str, body: dict, cwd: Path) -> Iterator[str]:
    """The server started on a free port and answering; yields the URL to load."""
    from airflow_provider_somlier.devtools.emulator import free_port, stop_pid

    port = free_port()
    command = command + (["--port", str(port)] if "mlflow" in command[2] else ["--bind", f"127.0.0.1:{port}"])
    environ = os.environ | env | {"BIND": f"127.0.0.1:{port}", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    process = subprocess.Popen(command, cwd=cwd, env=environ, stdout=subprocess.DEVNULL,
                               stderr=open(cwd / f"{port}.log", "wb") if cwd != REPO else subprocess.DEVNULL,
                               start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        if "somlier" in label:
            wait_up(f"{url}/model_download", {})  # the seed's flow: download, then serve
        wait_up(url + path, body)
        yield url + path
    finally:
        stop_pid(process.pid)
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None


def measure(label: str, command: list[str], env: dict, path: str, body: dict, cwd: Path, args) -> dict[int, dict]:
    """One server started once, then loaded at each number of clients in turn."""
    results = {}
    with running(label, command, env, path, body, cwd) as url:
        for clients in args.clients:
            load(url, body, 2, clients)  # warm-up
            results[clients] = load(url, body, args.seconds, clients)
            print(f"  {label}, {clients} clients: {results[clients]}", file=sys.stderr)
    return results


def lone_client_alternated(servers: dict, rounds: int = 5, seconds: float = 3) -> dict[str, float]:
    """Median p50 of one client, batched vs unbatched, both servers up and loaded in turn.

    On a shared machine the load moves within seconds; alternating short runs compares the
    two servers under the same conditions, which two long runs minutes apart do not.
    """
    p50s: dict[str, list[float]] = {SOMLIER: [], UNBATCHED: []}
    with contextlib.ExitStack() as stack:
        urls = {label: stack.enter_context(running(label, *servers[label])) for label in p50s}
        bodies = {label: servers[label][3] for label in p50s}
        for label, url in urls.items():
            load(url, bodies[label], 2, 1)  # warm-up
        for _ in range(rounds):
            for label, url in urls.items():
                p50s[label].append(load(url, bodies[label], seconds, 1)["p50_ms"])
    return {label: statistics.median(values) for label, values in p50s.items()}


def registry_servers(work: Path) -> dict:
    """The same three servers on a registry model: SoMLier with MODEL_TYPE=mlflow, ``models:/``."""
    import json

    import mlflow.sklearn
    from mlflow import MlflowClient

    from airflow_provider_somlier.devtools.sample_model import FEATURES, train_and_register

    uri = f"sqlite:///{work / 'mlflow.db'}"
    registered = train_and_register(uri, "bench-ridge", artifact_root=(work / "artifacts").as_uri())
    ref = f"models:/bench-ridge/{registered.version}"
    artifacts = MlflowClient(tracking_uri=uri).download_artifacts(registered.run_id, "model", str(work))
    (work / "bare.pkl").write_bytes(pickle.dumps(mlflow.sklearn.load_model(artifacts)))
    (work / "bare_app.py").write_text(BARE_APP)
    (work / "metrics").mkdir()
    return {
        SOMLIER: (
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
            {"MODEL_NAME": "bench", "MODEL_TYPE": "mlflow", "MODEL_REF": f"bench-ridge/{registered.version}",
             "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": uri}),
             "WORK_DIR": str(work / "serving"), "WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")},
            "/result", {"test": ROW}, REPO,
        ),
        BARE: (
            [sys.executable, "-m", "gunicorn", "-w", "2", "bare_app:app"],
            {"BARE_MODEL": str(work / "bare.pkl"), "OMP_NUM_THREADS": "1"}, "/result", {"test": ROW}, work,
        ),
        MLFLOW: (
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", ref, "--env-manager", "local",
             "--workers", "2", "--host", "127.0.0.1"],
            {"MLFLOW_TRACKING_URI": uri}, "/invocations",
            {"dataframe_split": {"columns": list(FEATURES), "data": [ROW]}}, work,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--models", nargs="+", default=["ridge", "pipeline", "hgb", "registry"],
                        choices=["ridge", "pipeline", "hgb", "registry"])
    args = parser.parse_args()

    import shutil

    rows = []
    cases = [(label, lambda work, model=model: servers_for(model, work)) for label, model in bench_models(args.models).items()]
    if "registry" in args.models:
        cases.append(("registry Ridge (MODEL_TYPE=mlflow)", registry_servers))
    alternated = {}
    for model_label, servers in cases:
        work = Path(tempfile.mkdtemp(prefix="somlier-online-bench-"))
        built = servers(work)
        for label, server in built.items():
            for clients, result in measure(label, *server, args).items():
                rows.append((model_label, label, clients, result))
        if UNBATCHED in built:
            alternated[model_label] = lone_client_alternated(built)

    generator = "wrk" if shutil.which("wrk") else "Python client processes"
    print(f"\nconcurrent connections from {generator}, {args.seconds:.0f} s each after a 2 s warm-up, one row per request\n")
    print("| model | server | clients | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---:|")
    for model_label, label, clients, r in rows:
        print(f"| {model_label} | {label} | {clients} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |")
    print()
    found = {(m, label, c): r for m, label, c, r in rows}
    for model_label in dict.fromkeys(m for m, *_ in rows):
        for clients in args.clients:
            ours, theirs = found.get((model_label, SOMLIER, clients)), found.get((model_label, MLFLOW, clients))
            bare = found.get((model_label, BARE, clients))
            if ours and theirs and bare:
                print(f"{model_label}, {clients} clients: somlier / mlflow models serve {ours['rps'] / theirs['rps']:.2f}x req/s, "
                      f"p99 {ours['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms; somlier / bare Flask {ours['rps'] / bare['rps']:.2f}x")
        if model_label in alternated:
            lone, unbatched = alternated[model_label][SOMLIER], alternated[model_label][UNBATCHED]
            print(f"{model_label}, 1 client, 5 alternated 3 s runs: median p50 {lone:.2f} ms batched vs "
                  f"{unbatched:.2f} ms unbatched ({lone / unbatched:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
