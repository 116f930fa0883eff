"""The Predictions app in-process: its pages and JSON, bad requests, and who sees what."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.ui.conftest import BAD_DAY, DAYS


def _seeded_only(destinations: list[dict], seeded) -> list[dict]:
    """The listed destinations in the seeded dataset: other tests of the session write theirs
    (under DAGs without a team, which every user may read) into the same Airflow database."""
    dataset = seeded.churn.rsplit(".", 1)[0] + "."
    return [d for d in destinations if d["destination"].startswith(dataset)]


def test_overview_lists_the_destinations_of_readable_dags_with_their_latest_day(as_user, seeded):
    body = as_user(["ml"]).get("/somlier/api/destinations").json()
    ours = _seeded_only(body["destinations"], seeded)
    assert [d["destination"] for d in ours] == [seeded.churn]
    last = ours[0]["last_day"]
    assert (last["target_date"], last["model_version"], last["verdict"]) == (BAD_DAY.isoformat(), 2, "warn")
    assert last["dag_run_url"] == f"/dags/ml_churn/runs/scheduled__{BAD_DAY + dt.timedelta(days=1)}T00%3A00%3A00%2B00%3A00"


def test_a_user_sees_no_destination_of_a_dag_they_may_not_read(as_user, seeded):
    finance = as_user(["finance"])
    listed = finance.get("/somlier/api/destinations").json()["destinations"]
    assert [d["destination"] for d in _seeded_only(listed, seeded)] == [seeded.ledger]
    for path in (f"/somlier/api/destinations/{seeded.churn}", f"/somlier/api/destinations/{seeded.churn}/days/{DAYS[0]}",
                 f"/somlier/destinations/{seeded.churn}"):
        response = finance.get(path)
        assert response.status_code == 404, path
        assert seeded.churn in response.text and "may see" in response.text
    both = as_user(["ml", "finance"]).get("/somlier/api/destinations").json()["destinations"]
    assert {d["destination"] for d in _seeded_only(both, seeded)} == {seeded.churn, seeded.ledger}
    assert _seeded_only(as_user([]).get("/somlier/api/destinations").json()["destinations"], seeded) == []
    assert as_user(["ml"]).get("/somlier/api/task/finance_ledger/x/predict").status_code == 404


@pytest.mark.parametrize("path", ["/somlier/", "/somlier/api/destinations", "/somlier/destinations/p-roject.d.t"])
def test_requests_without_credentials_are_refused(as_user, path):
    response = as_user(None).get(path)
    assert response.status_code == 401
    forged = as_user(None).get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code == 403
    if "/api/" in path:
        assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    else:
        assert "Sign in to Airflow" in response.text


def test_timeline_holds_every_day_its_versions_and_the_failed_checks(as_user, seeded):
    body = as_user(["ml"]).get(f"/somlier/api/destinations/{seeded.churn}", params={"days": 30}).json()
    assert [d["target_date"] for d in body["days"]] == [d.isoformat() for d in reversed(DAYS)]
    assert body["model_versions"] == [{"model_name": "churn", "model_version": 1}, {"model_name": "churn", "model_version": 2}]
    bad = body["days"][0]
    assert bad["target_date"] == BAD_DAY.isoformat() and bad["verdict"] == "warn"
    assert {(f["check"], f["column"]) for f in bad["failures"]} == {
        ("max_psi", "amount"), ("max_psi", "prediction"), ("max_mean_shift", "amount"), ("max_mean_shift", "prediction")}
    normal = body["days"][1]
    assert normal["failures"] == [] and normal["verdict"] == "pass"
    quantiles = normal["predictions"]["prediction"]
    assert quantiles["min"] <= quantiles["p10"] <= quantiles["p50"] <= quantiles["p90"] <= quantiles["max"]
    assert bad["predictions"]["prediction"]["mean"] > 100 * normal["predictions"]["prediction"]["mean"]
    window = as_user(["ml"]).get(f"/somlier/api/destinations/{seeded.churn}",
                                 params={"start": DAYS[2].isoformat(), "end": DAYS[4].isoformat()}).json()
    assert [d["target_date"] for d in window["days"]] == [DAYS[i].isoformat() for i in (4, 3, 2)]


def test_day_puts_failed_columns_first_with_psi_threshold_and_baseline_histogram(as_user, seeded):
    body = as_user(["ml"]).get(f"/somlier/api/destinations/{seeded.churn}/days/{BAD_DAY}").json()
    assert [c["column"] for c in body["columns"]][:2] == ["prediction", "amount"]
    assert [c["failed"] for c in body["columns"]] == [True, True, False]
    amount = body["columns"][1]
    recorded = next(f for f in body["failures"] if f["column"] == "amount" and f["check"] == "max_psi")
    assert amount["psi"] == pytest.approx(recorded["figure"], rel=1e-4) and amount["psi_threshold"] == 0.25
    # the baseline's deciles, then the values past its range: the x1000 day is all there
    assert len(amount["histogram"]) == 11 and amount["histogram"][-1]["day"] == 1.0
    assert amount["histogram"][-1]["bucket"].startswith("far past, > ")
    assert sum(b["baseline"] for b in amount["histogram"]) == pytest.approx(1.0)
    assert body["baseline"].startswith("previous 7 profiled day(s)")
    segment = body["columns"][2]
    assert segment["kind"] == "categorical" and segment["psi"] < 0.25 and segment["null_fraction"] == 0.0


def test_pages_render_the_same_data_with_inline_svg_charts(as_user, seeded):
    client = as_user(["ml"])
    overview = client.get("/somlier/")
    assert overview.status_code == 200 and seeded.churn in overview.text
    timeline = client.get(f"/somlier/destinations/{seeded.churn}").text
    assert timeline.count("<svg") == 2 and "<script" not in timeline and "http://" not in timeline.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert f'data-day="{BAD_DAY}" data-verdict="warn" data-version="2"' in timeline
    assert "max_psi on 'amount'" in timeline
    day = client.get(f"/somlier/destinations/{seeded.churn}/days/{BAD_DAY}").text
    assert day.count("<svg") == 3 and day.index('data-column="prediction"') < day.index('data-column="segment"')


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/somlier/api/destinations/somlier-local.ui_pages.nothing_here", 404, "UNKNOWN_DESTINATION"),
    ("/somlier/api/destinations/not-a-table", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/p.d.t%60%3B%20DROP%20TABLE%20x", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}/days/2026-13-40", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}/days/yesterday", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}/days/2020-01-01", 404, "DAY_NOT_FOUND"),
    ("/somlier/api/destinations/{churn}?days=36500", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}?start=1926-01-01&end=2026-01-01", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}?start=2026-01-01", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}?days=-1", 400, "BAD_PARAMETER"),
    ("/somlier/api/destinations/{churn}__profile", 404, "UNKNOWN_DESTINATION"),
    ("/somlier/api/nothing", 404, "NOT_FOUND"),
])
def test_bad_requests_get_a_4xx_json_error_never_a_500(as_user, seeded, path, status, code):
    response = as_user(["ml"]).get(path.format(churn=seeded.churn))
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert "Traceback" not in response.text


def test_a_bad_request_to_a_page_gets_a_page_that_says_so(as_user, seeded):
    response = as_user(["ml"]).get(f"/somlier/destinations/{seeded.churn}", params={"days": "36500"})
    assert response.status_code == 400 and "text/html" in response.headers["content-type"]
    assert 'data-error-code="BAD_PARAMETER"' in response.text and "36500" in response.text


def test_a_destination_whose_profile_table_is_not_somliers_is_refused_by_name(as_user, seeded, bq_client):
    from airflow_provider_somlier.devtools.sample_profiles import register_writer

    impostor = seeded.churn.rsplit(".", 1)[0] + ".impostor"
    bq_client.query(f"CREATE OR REPLACE TABLE `{impostor}__profile` (target_date DATE, note STRING)").result()
    register_writer(impostor, "ml_impostor", "predict", "ml_bundle", "ml", [DAYS[0]])
    response = as_user(["ml"]).get(f"/somlier/api/destinations/{impostor}")
    assert response.status_code == 404 and response.json()["error_code"] == "NOT_A_SOMLIER_PROFILE"
    listed = as_user(["ml"]).get("/somlier/api/destinations").json()["destinations"]
    assert "not a SoMLier profile table" in next(d for d in listed if d["destination"] == impostor)["error"]


def test_a_task_instance_view_leads_to_the_day_it_wrote(as_user, seeded):
    run_id = f"scheduled__{BAD_DAY + dt.timedelta(days=1)}T00:00:00+00:00"
    client = as_user(["ml"])
    found = client.get(f"/somlier/api/task/ml_churn/{run_id}/predict", params={"map_index": "{MAP_INDEX}"}).json()
    assert (found["destination"], found["target_date"]) == (seeded.churn, BAD_DAY.isoformat())
    page = client.get(f"/somlier/task/ml_churn/{run_id}/predict", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == found["url"]
    other = client.get(f"/somlier/task/ml_churn/{run_id}/some_other_task")
    assert other.status_code == 200 and "wrote no day through SoMLier" in other.text


def test_category_labels_show_control_and_bidi_characters_as_escapes_and_the_rest_bucket_by_its_own_name():
    from airflow_provider_somlier.quality.profile import profile_table
    from airflow_provider_somlier.ui.views import REST_BUCKET, _category_buckets, visible

    assert visible("a\u202eb\x1bc\x00 한 👨‍👩‍👧") == "a\\u202eb\\u001bc\\u0000 한 👨‍👩‍👧"
    import pyarrow as pa

    values = ["other"] * 5 + [f"c{i}" for i in range(30)]  # a real category called "other", and a long tail
    column = profile_table(pa.table({"s": values}), {"s": "feature"}).columns["s"]
    labels = [b["bucket"] for b in _category_buckets(column, None)]
    assert labels.count("other") == 1 and labels[-1] == REST_BUCKET
