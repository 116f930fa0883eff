"""Turn the JSON ``test`` value into a 2-D input and a prediction into JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from online_server.models import BadInputError

NOT_NUMBERS = "'test' must be numbers: a row, a list of rows, or objects of feature: value"


def is_number(value: Any) -> bool:
    """A finite int or float within a double's range -- not a bool, a string or None, which numpy would convert."""
    if type(value) is float:  # the common case, first
        return math.isfinite(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any double
        return False


def _refuse(value: Any) -> BadInputError:
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        return BadInputError(f"'test' holds NaN or infinity (or a number outside a double's range), got {value!r}; "
                             "every value must be a finite number")
    return BadInputError(f"{NOT_NUMBERS}; got {str(value)[:40]!r} ({type(value).__name__})")


def check_rows(rows: list) -> None:
    """Every value of every row (lists of values) a finite number."""
    for row in rows:
        if not isinstance(row, list):
            raise BadInputError(f"{NOT_NUMBERS}; got {str(row)[:40]!r} ({type(row).__name__})")
        for value in row:
            if not is_number(value):
                raise _refuse(value)


def check_records(records: list[dict], columns: list[str] | None) -> None:
    """The values of ``columns`` (None: every key) in each object finite numbers."""
    for record in records:
        for name in record if columns is None else columns:
            if name in record and not is_number(record[name]):
                raise BadInputError(f"feature {name!r}: " + str(_refuse(record[name])))


def is_records(data: Any) -> bool:
    """One object of feature: value, or a non-empty list of them."""
    return isinstance(data, dict) or (isinstance(data, list) and bool(data) and all(isinstance(r, dict) for r in data))


def as_matrix(data: Any, columns: list[str] | None = None, width: int | None = None):
    """A row or a list of rows of numbers → a finite 2-D float array of the model's width.

    ``width`` defaults to ``len(columns)``; the checks here are the ones a model's own
    predict would make, with messages that name what the request got wrong.
    """
    if not isinstance(data, list):
        raise BadInputError(f"{NOT_NUMBERS}; got {type(data).__name__}")
    if data and not isinstance(data[0], list):
        data = [data]
    check_rows(data)
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise BadInputError(f"{NOT_NUMBERS}; rows must be lists of numbers of one width") from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise BadInputError(f"'test' must be a non-empty row or list of rows, got shape {list(array.shape)}")
    width = len(columns) if columns and width is None else width
    if width is not None and array.shape[1] != width:
        names = f" ({', '.join(columns)})" if columns else ""
        raise BadInputError(f"each row must have {width} values{names}, got {array.shape[1]}")
    if not np.isfinite(array).all():
        raise BadInputError("'test' holds NaN or infinity; every value must be a finite number")
    return array


def check_one(data: Any, columns: list[str] | None, width: int | None = None, checked: list[str] | None = None) -> None:
    """One row (a list of values or an object) checked as ``as_rows`` checks it, with the same messages.

    Adaptive batching predicts the rows of several requests in one call; a row that alone
    would be refused (a missing feature, a wrong width) could otherwise be predicted inside
    a batch -- a DataFrame of objects fills a missing feature with NaN, which a gradient-boosted
    model accepts. Each row is checked alone before it joins a batch.
    """
    if isinstance(data, dict):
        check_records([data], columns if checked is None else checked)
        missing = [c for c in columns or [] if c not in data]
        if missing:
            raise BadInputError(f"missing feature(s) {missing}; expected {columns}")
        return
    as_matrix(data, columns, width)


def as_rows(data: Any, columns: list[str] | None = None, checked: list[str] | None = None, width: int | None = None):
    """Rows for a model's predict: a DataFrame for objects or a model that knows its column names, else an array.

    In objects, the values of ``checked`` (default: every column) must be finite numbers;
    a registry model's string or boolean columns are left to its signature's enforcement.
    """
    import pandas as pd

    if is_records(data):
        records = [data] if isinstance(data, dict) else data
        check_records(records, columns if checked is None else checked)
        frame = pd.DataFrame(records)
        if columns:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise BadInputError(f"missing feature(s) {missing}; expected {columns}")
            frame = frame[columns]
        return frame
    array = as_matrix(data, columns, width)
    return pd.DataFrame(array, columns=columns) if columns else array


def to_json(prediction: Any) -> list:
    return np.asarray(prediction).tolist()
