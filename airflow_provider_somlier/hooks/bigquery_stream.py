"""One Storage Read stream as Arrow record batches, with bounded reconnects and a cancel.

The client library's ``ReadRowsStream`` reconnects on transient errors with no bound
(its retry deadline is a day) and cannot be told to give up from another thread while
it waits. This iterator reconnects from the last offset for at most the connection's
deadline since the last page, turns a lost read session (the warehouse restarted, the
session expired) into a retryable error instead of a raw ``404 Stream not found``, and
``cancel()`` ends a read that is stuck on a silent socket: the read-ahead consumer calls
it when no page arrived for ``read_stall_seconds``.

Resuming relies on the server honouring ``offset``. BigQuery does; the local emulator
ignores it and replays the stream from its first row, which would duplicate rows. So a
stream is resumed only when ``resume`` is set (the hook sets it for BigQuery's TLS
endpoints); otherwise a cut after the first rows fails the step, and the task's retry
reads the day again. A cut before any row arrived is always retried: reading from the
start is exact either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_somlier.hooks.bigquery_calls import WarehouseCalls, is_transient

if TYPE_CHECKING:
    import pyarrow as pa


class ReadStreamPages:
    """Iterate the pages of ``stream_name`` as record batches of ``schema``."""

    def __init__(
        self, read_client: Any, stream_name: str, schema: pa.Schema, calls: WarehouseCalls, *, resume: bool = True
    ) -> None:
        self._client = read_client
        self._resume = resume
        self._name = stream_name
        self._schema = schema
        self._calls = calls
        self._lock = threading.Lock()
        self._cancelled = False
        self._call: Any = None
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from google.api_core.exceptions import NotFound, from_grpc_error
        from google.cloud.bigquery_storage_v1 import types

        # The transport's bare gRPC method: it returns at once with a call that can be
        # cancelled from another thread (the generated client's wrapper blocks on the first
        # page before handing the call back) and it never reconnects behind our back. No
        # overall deadline either: a healthy stream of a big day may outlast any deadline;
        # silence is caught per page by the consumer instead.
        read_rows = self._client.transport.read_rows
        routing = [("x-goog-request-params", f"read_stream={self._name}")]
        failing_since: float | None = None
        attempt = 0
        while True:
            with self._lock:
                if self._cancelled:
                    return
                self._call = read_rows(
                    types.ReadRowsRequest(read_stream=self._name, offset=self.rows), metadata=routing
                )
            try:
                for response in self._call:
                    failing_since, attempt = None, 0
                    if response.row_count:
                        self.rows += response.row_count
                        yield pa.ipc.read_record_batch(
                            pa.py_buffer(response.arrow_record_batch.serialized_record_batch), self._schema
                        )
                return
            except Exception as raw:
                if self._cancelled:
                    return
                exc = from_grpc_error(raw) if hasattr(raw, "code") and callable(raw.code) else raw
                if isinstance(exc, NotFound):
                    raise self._calls.unavailable(
                        f"read stream (read session lost after {self.rows} row(s): the warehouse restarted "
                        "or the session expired; a retry starts a new one)",
                        exc,
                        0,
                    ) from raw
                if not is_transient(exc):
                    if exc is raw:
                        raise
                    raise exc from raw
                if self.rows and not self._resume:
                    raise self._calls.unavailable(
                        f"read stream (cut after {self.rows} row(s); this endpoint does not resume a stream "
                        "from an offset, so the day is read again from the start on retry)",
                        exc,
                        0,
                    ) from raw
                now = time.monotonic()
                failing_since = failing_since or now
                attempt += 1
                if now - failing_since >= self._calls.deadline_seconds:
                    raise self._calls.unavailable(
                        f"read stream (reconnecting after {self.rows} row(s))", exc, now - failing_since, attempt
                    ) from raw
                time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))

    def cancel(self) -> None:
        """Stop the read: a blocked ``next()`` on another thread returns, nothing reconnects."""
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()
