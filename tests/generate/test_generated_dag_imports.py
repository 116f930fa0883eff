"""What a generated DAG file imports beyond ``airflow.*``: the DAG processor pays it for every file.

Airflow 3's processor pre-imports the ``airflow.*`` modules a file names, then parses
the file in a fresh process. Anything else the file pulls in is imported again on
every parse, so it must stay within SoMLier's own light modules. (The cost in
milliseconds is measured by benchmarks/dag_parse.py, not asserted here.)
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.generate.test_cli import GOLDEN

WARM_UP = """import datetime
from airflow.sdk import DAG

with DAG(dag_id="warm_up", schedule=None, start_date=datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)):
    pass
"""

_PARSE_LIKE_THE_PROCESSOR = r"""
import json, os, sys
import structlog
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules

path, warm_up = sys.argv[1], sys.argv[2]
DagBag(dag_folder=warm_up, safe_mode=False)  # DagBag's own lazy imports, the same for every file
_pre_import_airflow_modules(path, structlog.get_logger())
before = set(sys.modules)
bag = DagBag(dag_folder=path, safe_mode=False)
assert not bag.import_errors, bag.import_errors
print(json.dumps(sorted(name for name in set(sys.modules) - before if not name.startswith("unusual_prefix_"))))
"""


def test_a_generated_offline_dag_imports_nothing_heavy_outside_airflow(tmp_path):
    path = tmp_path / "generated.py"
    path.write_bytes((GOLDEN / "offline_v2.py").read_bytes())
    warm_up = tmp_path / "warm_up.py"
    warm_up.write_text(WARM_UP)
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_LIKE_THE_PROCESSOR, str(path), str(warm_up)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    outside_airflow = {name.split(".")[0] for name in imported if not name.startswith("airflow.")}
    assert outside_airflow <= {"airflow_provider_somlier"}, imported
    # Airflow's provider discovery has imported the package and its lazy operators package
    # already; the file adds the operator's module alone (no links, errors, assets, run logic).
    assert [name for name in imported if name.startswith("airflow_provider_somlier")] == [
        "airflow_provider_somlier.operators.offline"
    ], imported
    assert "airflow.sdk.bases.operatorlink" not in imported  # link classes are made when the DAG is serialized


def test_the_extra_links_are_made_on_first_use_on_the_class_and_on_an_operator():
    from airflow_provider_somlier.links import BigQueryTableLink, MLflowModelVersionLink
    from airflow_provider_somlier.operators.offline import MLOpsOfflineOperator
    from airflow_provider_somlier.operators.sharded import MLOpsShardScoreOperator

    # mapped tasks read them on the class, serialization on the operator
    for links in (MLOpsShardScoreOperator.operator_extra_links, MLOpsOfflineOperator.operator_extra_links):
        assert [type(link) for link in links] == [MLflowModelVersionLink, BigQueryTableLink]
    operator = MLOpsOfflineOperator(
        task_id="t", model_ref="m/1", dataset_ref="d.t", dataset_load_column="c", destination_table_ref="d.p"
    )
    assert operator.operator_extra_links is MLOpsOfflineOperator.operator_extra_links
    assert [link.name for link in operator.operator_extra_links] == ["MLflow model version", "BigQuery table"]
