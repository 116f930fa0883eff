"""WSGI entry point: settings from the environment."""

import logging

from online_server.app import create_app
from online_server.follow import follow_pointer

logging.basicConfig(level=logging.INFO, format="%(message)s")
# The access log's format is the message alone: skip gathering the caller and thread of
# every record (the logging HOWTO's "Optimization" table). Not the process id: gunicorn's
# own records ("Worker exiting", "Exception in worker process") are formatted with
# ``%(process)d`` in this same process, and without it each one printed a "--- Logging
# error ---" traceback instead of itself; the saving was one getpid() per record.
logging._srcfile = None
logging.logThreads = logging.logMultiprocessing = False
app = create_app()
# Each worker imports this module after gunicorn forked it: the follower thread is its own.
state = app.extensions["somlier_state"]
follow_pointer(state, state.settings.follow_pointer_seconds)
