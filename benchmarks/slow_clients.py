"""Normal clients' latency and throughput while hundreds of sockets stall mid-request.

The server runs as shipped (``gunicorn -c online_server/gunicorn.conf.py``, 2 workers) on a
model given by ``--model``; each worker class given by ``--worker-classes`` is measured
without and then with stalled sockets open. The stalled sockets are ``--stalled`` of each
kind: half a request line, half the headers, whole headers and half a body, a connection
that sends nothing, and a chunked body that stops mid-chunk; each is opened again as soon as
the server closes it, so that many stay open for the whole run. Meanwhile ``--clients``
connections send one-row ``POST /result`` requests back to back (one request per
connection, as the server closes each), and one prober asks ``GET /healthz`` every 20 ms.
A request not answered within 2 s counts as an error (the issue's client timeout). Runs
without and with stalled sockets alternate ``--rounds`` times on the same server, so the
machine's changing load weighs on both alike; the summary compares medians.

Load generator, stalled sockets and server share the machine's cores: compare within a run.
``--stall-nice 19`` runs the stalling process at the lowest CPU priority, so that its own
work (reopening a thousand sockets whenever their deadlines pass together) takes less from
the server and the normal clients than it does when all three share two cores.

``--event-loops uvloop asyncio`` measures the front worker on each loop it can run (``EVENT_LOOP``).

Usage: ``.venv/bin/python benchmarks/slow_clients.py [--seconds 10] [--clients 64] [--stalled 200]
[--model ridge|hgb] [--worker-classes front gathering] [--event-loops uvloop asyncio]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import pickle
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
CLIENT_TIMEOUT = 2.0
WORKER_CLASSES = {"front": "online_server.front_worker.FrontWorker", "gathering": "online_server.worker.GatheringWorker"}
BODY = json.dumps({"test": ROW}).encode()
RESULT = (b"POST /result HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
STALLS = {
    "half request line": b"POST /res",
    "half headers": b"POST /result HTTP/1.1\r\nHost: bench\r\nContent-Ty",
    "headers, half a body": (b"POST /result HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY[:20],
    "nothing": b"",
    "chunked, cut mid-chunk": (b"POST /result HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(BODY)) + BODY[:20],
}


async def _exchange(port: int, request: bytes) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                answer = await reader.read()
            finally:
                writer.close()
        ok = answer.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError):
        ok = False
    return time.perf_counter() - started, ok


async def _load(port: int, clients: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    results: list[tuple[float, bool]] = []
    probes: list[tuple[float, bool]] = []

    async def client() -> None:
        while time.monotonic() < stop:
            results.append(await _exchange(port, RESULT))

    async def prober() -> None:
        while time.monotonic() < stop:
            probes.append(await _exchange(port, HEALTHZ))
            await asyncio.sleep(0.02)

    await asyncio.gather(prober(), *(client() for _ in range(clients)))
    return {"result": results, "healthz": probes}


def _load_process(port: int, clients: int, seconds: float, queue) -> None:
    queue.put(asyncio.run(_load(port, clients, seconds)))


async def _stall(port: int, per_kind: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    answered: dict[str, int] = {kind: 0 for kind in STALLS}

    async def hold(kind: str, data: bytes) -> None:
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            try:
                writer.write(data)
                async with asyncio.timeout(max(0.1, stop - time.monotonic())):
                    answer = await reader.read()
                if answer.startswith(b"HTTP/1.1 408"):
                    answered[kind] += 1
            except (OSError, TimeoutError):
                pass
            finally:
                writer.close()

    await asyncio.gather(*(hold(kind, data) for kind, data in STALLS.items() for _ in range(per_kind)))
    return answered


def _stall_process(port: int, per_kind: int, seconds: float, queue, niceness: int = 0) -> None:
    if niceness:
        os.nice(niceness)
    queue.put(asyncio.run(_stall(port, per_kind, seconds)))


def summarise(samples: list[tuple[float, bool]], seconds: float) -> dict:
    latencies = sorted(latency for latency, ok in samples if ok)
    errors = sum(1 for _, ok in samples if not ok)
    if not latencies:
        return {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": errors}
    return {"rps": len(latencies) / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "errors": errors}


def model_zip(kind: str, folder: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    features, target = load_diabetes(return_X_y=True)
    model = (HistGradientBoostingRegressor(max_iter=100, random_state=0) if kind == "hgb" else Ridge()).fit(features, target)
    (folder / "bench" / "model").mkdir(parents=True)
    with zipfile.ZipFile(folder / "bench" / "model" / "20261120.zip", "w") as zipped:
        zipped.writestr("bench.pkl", pickle.dumps(model))


@contextlib.contextmanager
def server(worker_class: str, storage: Path, work: Path, env: dict) -> Iterator[int]:
    import requests

    from airflow_provider_somlier.devtools.emulator import free_port

    port = free_port()
    metrics = Path(tempfile.mkdtemp(prefix="somlier-bench-metrics-"))
    environ = os.environ | {"MODEL_NAME": "bench", "STORAGE_ROOT": str(storage), "WORK_DIR": str(work),
                            "WORKERS": "2", "BIND": f"127.0.0.1:{port}", "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                            "WORKER_CLASS": worker_class, "LOG_LEVEL": "warning"} | env
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO / "online_server" / "gunicorn.conf.py")],
                               cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.post(f"http://127.0.0.1:{port}/model_download", timeout=30).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def measure(port: int, clients: int, stalled: int, seconds: float, stall_nice: int = 0) -> dict:
    queue = multiprocessing.Queue()
    stallers = []
    if stalled:
        # open from 2 s before the warm-up until after the last normal request
        stallers.append(multiprocessing.Process(target=_stall_process,
                                                args=(port, stalled, seconds + 8, queue, stall_nice)))
        stallers[0].start()
        time.sleep(2)  # every stalled socket open before the clients start
    asyncio.run(_load(port, clients, 2))  # warm-up: every worker has loaded the model and started its threads
    loader = multiprocessing.Process(target=_load_process, args=(port, clients, seconds, queue))
    loader.start()
    results = [queue.get(timeout=seconds + 60) for _ in range(1 + len(stallers))]
    for process in [loader, *stallers]:
        process.join(timeout=30)
    load = next(r for r in results if "result" in r)
    answered = next((r for r in results if "result" not in r), {})
    return {"result": summarise(load["result"], seconds), "healthz": summarise(load["healthz"], seconds),
            "stalled_408": sum(answered.values())}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--stalled", type=int, default=200, help="stalled sockets of each kind")
    parser.add_argument("--model", choices=["ridge", "hgb"], default="ridge")
    parser.add_argument("--worker-classes", nargs="+", choices=list(WORKER_CLASSES), default=["front"])
    parser.add_argument("--read-timeout", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--event-loops", nargs="+", choices=["uvloop", "asyncio"], default=["uvloop"],
                        help="the front worker's loop (EVENT_LOOP); several: each measured in turn")
    parser.add_argument("--stall-nice", type=int, default=0,
                        help="niceness of the stalling process: 19 leaves the cores to the server and the normal "
                             "clients first, as an attacker's own machine would")
    args = parser.parse_args()

    storage = Path(tempfile.mkdtemp(prefix="somlier-slow-bench-"))
    model_zip(args.model, storage)
    rows = []
    # (label, worker class, event loop): the loop is the front worker's only
    variants = [(f"front ({loop})", "front", loop) if kind == "front" else (kind, kind, "auto")
                for kind in args.worker_classes for loop in (args.event_loops if kind == "front" else ["auto"])]
    for name, kind, loop in variants:
        env = {"READ_TIMEOUT_SECONDS": str(args.read_timeout), "EVENT_LOOP": loop}
        with server(WORKER_CLASSES[kind], storage, storage / f"work-{kind}-{loop}", env) as port:
            for _ in range(args.rounds):
                for stalled in (0, args.stalled):
                    figures = measure(port, args.clients, stalled, args.seconds, args.stall_nice)
                    rows.append((name, stalled, figures))
                    print(f"  {name}, {stalled} stalled of each kind: {figures}", file=sys.stderr)

    load = os.getloadavg()
    print(f"\n{args.model}, 2 workers, {args.clients} clients (one request per connection, {CLIENT_TIMEOUT:g} s client "
          f"timeout), {args.seconds:g} s per row, READ_TIMEOUT_SECONDS={args.read_timeout:g}, "
          f"stalling process niceness {args.stall_nice}; "
          f"load average after the run {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    print("| worker | stalled sockets | /result req/s | p50 ms | p99 ms | errors | /healthz p99 ms | healthz errors "
          "| stalled answered 408 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, stalled, f in rows:
        r, h = f["result"], f["healthz"]
        print(f"| {name} | {stalled * len(STALLS) if stalled else 0} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']} | {h['p99_ms']:.1f} | {h['errors']} | {f['stalled_408']} |")
    print()
    for name, _, _ in variants:
        def median(stalled: bool, key: str, what: str = "result") -> float:
            return statistics.median(f[what][key] for n, s, f in rows if n == name and bool(s) == stalled)

        base, loaded = median(False, "rps"), median(True, "rps")
        if base:
            print(f"{name}, medians of {args.rounds} rounds: with stalled sockets {loaded:.0f} vs {base:.0f} req/s "
                  f"({loaded / base:.2f}x); /result p99 {median(True, 'p99_ms'):.1f} vs {median(False, 'p99_ms'):.1f} ms; "
                  f"/healthz p99 {median(True, 'p99_ms', 'healthz'):.1f} vs {median(False, 'p99_ms', 'healthz'):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
