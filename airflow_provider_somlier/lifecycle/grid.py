"""Parameter grids from the seed's flag syntax.

``START..END..INCREMENT`` is a range that stops before END (the seed's
``0.001..0.005..0.001`` gives 0.001, 0.002, 0.003, 0.004); ``V1,V2`` is a list; anything
else is one value. Ranges are computed in decimal, so float steps do not drift
(``0.1..0.4..0.1`` is exactly 0.1, 0.2, 0.3).
"""

from __future__ import annotations

import itertools
from decimal import Decimal, InvalidOperation

from airflow_provider_somlier.errors import InvalidArgumentError

DEFAULT_MAX_COMBINATIONS = 256


def _number(text: str, *, spec: str, name: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InvalidArgumentError(f"--{name} {spec!r}: {text!r} is not a number (expected START..END..INCREMENT)") from None


def _typed(value: Decimal | str) -> int | float | str:
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return value
    return int(value) if value == value.to_integral_value() and "." not in str(value) and "E" not in str(value) else float(value)


def parse_values(name: str, spec: str) -> list[int | float | str]:
    """The values one flag stands for."""
    spec = spec.strip()
    if not spec:
        raise InvalidArgumentError(f"--{name} has an empty value")
    if ".." in spec:
        parts = spec.split("..")
        if len(parts) != 3:
            raise InvalidArgumentError(f"--{name} {spec!r} is malformed: expected START..END..INCREMENT")
        start, end, step = (_number(p, spec=spec, name=name) for p in parts)
        if step <= 0:
            raise InvalidArgumentError(f"--{name} {spec!r}: INCREMENT must be > 0")
        values, current = [], start
        while current < end:
            values.append(_typed(current))
            current += step
        if not values:
            raise InvalidArgumentError(f"--{name} {spec!r} is empty: START must be below END")
        return values
    if "," in spec:
        items = [item.strip() for item in spec.split(",")]
        if any(not item for item in items):
            raise InvalidArgumentError(f"--{name} {spec!r} has an empty item")
        return [_typed(item) for item in items]
    return [_typed(spec)]


def _axis(name: str, spec: object) -> list[int | float | str]:
    """One parameter's values from the seed's string syntax, a number, or a JSON list of scalars."""
    if isinstance(spec, bool):
        return [str(spec)]
    if isinstance(spec, (int, float)):
        return [spec]
    if isinstance(spec, str):
        return parse_values(name, spec)
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise InvalidArgumentError(f"{name}: the list of values is empty")
        values: list[int | float | str] = []
        for item in spec:
            if isinstance(item, bool) or not isinstance(item, (int, float, str)) or item == "":
                raise InvalidArgumentError(f"{name}: {item!r} in {spec!r} is not a number or a non-empty string")
            values.append(item if isinstance(item, (int, float)) else _typed(item.strip()))
        return values
    raise InvalidArgumentError(f"{name} must be a string, a number or a list of values, got {spec!r}")


def expand_grid(specs: dict[str, object], *, max_combinations: int = DEFAULT_MAX_COMBINATIONS) -> list[dict[str, object]]:
    """Every combination of the parameters' values, in a stable order.

    A value is the seed's string syntax (``"0.1..0.4..0.1"``, ``"64,128"``, ``"3"``), a
    number, or a list of values (``[0.1, 0.2]``, as a JSON run conf gives it).
    """
    if not specs:
        raise InvalidArgumentError("the parameter grid is empty: pass at least one --PARAM VALUE")
    names = sorted(specs)
    axes = [_axis(name, specs[name]) for name in names]
    total = 1
    for axis in axes:
        total *= len(axis)
    if total > max_combinations:
        raise InvalidArgumentError(
            f"the grid has {total} combinations, over the limit of {max_combinations} (raise --max_combinations)"
        )
    return [dict(zip(names, combination)) for combination in itertools.product(*axes)]
