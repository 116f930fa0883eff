"""A worker's preload imports what tasks use, and only where asked to."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from airflow_provider_somlier.preload import preload_for_tasks
done = preload_for_tasks()
print(done, "mlflow.pyfunc" in sys.modules, "skops.io" in sys.modules, "google.cloud.bigquery" in sys.modules,
      "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
      # what the first chunk would import: Arrow's pandas conversion, scikit-learn's DataFrame checks
      "pyarrow.pandas_compat" in sys.modules and "narwhals._pandas_like" in sys.modules)
"""


def _probe(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("\n")[-2]


def test_nothing_is_imported_unless_the_worker_asks():
    env = {k: v for k, v in os.environ.items() if k != "SOMLIER_PRELOAD"}
    assert _probe(env) == "False False False False False False"
    assert _probe(env | {"SOMLIER_PRELOAD": "1"}) == "True True True True True True"
