"""Concurrent one-row requests are computed in one predict call and answered one by one."""

from __future__ import annotations

import threading

import pytest

from online_server.batching import Gathering
from online_server.hot_path import TICKET
from tests.online.conftest import ROW
from tests.online.test_app import make_client

WAIT_FOREVER = 60.0  # a batch that closes on its own never reaches this


class Recorder:
    """A compute function that answers each row with itself and records the batches."""

    def __init__(self, predictor="predictor-1"):
        self.batches: list[list] = []
        self.predictor = predictor

    def __call__(self, rows):
        self.batches.append(list(rows))
        return self.predictor, [ValueError(f"bad {row}") if row == "bad" else [row] for row in rows]


def run_concurrently(calls) -> list:
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_FOREVER)
    return results


def test_a_lone_request_is_computed_at_once_without_waiting():
    compute = Recorder()
    ticket, = Gathering().arrive()
    assert ticket.predict("a", compute, max_batch=32, max_wait=WAIT_FOREVER) == ("predictor-1", ["a"])
    assert compute.batches == [["a"]]


def test_requests_held_together_are_computed_in_one_call_and_answered_one_by_one():
    compute = Recorder()
    tickets = Gathering().arrive(4)
    results = run_concurrently([
        lambda t=t, i=i: t.predict(f"row{i}", compute, max_batch=32, max_wait=WAIT_FOREVER) for i, t in enumerate(tickets)
    ])
    assert len(compute.batches) == 1 and sorted(compute.batches[0]) == ["row0", "row1", "row2", "row3"]
    assert results == [("predictor-1", [f"row{i}"]) for i in range(4)]


def test_a_request_that_goes_another_way_does_not_hold_the_batch():
    compute = Recorder()
    tickets = Gathering().arrive(3)
    tickets[2].leave()
    results = run_concurrently([lambda t=t: t.predict(id(t), compute, max_batch=32, max_wait=WAIT_FOREVER) for t in tickets[:2]])
    assert [len(batch) for batch in compute.batches] == [2] and all(r[0] == "predictor-1" for r in results)


def test_a_batch_holds_at_most_max_batch_rows():
    compute = Recorder()
    tickets = Gathering().arrive(5)
    run_concurrently([lambda t=t, i=i: t.predict(i, compute, max_batch=2, max_wait=WAIT_FOREVER) for i, t in enumerate(tickets)])
    assert sorted(row for batch in compute.batches for row in batch) == [0, 1, 2, 3, 4]
    assert all(len(batch) <= 2 for batch in compute.batches)


def test_a_batch_stops_waiting_for_a_held_request_after_max_wait():
    compute = Recorder()
    waiting, never_decides = Gathering().arrive(2)
    assert waiting.predict("a", compute, max_batch=32, max_wait=0.01) == ("predictor-1", ["a"])
    assert compute.batches == [["a"]]


def test_a_row_that_fails_fails_only_its_own_request():
    compute = Recorder()
    tickets = Gathering().arrive(2)
    results = run_concurrently([lambda: tickets[0].predict("bad", compute, 32, WAIT_FOREVER),
                                lambda: tickets[1].predict("good", compute, 32, WAIT_FOREVER)])
    assert isinstance(results[0], ValueError) and results[1] == ("predictor-1", ["good"])


def test_the_app_answers_held_requests_from_one_predict_call_with_each_its_own_row(tmp_path, storage_root):
    """As the gathering worker serves them: each request carries the ticket it was accepted with."""
    client = make_client(tmp_path, storage_root, max_batch_wait_ms=WAIT_FOREVER * 1000)  # closes when all joined
    client.post("/model_download")
    predictor = client.application.wsgi_app.state.predictor
    rows = [[v * (i + 1) for v in ROW] for i in range(4)]
    alone = [predictor.predict(row)[0] for row in rows]
    calls = []
    real_predict = predictor.predict
    predictor.predict = lambda data: calls.append(data) or real_predict(data)
    tickets = client.application.wsgi_app.gathering.arrive(4)
    answers = run_concurrently([
        lambda row=row, ticket=ticket: client.post("/result", json={"test": row}, environ_overrides={TICKET: ticket})
        for row, ticket in zip(rows, tickets)
    ])
    assert len(calls) == 1 and len(calls[0]) == 4
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.get_json()["result"][0] for a in answers] == pytest.approx(alone, rel=1e-12)
    assert {a.headers["X-Model-Version"] for a in answers} == {"20261120"}


