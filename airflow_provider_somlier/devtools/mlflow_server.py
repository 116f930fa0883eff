"""An MLflow tracking server and registry on loopback, as the demo and the tests start it.

MLflow 3's ``mlflow server`` also starts a job runner unless told otherwise
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``, on by default): seven huey consumers that poll the
store and, idle, kept two cores busy (about 0.3 s of CPU per second each, measured over
30 s on a SQLite store). Tracking and the registry need none of it (the jobs serve
MLflow's GenAI features), so the project's servers start without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_mlflow_server(
    backend_store_uri: str, port: int, log_path: Path, *, artifacts_destination: Path | None = None,
    default_artifact_root: str | None = None,
) -> subprocess.Popen:
    """``mlflow server`` with one worker on 127.0.0.1:``port`` in its own process group, logging to ``log_path``.

    ``artifacts_destination``: the server serves artifacts itself (clients need no access to
    the folder); ``default_artifact_root``: clients write artifacts there directly.
    """
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    if artifacts_destination is not None:
        command += ["--artifacts-destination", str(artifacts_destination)]
    if default_artifact_root is not None:
        command += ["--default-artifact-root", default_artifact_root]
    # The server starts its workers as ``python -m …``: this interpreter first on PATH.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env=os.environ | SERVER_ENV | {"PATH": path})
