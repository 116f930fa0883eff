"""Warehouse outages at each step fail the task by name within the deadline; the day stays whole.

A real TCP proxy (tests/faultproxy.py) sits between the operator's clients and the
emulator's REST and Storage Read ports and refuses, black-holes or cuts connections at
a chosen step. Deadlines are a couple of seconds so the suite stays fast; each failure
must arrive within the deadline plus a generous margin (model loading, a busy machine),
far below the minutes an unbounded call would hang.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

import pytest

from airflow_provider_somlier import errors
from airflow_provider_somlier.operators import MLOpsOfflineOperator
from tests.faultproxy import FaultProxy
from tests.helpers import run_context, staging_tables

UTC = dt.timezone.utc
RUN_AT = dt.datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # target day 2026-11-19 (KST)
DAY = dt.date(2026, 11, 19)
DEADLINE = 2.0
MARGIN = 25.0  # model load, thread start-up and a machine shared with other test runs
FIRST_PAGE_THROUGH = 1_600_000  # bytes the Storage Read server may send: the first page, not the second


@pytest.fixture(scope="module")
def big_day(emulator, bq_client) -> str:
    """A source with one day of 25,000 rows: two Storage Read pages on the emulator (~1.26 + 0.94 MB)."""
    from airflow_provider_somlier.devtools.sample_data import load_features

    table_id = f"{emulator.project}.features.faults_big_day"
    load_features(bq_client, table_id, [DAY], 25_000)
    return table_id


@pytest.fixture
def proxies(emulator):
    with FaultProxy(emulator.rest_port) as rest, FaultProxy(emulator.grpc_port) as grpc:
        yield rest, grpc


@pytest.fixture
def faulty_conn(emulator, proxies, monkeypatch):
    """Register connection ``bq_faulty`` through the proxies; returns a function to set its timings."""
    rest, grpc = proxies

    def configure(deadline: float = DEADLINE, stall: float = 30.0) -> str:
        extras = {
            "project": emulator.project, "is_anonymous": True, "api_endpoint": rest.url,
            "storage_read_endpoint": grpc.grpc_endpoint, "retry_deadline_seconds": deadline,
            "read_stall_seconds": stall,
        }
        monkeypatch.setenv("AIRFLOW_CONN_BQ_FAULTY", json.dumps({"conn_type": "google_cloud_platform", "extra": extras}))
        return "bq_faulty"

    configure()
    return configure


@pytest.fixture
def scored(registry, big_day, destination, bq_client):
    """A destination already holding the target day (scored by an earlier version), and its snapshot."""
    base = dict(
        task_id="predict", model_ref="diabetes-ridge/1", dataset_ref=big_day, dataset_load_column="load_date",
        destination_table_ref=destination, passthrough_columns=["row_id"],
    )
    MLOpsOfflineOperator(**base).execute(run_context(RUN_AT))

    def snapshot():
        rows = bq_client.query(
            f"SELECT COUNT(*) AS n, SUM(row_id) AS ids, SUM(prediction) AS total, MAX(predicted_at) AS last "
            f"FROM `{destination}`"
        ).result()
        return tuple(next(iter(rows)).values())

    before = snapshot()
    assert before[0] == 25_000
    return base, snapshot, before


def fails_by_name(scored, conn_id: str, *, within: float, match: list[str], **overrides) -> errors.WarehouseUnavailableError:
    base, snapshot, before = scored
    operator = MLOpsOfflineOperator(**{**base, "gcp_conn_id": conn_id, **overrides})
    started = time.monotonic()
    with pytest.raises(errors.WarehouseUnavailableError) as caught:
        operator.execute(run_context(RUN_AT))
    elapsed = time.monotonic() - started
    for part in match:
        assert part in str(caught.value), str(caught.value)
    assert elapsed < within, f"took {elapsed:.1f} s: {caught.value}"
    assert snapshot() == before, "the destination changed"
    return caught.value


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_an_unreachable_or_silent_rest_api_fails_the_first_metadata_call_by_name(scored, proxies, faulty_conn, mode):
    rest, _ = proxies
    rest.fault(mode)
    fails_by_name(scored, faulty_conn(), within=DEADLINE + MARGIN, match=["get_table", rest.url])


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_a_storage_read_api_down_when_the_session_is_created_is_named(scored, proxies, faulty_conn, mode):
    _, grpc = proxies
    grpc.fault(mode)
    fails_by_name(scored, faulty_conn(), within=DEADLINE + MARGIN, match=["create_read_session", grpc.grpc_endpoint[7:]])


def test_a_stream_that_goes_silent_after_the_first_page_fails_after_read_stall_seconds(scored, proxies, faulty_conn):
    _, grpc = proxies
    grpc.fault_after_response_bytes(FIRST_PAGE_THROUGH, "blackhole")
    error = fails_by_name(
        scored, faulty_conn(stall=2.0), within=2.0 + MARGIN, match=["read stream", "no page for read_stall_seconds=2"]
    )
    assert grpc.triggered.is_set()
    assert re.search(r"after [1-9][0-9]* row\(s\)", str(error)), "the first page should have arrived"


def test_a_stream_cut_for_good_fails_after_reconnecting_for_the_deadline(scored, proxies, faulty_conn):
    _, grpc = proxies
    grpc.fault_after_response_bytes(200_000, "refuse")  # mid first page, and the port stays closed
    fails_by_name(scored, faulty_conn(stall=60.0), within=DEADLINE + MARGIN, match=["read stream (reconnecting after 0 row(s))"])
    assert grpc.triggered.is_set()


def test_a_stream_cut_before_its_first_page_is_read_again_whole(scored, proxies, faulty_conn, bq_client):
    base, _, _ = scored
    _, grpc = proxies
    grpc.fault_after_response_bytes(200_000, "blip")  # mid first page: nothing delivered yet
    summary = MLOpsOfflineOperator(**{**base, "gcp_conn_id": faulty_conn(), "model_ref": "diabetes-ridge/2"}).execute(
        run_context(RUN_AT)
    )
    assert grpc.triggered.is_set()
    assert summary["rows_read"] == summary["rows_written"] == 25_000
    written = next(iter(bq_client.query(
        f"SELECT COUNT(DISTINCT row_id) AS ids, COUNT(*) AS n, MIN(model_version) AS v FROM `{base['destination_table_ref']}`"
    ).result()))
    assert tuple(written.values()) == (25_000, 25_000, 2)


def test_a_stream_cut_after_its_first_page_is_not_resumed_where_offsets_are_ignored(scored, proxies, faulty_conn):
    """The emulator replays a resumed stream from row 0: resuming there would write rows twice."""
    _, grpc = proxies
    grpc.fault_after_response_bytes(FIRST_PAGE_THROUGH, "blip", after_seconds=2.0)  # page one read, then cut
    fails_by_name(scored, faulty_conn(), within=DEADLINE + MARGIN, match=["does not resume a stream from an offset"])
    assert grpc.triggered.is_set()


def test_an_outage_during_the_upload_is_named_and_the_cleanup_does_not_hide_it(scored, proxies, faulty_conn, bq_client):
    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.refs import parse_table_ref

    base, _, _ = scored
    rest, _ = proxies
    rest.fault_on_request(b"uploadType=resumable", "refuse")
    error = fails_by_name(scored, faulty_conn(), within=2 * DEADLINE + MARGIN, match=["upload of the staged predictions", rest.url])
    assert isinstance(error.__cause__, Exception) and "delete_table" not in str(error)
    # The staging table the failed run could not drop is swept by a later run once stale.
    rest.fault("pass")
    destination = base["destination_table_ref"]
    assert len(staging_tables(bq_client, destination)) == 1
    hook = SomlierBigQueryHook(gcp_conn_id=faulty_conn())
    assert len(hook.sweep_stale_staging(parse_table_ref(destination), older_than=dt.timedelta(0))) == 1
    assert staging_tables(bq_client, destination) == []


def test_a_blip_during_the_upload_is_retried_within_the_deadline(scored, proxies, faulty_conn, bq_client):
    base, _, _ = scored
    rest, _ = proxies
    rest.fault_on_request(b"uploadType=resumable", "blip")
    summary = MLOpsOfflineOperator(**{**base, "gcp_conn_id": faulty_conn(), "model_ref": "diabetes-ridge/2"}).execute(
        run_context(RUN_AT)
    )
    assert rest.triggered.is_set()
    assert summary["rows_written"] == 25_000
    assert staging_tables(bq_client, base["destination_table_ref"]) == []


@pytest.mark.parametrize("mode", ["blackhole", "refuse"])
def test_a_warehouse_lost_at_the_transaction_submit_is_named_and_the_day_stays_old(scored, proxies, faulty_conn, mode):
    rest, _ = proxies
    rest.fault_on_request(b"BEGIN TRANSACTION", mode)
    fails_by_name(scored, faulty_conn(), within=2 * DEADLINE + MARGIN, match=["transaction submit", rest.url], model_ref="diabetes-ridge/2")
    assert rest.triggered.is_set()


def test_a_read_session_lost_on_the_server_is_named_not_a_raw_404(emulator, big_day):
    """The emulator forgets its read sessions when it restarts; a resumed stream then gets 404."""
    import pyarrow as pa

    from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook
    from airflow_provider_somlier.hooks.bigquery_stream import ReadStreamPages

    hook = SomlierBigQueryHook()
    lost = f"projects/{emulator.project}/locations/us/sessions/gone/streams/gone"
    pages = ReadStreamPages(hook.read_client(), lost, pa.schema([("row_id", pa.int64())]), hook.storage_read)
    with pytest.raises(errors.WarehouseUnavailableError, match="read session lost after 0 row"):
        list(pages)


@pytest.fixture
def read_api_refusing(faulty_conn, monkeypatch):
    """A Storage Read API on a real gRPC socket that answers every session with PERMISSION_DENIED,
    as BigQuery does for an account without ``bigquery.readsessions.create``."""
    from concurrent import futures

    import grpc
    from google.cloud.bigquery_storage_v1 import types

    calls = []

    def create_read_session(request, context):
        calls.append(request.read_session.table)
        context.abort(grpc.StatusCode.PERMISSION_DENIED,
                      "Permission bigquery.readsessions.create denied on project somlier-local")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "google.cloud.bigquery.storage.v1.BigQueryRead",
        {"CreateReadSession": grpc.unary_unary_rpc_method_handler(
            create_read_session, request_deserializer=types.CreateReadSessionRequest.deserialize,
            response_serializer=types.ReadSession.serialize)},
    )])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    conn_id = faulty_conn()
    extras = json.loads(os.environ["AIRFLOW_CONN_BQ_FAULTY"])
    extras["extra"]["storage_read_endpoint"] = f"grpc://127.0.0.1:{port}"
    monkeypatch.setenv("AIRFLOW_CONN_BQ_FAULTY", json.dumps(extras))
    yield conn_id, calls
    server.stop(grace=None)


def test_a_read_the_warehouse_refuses_fails_at_once_by_name_not_as_an_outage(scored, read_api_refusing):
    """A refusal is an answer: one call, a named input error (no retries spent), the day untouched."""
    base, snapshot, before = scored
    conn_id, calls = read_api_refusing
    with pytest.raises(errors.ReadRefusedError) as caught:
        MLOpsOfflineOperator(**{**base, "gcp_conn_id": conn_id, "model_ref": "diabetes-ridge/2"}).execute(
            run_context(RUN_AT))
    message = str(caught.value)
    assert "bigquery.readsessions.create denied" in message and "roles/bigquery.readSessionUser" in message
    assert base["dataset_ref"] in message
    assert isinstance(caught.value, errors.SomlierInputError)  # AirflowFailException: Airflow does not retry it
    assert len(calls) == 1
    assert snapshot() == before
