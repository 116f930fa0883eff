"""The demo drives the light Airflow and the production-shaped stack through one name: both must offer what it calls.

The Celery and Kubernetes demos take minutes and are run by hand; this check runs in a
second. It reads every ``airflow.<attribute>`` the demo uses (its source, with ``ast``)
and asks both stacks for each.
"""

from __future__ import annotations

import ast
from pathlib import Path

from airflow_provider_somlier.devtools.airflow_celery import CeleryAirflow
from airflow_provider_somlier.devtools.airflow_local import LocalAirflow

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def test_every_attribute_the_demo_uses_on_its_airflow_exists_on_both_stacks():
    used = {node.attr for node in ast.walk(ast.parse(DEMO.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "airflow"}
    assert {"trigger", "backfill", "wait_runs", "session", "url"} <= used
    fields = {"postgres", "redis", "kubernetes", "airflow", "workers"}  # CeleryAirflow's own, set per instance
    assert not {name for name in used if not hasattr(CeleryAirflow, name) and name not in fields}
    assert not {name for name in used - fields if not hasattr(LocalAirflow, name)
                and name not in LocalAirflow.__dataclass_fields__}
