"""What a request to the Predictions pages can get wrong, each with the HTTP status it answers.

Every error a request can cause is one of these (or Airflow's 401/403): the app turns
them into a JSON body ``{"error_code": …, "message": …}`` for the API and a page that
says the same for a browser, never a stack trace.
"""

from __future__ import annotations


class PagesError(Exception):
    """Base of the errors the Predictions pages answer with; ``status`` is the HTTP status."""

    status = 400
    error_code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameterError(PagesError):
    """A path or query parameter is malformed (a day that is no date, a range too long)."""

    error_code = "BAD_PARAMETER"


class UnknownDestinationError(PagesError):
    """No destination of that name that this user may see (unknown, or written by a DAG they may not read)."""

    status = 404
    error_code = "UNKNOWN_DESTINATION"


class DayNotFoundError(PagesError):
    """The destination holds no profile of that day."""

    status = 404
    error_code = "DAY_NOT_FOUND"


class NotAProfileError(PagesError):
    """The table that should hold a destination's profiles is missing or has another schema."""

    status = 404
    error_code = "NOT_A_SOMLIER_PROFILE"


class WarehouseError(PagesError):
    """BigQuery could not be asked (unreachable, or it refused the read)."""

    status = 503
    error_code = "WAREHOUSE_UNAVAILABLE"
