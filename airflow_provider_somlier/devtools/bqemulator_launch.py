"""Start bqemulator with DuckDB's spatial extension made optional.

Runs inside the emulator's own virtual environment (``.venv-bqemulator``), never
inside Airflow's. bqemulator 1.4 downloads DuckDB's ``spatial`` extension at start-up
and refuses to start without it; SoMLier needs no GEOGRAPHY, so the load becomes
best-effort and the emulator starts on a machine with no internet access.
Arguments are those of ``bqemulator`` itself (e.g. ``start --rest-port 9050``).
"""

import logging
import sys

from bqemulator.storage import engine


def _load_spatial_if_present(self) -> None:
    try:
        self._connection.execute("LOAD spatial")
    except Exception as exc:  # noqa: BLE001 - any failure only disables GEOGRAPHY
        logging.getLogger("somlier.bqemulator").info("GEOGRAPHY disabled (no spatial extension): %s", exc)


engine.DuckDBEngine._load_spatial = _load_spatial_if_present

if __name__ == "__main__":
    from bqemulator.cli import main

    sys.argv[0] = "bqemulator"
    main()
