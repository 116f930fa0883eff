"""Parameter grids from the seed's flag syntax.

``START..END..INCREMENT`` is a range that stops before END (the seed's
``0.001..0.005..0.001`` gives 0.001, 0.002, 0.003, 0.004); ``V1,V2`` is a list; anything
else is one value. Ranges are computed in decimal, so float steps do not drift
(``0.1..0.4..0.1`` is exactly 0.1, 0.2, 0.3).
"""

from __future__ import annotations

import itertools
import math
from decimal import ROUND_CEILING, Decimal, DecimalException, InvalidOperation, localcontext

from airflow_provider_somlier.errors import InvalidArgumentError

DEFAULT_MAX_COMBINATIONS = 256
RANGE_DIGITS = 100
"""Decimal digits a range is computed with: each value is START + i × INCREMENT, so a small
increment on a large START still moves (at Python's default 28 digits it would round away)."""


def _number(text: str, *, spec: str, name: str, part: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise InvalidArgumentError(
            f"--{name} {spec!r}: {part} {text!r} is not a finite number (expected START..END..INCREMENT)"
        )
    return value


def range_size(name: str, spec: str, start: Decimal, end: Decimal, step: Decimal) -> int:
    """How many values ``START..END..INCREMENT`` stands for, counted without listing them.

    A range is counted before it is expanded, so ``0..1e12..1`` is refused at once instead of
    holding a worker while a trillion values are listed. The increment must be above zero and
    the range must count up from START to below END.
    """
    if step <= 0:
        raise InvalidArgumentError(
            f"--{name} {spec!r}: INCREMENT {step} must be above 0 (ranges count up from START to below END)"
        )
    if start >= end:
        raise InvalidArgumentError(
            f"--{name} {spec!r} is empty: START {start} must be below END {end} (ranges count up, END excluded)"
        )
    try:
        with localcontext() as context:
            context.prec = RANGE_DIGITS
            return int(((end - start) / step).to_integral_value(rounding=ROUND_CEILING))
    except DecimalException:
        raise InvalidArgumentError(f"--{name} {spec!r} has too many values to count") from None


def _typed(value: Decimal | str) -> int | float | str:
    """A number when the text is a finite one; other text (``abc``, ``nan``, ``inf``) stays text.

    ``nan`` as a float would make the web server's answers invalid JSON, and ``inf`` has no int.
    """
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        if not number.is_finite():
            return value
        value = number
    return int(value) if value == value.to_integral_value() and "." not in str(value) and "E" not in str(value) else float(value)


def parse_values(name: str, spec: str, *, max_values: int | None = None) -> list[int | float | str]:
    """The values one flag stands for; a range of more than ``max_values`` is refused before it is listed."""
    spec = spec.strip()
    if not spec:
        raise InvalidArgumentError(f"--{name} has an empty value")
    if ".." in spec:
        parts = spec.split("..")
        if len(parts) != 3:
            raise InvalidArgumentError(f"--{name} {spec!r} is malformed: expected START..END..INCREMENT")
        start, end, step = (
            _number(text, spec=spec, name=name, part=part) for text, part in zip(parts, ("START", "END", "INCREMENT"))
        )
        size = range_size(name, spec, start, end, step)
        if max_values is not None and size > max_values:
            raise InvalidArgumentError(
                f"--{name} {spec!r} has {size} values, over the limit of {max_values} combinations "
                "(raise --max_combinations, or take a larger INCREMENT)"
            )
        with localcontext() as context:
            context.prec = RANGE_DIGITS
            return [_typed(start + step * index if index else start) for index in range(size)]
    if "," in spec:
        items = [item.strip() for item in spec.split(",")]
        if any(not item for item in items):
            raise InvalidArgumentError(f"--{name} {spec!r} has an empty item")
        return [_typed(item) for item in items]
    return [_typed(spec)]


def _axis(name: str, spec: object, max_values: int) -> list[int | float | str]:
    """One parameter's values from the seed's string syntax, a number, or a JSON list of scalars."""
    if isinstance(spec, bool):
        return [str(spec)]
    if isinstance(spec, float) and not math.isfinite(spec):
        raise InvalidArgumentError(f"{name}: {spec!r} is not a finite number")
    if isinstance(spec, (int, float)):
        return [spec]
    if isinstance(spec, str):
        return parse_values(name, spec, max_values=max_values)
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise InvalidArgumentError(f"{name}: the list of values is empty")
        values: list[int | float | str] = []
        for item in spec:
            if isinstance(item, bool) or not isinstance(item, (int, float, str)) or item == "":
                raise InvalidArgumentError(f"{name}: {item!r} in {spec!r} is not a number or a non-empty string")
            if isinstance(item, float) and not math.isfinite(item):
                raise InvalidArgumentError(f"{name}: {item!r} in {spec!r} is not a finite number")
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
    axes = [_axis(name, specs[name], max_combinations) for name in names]
    total = 1
    for axis in axes:
        total *= len(axis)
    if total > max_combinations:
        raise InvalidArgumentError(
            f"the grid has {total} combinations, over the limit of {max_combinations} (raise --max_combinations)"
        )
    return [dict(zip(names, combination)) for combination in itertools.product(*axes)]
