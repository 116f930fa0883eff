"""A Storage Read API front that refuses what BigQuery refuses and the emulator serves: views.

BigQuery's Storage Read API reads tables only ("non-table entities cannot be read with the
storage API": views, materialized views, external tables); the local emulator reads views
as well, so a test against it alone would never notice a read of a view. This real gRPC
server sits in front of the emulator's Storage Read port, passes every call through as raw
bytes, and answers ``CreateReadSession`` on anything but a ``TABLE`` with
``INVALID_ARGUMENT``, as BigQuery does. It records each session's table.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"


class StorageReadFront:
    """Serve on ``grpc://127.0.0.1:<port>`` while open; ``table_type(table_path)`` says what a table is."""

    def __init__(self, upstream: str, table_type: Callable[[str], str]) -> None:
        self.upstream = upstream
        self.table_type = table_type
        self.sessions: list[str] = []  # the table of every session asked for
        self.refused: list[str] = []
        self._server = None
        self._channel = None
        self.port = 0

    @property
    def grpc_endpoint(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def __enter__(self) -> StorageReadFront:
        import grpc
        from google.cloud.bigquery_storage_v1 import types

        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        self._channel = grpc.insecure_channel(self.upstream, options=options)
        forward_unary = {name: self._channel.unary_unary(f"/{SERVICE}/{name}")
                         for name in ("CreateReadSession", "SplitReadStream")}
        read_rows = self._channel.unary_stream(f"/{SERVICE}/ReadRows")

        def metadata(context) -> list:
            return [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":")]

        def create_read_session(request: bytes, context) -> bytes:
            table = types.CreateReadSessionRequest.deserialize(request).read_session.table
            self.sessions.append(table)
            kind = self.table_type(table)
            if kind != "TABLE":
                self.refused.append(table)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{table} is a {kind}: non-table entities cannot be read with the storage API")
            return forward_unary["CreateReadSession"](request, metadata=metadata(context),
                                                      timeout=context.time_remaining())

        def split_read_stream(request: bytes, context) -> bytes:
            return forward_unary["SplitReadStream"](request, metadata=metadata(context),
                                                    timeout=context.time_remaining())

        def read(request: bytes, context):
            upstream = read_rows(request, metadata=metadata(context))
            context.add_callback(upstream.cancel)  # the client went away: so does the upstream call
            yield from upstream

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            "CreateReadSession": grpc.unary_unary_rpc_method_handler(create_read_session),
            "SplitReadStream": grpc.unary_unary_rpc_method_handler(split_read_stream),
            "ReadRows": grpc.unary_stream_rpc_method_handler(read),
        })])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(grace=None)
        self._channel.close()
