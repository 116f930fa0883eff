"""Turn the JSON ``test`` value into a 2-D input and a prediction into JSON."""

from __future__ import annotations

from typing import Any

from online_server.models import BadInputError


def is_records(data: Any) -> bool:
    """One object of feature: value, or a non-empty list of them."""
    return isinstance(data, dict) or (isinstance(data, list) and bool(data) and all(isinstance(r, dict) for r in data))


def as_matrix(data: Any, columns: list[str] | None = None, width: int | None = None):
    """A row or a list of rows of numbers → a finite 2-D float array of the model's width.

    ``width`` defaults to ``len(columns)``; the checks here are the ones a model's own
    predict would make, with messages that name what the request got wrong.
    """
    import numpy as np

    if isinstance(data, list) and data and not isinstance(data[0], list):
        data = [data]
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise BadInputError("'test' must be numbers: a row, a list of rows, or objects of feature: value") from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise BadInputError(f"'test' must be a non-empty row or list of rows, got shape {list(array.shape)}")
    width = len(columns) if columns and width is None else width
    if width is not None and array.shape[1] != width:
        names = f" ({', '.join(columns)})" if columns else ""
        raise BadInputError(f"each row must have {width} values{names}, got {array.shape[1]}")
    if not np.isfinite(array).all():
        raise BadInputError("'test' holds NaN or infinity; every value must be a finite number")
    return array


def as_rows(data: Any, columns: list[str] | None = None):
    """Rows for a model's predict: a DataFrame for objects or a model that knows its column names, else an array."""
    import pandas as pd

    if is_records(data):
        frame = pd.DataFrame([data] if isinstance(data, dict) else data)
        if columns:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise BadInputError(f"missing feature(s) {missing}; expected {columns}")
            frame = frame[columns]
        return frame
    array = as_matrix(data, columns)
    return pd.DataFrame(array, columns=columns) if columns else array


def to_json(prediction: Any) -> list:
    import numpy as np

    return np.asarray(prediction).tolist()
