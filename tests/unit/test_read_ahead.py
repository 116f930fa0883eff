"""read_ahead keeps order, surfaces the producer's error where it happened, and stops when dropped."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_somlier.read_ahead import read_ahead


def test_items_arrive_in_order_and_all_of_them():
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead([], depth=1)) == []


def test_the_producer_runs_at_most_depth_items_ahead():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    pages = read_ahead(source(), depth=2)
    assert next(pages) == 0
    time.sleep(0.3)
    # one handed out, two queued, one more fetched and waiting for room
    assert len(produced) <= 4
    pages.close()


def test_an_error_while_reading_is_raised_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ConnectionError("stream reset at page 3")

    pages = read_ahead(source(), depth=2)
    assert next(pages) == 1 and next(pages) == 2
    with pytest.raises(ConnectionError, match="page 3"):
        next(pages)


def test_closing_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed.set()

    before = set(threading.enumerate())
    pages = read_ahead(source(), depth=2)
    assert next(pages) == 0
    (producer,) = _read_ahead_threads() - before
    pages.close()
    assert closed.wait(5)
    producer.join(5)
    assert not producer.is_alive()


def _read_ahead_threads() -> set[threading.Thread]:
    """This test's own producer threads, told from other tests' by comparing before and after."""
    return {t for t in threading.enumerate() if t.name == "somlier-read-ahead"}


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        next(read_ahead([1], depth=0))


class SilentSource:
    """Yields one item, then blocks as a read on a silent socket does, until cancelled."""

    def __init__(self):
        self.cancelled = threading.Event()

    def __iter__(self):
        yield "first page"
        self.cancelled.wait()

    def cancel(self):
        self.cancelled.set()


def test_a_source_that_goes_silent_is_cancelled_and_the_stall_raised():
    source = SilentSource()
    before = set(threading.enumerate())
    pages = read_ahead(source, depth=1, stall_seconds=0.3, on_stall=lambda s: TimeoutError(f"silent for {s} s"))
    assert next(pages) == "first page"
    (producer,) = _read_ahead_threads() - before
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="silent for 0.3 s"):
        next(pages)
    assert time.monotonic() - started < 5  # the stall bound plus a generous margin, not forever
    assert source.cancelled.is_set()
    producer.join(5)
    assert not producer.is_alive()


def test_a_slow_consumer_is_not_a_stall():
    pages = read_ahead(iter(range(5)), depth=1, stall_seconds=0.2)
    seen = []
    for page in pages:
        time.sleep(0.3)  # the consumer, not the source, is slow
        seen.append(page)
    assert seen == list(range(5))


def test_a_stall_on_a_source_that_cannot_be_cancelled_is_raised_within_a_second_of_the_stall():
    """The producer stays blocked in a daemon thread; the consumer's error does not wait for it."""
    release = threading.Event()

    def source():
        yield 1
        release.wait(60)  # a socket that never answers, and no cancel()
        yield 2

    pages = read_ahead(source(), depth=1, stall_seconds=0.3)
    assert next(pages) == 1
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            next(pages)
        assert time.monotonic() - started < 0.3 + 1.5
    finally:
        release.set()
