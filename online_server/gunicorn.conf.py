"""gunicorn settings for the online server: ``gunicorn -c online_server/gunicorn.conf.py``."""

import os
import tempfile

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WORKERS", "2"))
# GatheringWorker (online_server/worker.py): accepts like a sync worker -- only when free,
# so load spreads evenly across workers -- then also takes the connections already waiting
# (up to MAX_BATCH) and answers them together, their one-row predictions in one batch.
# sync and gthread remain available; gthread keeps every keep-alive connection it accepted,
# so a burst of clients can land on one worker while the others idle.
worker_class = os.environ.get("WORKER_CLASS", "online_server.worker.GatheringWorker")
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
