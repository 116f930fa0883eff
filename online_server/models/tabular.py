"""Turn the JSON ``test`` value into a 2-D input and a prediction into JSON."""

from __future__ import annotations

from typing import Any

from online_server.models import BadInputError


def as_rows(data: Any, columns: list[str] | None = None):
    """One row (list of numbers or an object) or many rows → a DataFrame / 2-D array."""
    import numpy as np
    import pandas as pd

    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        frame = pd.DataFrame(data)
        if columns:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise BadInputError(f"missing feature(s) {missing}; expected {columns}")
            frame = frame[columns]
        return frame
    if isinstance(data, list) and data and not isinstance(data[0], list):
        data = [data]
    try:
        array = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise BadInputError("'test' must be numbers: a row, a list of rows, or objects of feature: value") from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise BadInputError(f"'test' must be a non-empty row or list of rows, got shape {list(array.shape)}")
    if columns:
        if array.shape[1] != len(columns):
            raise BadInputError(f"each row must have {len(columns)} values ({', '.join(columns)}), got {array.shape[1]}")
        return pd.DataFrame(array, columns=columns)
    return array


def to_json(prediction: Any) -> list:
    import numpy as np

    return np.asarray(prediction).tolist()
