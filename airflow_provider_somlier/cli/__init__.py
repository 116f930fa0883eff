"""The ``somlier`` command: argument parsing only; the work happens in ``generate/`` and ``lifecycle/``.

One module per command group; importing them registers their commands on :data:`main`.
Exit codes: 0 done, 1 a step failed (publishing, Airflow check), 2 bad input.
"""

from __future__ import annotations

from airflow_provider_somlier.cli import batch, config, models, offline, online  # noqa: F401 - registers the commands
from airflow_provider_somlier.cli.base import main

__all__ = ["main"]
