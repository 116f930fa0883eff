"""WSGI entry point: settings from the environment."""

import logging

from online_server.app import create_app

logging.basicConfig(level=logging.INFO, format="%(message)s")
# The access log's format is the message alone: skip gathering the caller, thread and
# process of every record (the logging HOWTO's "Optimization" table).
logging._srcfile = None
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
app = create_app()
