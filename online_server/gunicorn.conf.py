"""gunicorn settings for the online server: ``gunicorn -c online_server/gunicorn.conf.py``."""

import os
import shutil
import tempfile

from online_server.settings import Settings, SettingsError, env_number
from online_server.swap import ForeignPointerError, refuse_foreign_pointer

# Every setting is read and checked here, before any worker starts: a bad value (MAX_BATCH=abc,
# MODEL_TYPE=bogus, EVENT_LOOP=tornado, no MODEL_NAME) stops the server with a message naming it,
# and so does a WORK_DIR whose current.json is another model's.
try:
    settings = Settings.from_env()
    refuse_foreign_pointer(settings)
except (SettingsError, ForeignPointerError) as bad:
    # one line naming it, instead of gunicorn's "Failed to read config file" and a traceback
    raise SystemExit(f"online server: {bad}") from None

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = env_number(os.environ, "WORKERS", int, 2)
# FrontWorker (online_server/front_worker.py): an asyncio loop reads each request whole, within
# READ_TIMEOUT_SECONDS, before a thread answers it, so stalled clients hold no thread; the
# threads' one-row predictions are batched. A worker takes new connections only while it has a
# free thread and is not loading a model, so load spreads as with sync workers.
# GatheringWorker (online_server/worker.py), sync and gthread remain available; each of them
# reads a request on the thread that answers it, so a few dozen stalled clients lock them up.
worker_class = os.environ.get("WORKER_CLASS", "online_server.front_worker.FrontWorker")
# The front worker's event loop: uvloop when installed (fewer milliseconds per accepted
# connection, which a storm of reconnecting slow clients makes count), or EVENT_LOOP=asyncio.
# A bad value stops the server above (Settings.from_env), before any worker starts.
threads = env_number(os.environ, "THREADS", int, 1)
keepalive = env_number(os.environ, "KEEPALIVE", int, 5)
timeout = env_number(os.environ, "TIMEOUT", int, 120)
# A model that leaks memory on every call: MAX_REQUESTS=N replaces a worker after about N requests
# (gunicorn's jitter spreads the restarts; 0, the default, never).
max_requests = env_number(os.environ, "MAX_REQUESTS", int, 0)
max_requests_jitter = max_requests // 10
wsgi_app = "online_server.wsgi:app"
accesslog = None  # the app writes structured access logs itself
loglevel = os.environ.get("LOG_LEVEL", "info")

# Metrics from every worker are merged through files in this folder.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="somlier-metrics-"))


def post_fork(server, worker):
    """Before the worker imports any model library: its share of the cores for OpenMP and BLAS."""
    from online_server.native_threads import limit_native_threads, threads_per_worker

    limit_native_threads(threads_per_worker(server.cfg.workers, settings.native_threads))


# gunicorn stops the whole server when a worker exits with code 3 or 4 ("failed to boot", "app
# failed to load"), to avoid restarting a broken app forever. A model calling os._exit(3) while
# serving would stop it just the same. So the arbiter is given codes no exit status can equal,
# and a worker that really failed to boot says so itself (worker_exit, in the worker, which a
# model's os._exit skips); child_exit, in the arbiter, halts the server as gunicorn would.
_BOOT_FAILURES = tempfile.mkdtemp(prefix="somlier-boot-")


def when_ready(server):
    server.WORKER_BOOT_ERROR = server.APP_LOAD_ERROR = 1 << 16  # an exit status is 0..255


def worker_exit(server, worker):
    if not worker.booted:
        open(os.path.join(_BOOT_FAILURES, str(worker.pid)), "w").close()


def on_exit(server):
    shutil.rmtree(_BOOT_FAILURES, ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    failed = os.path.join(_BOOT_FAILURES, str(worker.pid))
    if os.path.exists(failed):
        os.unlink(failed)
        from gunicorn.errors import HaltServer

        raise HaltServer("Worker failed to boot.", 3)
