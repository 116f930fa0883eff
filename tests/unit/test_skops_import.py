"""skops imported the quick way trusts exactly the types it trusts when imported as published."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys, warnings
import airflow.sdk  # a task process has Airflow (and its deprecation shims) loaded
import airflow_provider_somlier.offline_run, mlflow.pyfunc, sklearn.linear_model
if sys.argv[1] == "quick":
    from airflow_provider_somlier.skops_import import import_skops_io
    import_skops_io()
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import skops.io
from skops.io import _trusted_types, _utils
names = {k: v for k, v in vars(_trusted_types).items() if isinstance(v, list) and all(isinstance(x, str) for x in v)}
print(json.dumps({"names": names, "whichmodule": _utils.whichmodule.__module__ + "." + _utils.whichmodule.__qualname__}))
"""


def _trusted(way: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, way], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_quick_import_trusts_the_same_types_and_puts_skops_back_as_it_was():
    quick, published = _trusted("quick"), _trusted("published")
    assert quick["names"]["SCIPY_UFUNC_TYPE_NAMES"]  # the lists the quick path computes are there
    assert quick["names"] == published["names"]
    assert quick["whichmodule"] == published["whichmodule"] == "skops.io._utils.whichmodule"
