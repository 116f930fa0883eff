"""How long the Predictions pages take for a destination with a year of days, on the local emulator.

Sets up what a deployment has after a year of daily runs: a profile table of ``--days``
days (``--features`` feature columns and one prediction, each day profiled by the real
profiler and judged by the real gate; one day in the wrong unit), and Airflow's metadata
(a DAG, a run and an asset event per day) in a fresh SQLite database. Then requests each
page and its JSON through the app as the API server mounts it, with an admin's JWT,
``--repeat`` times, and prints the median and the slowest time per request. Server time
only: the HTML is not rendered by a browser here (the browser test does that).

Usage: ``.venv/bin/python benchmarks/predictions_page.py [--days 365] [--features 10] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--features", type=int, default=10, help="feature columns (2 named + the rest numeric)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per day (the profile's size does not grow with it)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="somlier-bench-pages-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "somlier-benchmark-only-" + "x" * 48,
    })
    print(f"Airflow metadata database in {home} …", flush=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

    from airflow_provider_somlier.devtools.emulator import running_emulator

    with running_emulator(home / "bqemulator.log") as emulator:
        os.environ["AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT"] = emulator.connection_uri_json()
        return run(args, emulator)


def run(args: argparse.Namespace, emulator) -> int:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import get_auth_manager, init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow_provider_somlier.devtools.sample_profiles import register_writer, write_profile_days
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.ui.app import create_app
    from airflow_provider_somlier.ui.plugin import URL_PREFIX

    client = SomlierBigQueryHook().client()
    client.create_dataset(f"{emulator.project}.predictions", exists_ok=True)
    destination = f"{emulator.project}.predictions.year_of_days"
    last = dt.date(2026, 11, 30)
    days = [last - dt.timedelta(days=i) for i in range(args.days)][::-1]
    bad = days[-40]
    started = time.perf_counter()
    write_profile_days(client, destination, days, rows=args.rows, bad_days={bad},
                       versions={d: 1 + i * 3 // len(days) for i, d in enumerate(days)},
                       extra_features=max(args.features - 2, 0))
    register_writer(destination, "year_of_days", "predict", "dags-folder", None, days)
    print(f"{args.days} days × {args.features + 1} columns written in {time.perf_counter() - started:.1f} s", flush=True)

    init_auth_manager()
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    root = FastAPI()
    root.mount(URL_PREFIX, create_app())
    http = TestClient(root, headers={"Authorization": f"Bearer {token}"})
    requests = [
        ("(a) every destination", "/somlier/"),
        ("(a) JSON", "/somlier/api/destinations"),
        ("(b) destination, 30 days", f"/somlier/destinations/{destination}?days=30"),
        ("(b) destination, 90 days", f"/somlier/destinations/{destination}?days=90"),
        (f"(b) destination, {args.days} days", f"/somlier/destinations/{destination}?days={args.days}"),
        (f"(b) JSON, {args.days} days", f"/somlier/api/destinations/{destination}?days={args.days}"),
        ("(c) one day (the bad one)", f"/somlier/destinations/{destination}/days/{bad}"),
        ("(c) JSON", f"/somlier/api/destinations/{destination}/days/{bad}"),
    ]
    for _, path in requests:  # warm: imports, templates, the schema check, the client's connection
        assert http.get(path).status_code == 200, path
    print("\n| request | median s | slowest s | bytes |\n|---|---:|---:|---:|")
    for name, path in requests:
        times, size = [], 0
        for _ in range(args.repeat):
            begin = time.perf_counter()
            response = http.get(path)
            times.append(time.perf_counter() - begin)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            size = len(response.content)
        print(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} | {size:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
