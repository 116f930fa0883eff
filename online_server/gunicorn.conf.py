"""gunicorn settings for the online server: ``gunicorn -c online_server/gunicorn.conf.py``."""

import os
import tempfile

from online_server.settings import Settings, check_event_loop

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WORKERS", "2"))
# FrontWorker (online_server/front_worker.py): an asyncio loop reads each request whole, within
# READ_TIMEOUT_SECONDS, before a thread answers it, so stalled clients hold no thread; the
# threads' one-row predictions are batched. A worker takes new connections only while it has a
# free thread and is not loading a model, so load spreads as with sync workers.
# GatheringWorker (online_server/worker.py), sync and gthread remain available; each of them
# reads a request on the thread that answers it, so a few dozen stalled clients lock them up.
worker_class = os.environ.get("WORKER_CLASS", "online_server.front_worker.FrontWorker")
# The front worker's event loop: uvloop when installed (fewer milliseconds per accepted
# connection, which a storm of reconnecting slow clients makes count), or EVENT_LOOP=asyncio.
# A bad value stops the server here, before any worker starts.
check_event_loop(os.environ.get("EVENT_LOOP") or Settings.event_loop)
threads = int(os.environ.get("THREADS", "1"))
keepalive = int(os.environ.get("KEEPALIVE", "5"))
timeout = int(os.environ.get("TIMEOUT", "120"))
wsgi_app = "online_server.wsgi:app"
accesslog = None  # the app writes structured access logs itself
loglevel = os.environ.get("LOG_LEVEL", "info")

# Metrics from every worker are merged through files in this folder.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="somlier-metrics-"))


def post_fork(server, worker):
    """Before the worker imports any model library: its share of the cores for OpenMP and BLAS."""
    from online_server.native_threads import limit_native_threads, threads_per_worker

    limit_native_threads(threads_per_worker(server.cfg.workers, int(os.environ.get("NATIVE_THREADS") or 0)))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