def test_a_bad_row_in_a_batch_gets_its_own_error_and_the_others_their_answers(tmp_path, storage_root):
    client = make_client(tmp_path, storage_root, max_batch_wait_ms=WAIT_FOREVER * 1000)  # closes when all joined
    client.post("/model_download")
    tickets = client.application.wsgi_app.gathering.arrive(3)
    bodies = [{"test": ROW}, {"test": ROW[:3]}, {"test": ROW}]
    answers = run_concurrently([
        lambda body=body, ticket=ticket: client.post("/result", json=body, environ_overrides={TICKET: ticket})
        for body, ticket in zip(bodies, tickets)
    ])
    assert [a.status_code for a in answers] == [200, 400, 200]
    assert "10 values" in answers[1].get_json()["message"]



def test_a_batch_stuck_in_predict_does_not_hold_the_next_one_back():
    release = threading.Event()
    batches: list[list] = []

    def compute(rows):
        batches.append(list(rows))
        if "stuck" in rows:
            release.wait(WAIT_FOREVER)
        return "predictor-1", [[row] for row in rows]

    gathering = Gathering(overlap_after=0.2)
    stuck, = gathering.arrive()
    thread = threading.Thread(target=stuck.predict, args=("stuck", compute, 32, 0.001), daemon=True)
    thread.start()
    for _ in range(1000):
        if batches:
            break
        threading.Event().wait(0.01)
    later = gathering.arrive(2)
    results = run_concurrently([lambda t=t, i=i: t.predict(f"row{i}", compute, max_batch=32, max_wait=0.001)
                                for i, t in enumerate(later)])
    assert results == [("predictor-1", ["row0"]), ("predictor-1", ["row1"])]
    release.set()
    thread.join(WAIT_FOREVER)


@pytest.fixture
def frame_model_client(tmp_path):
    """A HistGradientBoostingRegressor fitted on a DataFrame: it would predict a missing feature as NaN."""
    import io
    import pickle
    import zipfile

    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tests.online.conftest import MODEL

    frame, target = load_diabetes(return_X_y=True, as_frame=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr(f"{MODEL}.pkl", pickle.dumps(HistGradientBoostingRegressor(max_iter=10).fit(frame, target)))
    (tmp_path / "storage" / MODEL / "model").mkdir(parents=True)
    (tmp_path / "storage" / MODEL / "model" / "20261120.zip").write_bytes(buffer.getvalue())
    client = make_client(tmp_path, tmp_path / "storage", max_batch_wait_ms=WAIT_FOREVER * 1000)
    assert client.post("/model_download").status_code == 200
    return client, frame.iloc[0].to_dict()


@pytest.mark.parametrize("bad", ["missing bmi", "unknown feature only"])
def test_a_record_refused_alone_is_refused_the_same_way_in_a_batch(frame_model_client, bad):
    client, record = frame_model_client
    row = {k: v for k, v in record.items() if k != "bmi"} if bad == "missing bmi" else {"nope": 1.0}
    alone = client.post("/result", json={"test": row})
    tickets = client.application.wsgi_app.gathering.arrive(4)
    bodies = [{"test": record}, {"test": row}, {"test": record}, {"test": record}]
    answers = run_concurrently([
        lambda body=body, ticket=ticket: client.post("/result", json=body, environ_overrides={TICKET: ticket})
        for body, ticket in zip(bodies, tickets)
    ])
    assert alone.status_code == 400 and "missing feature(s)" in alone.get_json()["message"]
    assert [a.status_code for a in answers] == [200, 400, 200, 200]
    assert answers[1].get_json() == alone.get_json()


def test_a_row_whose_predict_calls_sys_exit_fails_only_its_own_request_in_a_batch(tmp_path, storage_root):
    """sys.exit (a BaseException) in the batch's predict: each row is then computed alone, as for any error."""
    client = make_client(tmp_path, storage_root, max_batch_wait_ms=WAIT_FOREVER * 1000)
    client.post("/model_download")
    predictor = client.application.wsgi_app.state.predictor
    real_predict = predictor.predict

    def predict(data):
        rows = data if isinstance(data[0], list) else [data]
        if any(row[0] == 99.0 for row in rows):
            raise SystemExit("a model that exits on this row")
        return real_predict(data)

    predictor.predict = predict
    tickets = client.application.wsgi_app.gathering.arrive(3)
    bodies = [{"test": ROW}, {"test": [99.0, *ROW[1:]]}, {"test": ROW}]
    answers = run_concurrently([
        lambda body=body, ticket=ticket: client.post("/result", json=body, environ_overrides={TICKET: ticket})
        for body, ticket in zip(bodies, tickets)
    ])
    assert [a.status_code for a in answers] == [200, 500, 200]
    assert answers[1].get_json()["error_code"] == "MODEL_FAILED" and "SystemExit" in answers[1].get_json()["message"]
