"""A gunicorn worker that holds several requests at once and still spreads load like sync workers.

Batching needs a process that holds several requests at once; gunicorn's sync worker holds
one. Its threaded worker (gthread) holds many, but keeps every connection it accepted: when
a burst of clients lands on one worker, the others idle (measured: half the throughput in
some runs). This worker accepts like a sync worker -- only when it is free, one connection
per request, closed after the answer -- and then also takes the connections already
waiting in the listen queue, up to ``MAX_BATCH``, and answers them together, one thread
each, so their one-row predictions are computed in one batch. A free worker takes what is
waiting; a busy one takes nothing: load spreads as with sync workers, and a lone request
is answered at once on the accepting thread.

``gunicorn -k online_server.worker.GatheringWorker`` (``WORKER_CLASS``; the default is now
``online_server.front_worker.FrontWorker``, which reads each request whole before a thread
answers it: this worker reads on the answering thread, so stalled clients hold its threads).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from online_server.batching import Gathering, Ticket
from online_server.hot_path import TICKET
from online_server.settings import number_setting


class GatheringWorker(SyncWorker):
    """A sync worker that answers every connection waiting when it becomes free, together."""

    def init_process(self) -> None:
        self.max_batch = max(1, number_setting(os.environ, "max_batch"))
        self.gathering = Gathering()
        self.pool = ThreadPoolExecutor(max_workers=self.max_batch, thread_name_prefix="somlier-request")
        self.held = threading.local()
        super().init_process()  # loads the app, then runs until the worker exits

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def with_ticket(environ, start_response):
            ticket = getattr(self.held, "ticket", None)
            if ticket is not None:
                environ[TICKET] = ticket
            return app(environ, start_response)

        self.wsgi = with_ticket

    def accept(self, listener) -> None:
        group = [listener.accept()]  # raises EAGAIN when nothing waits: the sync loop then waits
        while len(group) < self.max_batch:
            try:
                group.append(listener.accept())
            except OSError:  # EAGAIN: no one else is waiting (or the peer gave up)
                break
        tickets = self.gathering.arrive(len(group))
        for client, _ in group:
            client.setblocking(1)
            util.close_on_exec(client)
        if len(group) == 1:
            self._answer(listener, *group[0], tickets[0])
            return
        answered = [self.pool.submit(self._answer, listener, client, addr, ticket)
                    for (client, addr), ticket in zip(group, tickets)]
        for future in answered:
            future.result()

    def _answer(self, listener, client, addr, ticket: Ticket) -> None:
        self.held.ticket = ticket
        try:
            self.handle(listener, client, addr)
        finally:
            self.held.ticket = None
            ticket.leave()  # a request that never reached the app (closed early, unparsable) is no longer awaited
