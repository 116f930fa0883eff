"""WSGI entry point: settings from the environment."""

import logging

from online_server.app import create_app

logging.basicConfig(level=logging.INFO, format="%(message)s")
app = create_app()
