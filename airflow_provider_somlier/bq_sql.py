"""BigQuery SQL literals for the few values SoMLier writes into its scripts.

The day's replace runs as one multi-statement script, and the local emulator ignores
query parameters inside scripts, so the per-task constants (the target day, the lineage
of every row) are written as literals. Each is rendered from a typed Python value, and
strings are escaped by BigQuery's rules; there is no path from a string to SQL text
except through :func:`string_literal`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.features import normalize_bq_type

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string_literal(value: str, *, field: str = "value") -> str:
    """``value`` as a quoted BigQuery string literal.

    Backslash, quote, newline, carriage return and tab are escaped; other control
    characters are refused (no Airflow id or registry name holds one legitimately).
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field} must be a string, got {type(value).__name__} {value!r}")
    for char in value:
        if char not in _ESCAPES and (ord(char) < 0x20 or ord(char) == 0x7F):
            raise InvalidArgumentError(
                f"{field} {value!r} holds the control character {char!r}; it cannot be written as lineage"
            )
    return "'" + "".join(_ESCAPES.get(char, char) for char in value) + "'"


def literal(value: Any, bq_type: str, *, field: str = "value") -> str:
    """A literal of ``bq_type`` (STRING, INT64, FLOAT64, DATE, TIMESTAMP) for ``value``; NULL for None."""
    kind = normalize_bq_type(bq_type)
    if value is None:
        return f"CAST(NULL AS {kind})"
    if kind == "STRING":
        return string_literal(value, field=field)
    if kind == "INT64" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "FLOAT64" and isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            return f"CAST('{number}' AS FLOAT64)"
        return repr(number)
    if kind == "DATE" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"DATE '{value.isoformat()}'"
    if kind == "TIMESTAMP" and isinstance(value, dt.datetime) and value.tzinfo is not None:
        return f"TIMESTAMP '{value.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S.%f}+00:00'"
    raise InvalidArgumentError(f"{field} {value!r} cannot be written as a BigQuery {bq_type} literal")
