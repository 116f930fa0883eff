"""The somlier_quality OpenLineage run facet: the day's summary when the day was profiled, nothing otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import airflow_provider_somlier
from airflow_provider_somlier.lineage import QUALITY_FACET_NAME, QUALITY_FACET_SCHEMA_FILE, RunLineage, quality_facets

QUALITY = {"rows": 50, "nulls": {"bmi": 0, "prediction": 2}, "baseline": None, "verdict": "warn",
           "failures": [{"check": "prediction_range", "column": "prediction", "figure": "2 NaN prediction(s)",
                         "threshold": "finite values", "passed": False}],
           "checks_passed": 3, "skipped": {"max_psi": "no baseline yet"}}


def _run(quality):
    return RunLineage(source="p.f.t", destination="p.d.t", features=("bmi",), passthrough=(), model_name="m",
                      model_version="1", model_run_id="r", gcp_conn_id="g", quality=quality)


def test_the_quality_facet_carries_rows_nulls_checks_and_verdict():
    facet = quality_facets(_run(QUALITY))[QUALITY_FACET_NAME]
    assert (facet.rows, facet.nulls, facet.verdict) == (50, {"bmi": 0, "prediction": 2}, "warn")
    assert facet.failures[0]["check"] == "prediction_range" and facet.skipped == {"max_psi": "no baseline yet"}
    assert facet._get_schema().endswith(f"/{QUALITY_FACET_SCHEMA_FILE}#/$defs/SomlierQualityRunFacet")
    shipped = Path(airflow_provider_somlier.__file__).parent.parent / QUALITY_FACET_SCHEMA_FILE
    assert set(json.loads(shipped.read_text())["$defs"]["SomlierQualityRunFacet"]["allOf"][1]["required"]) == {
        "rows", "nulls", "verdict", "failures", "skipped", "baseline"
    }


def test_a_run_without_a_profile_has_no_quality_facet():
    assert quality_facets(_run(None)) == {}
