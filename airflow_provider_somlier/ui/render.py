"""HTML from the pages' data: Jinja templates shipped in the package, autoescaped, charts inline."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


def figure(value: Any) -> str:
    """A check's figure or threshold as people read it: numbers to 6 significant digits, lists in brackets."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(figure(v) for v in value) + "]"
    return str(value)


def when(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM UTC`` (the JSON keeps the full value)."""
    import datetime as dt

    if not value:
        return "–"
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    from airflow_provider_somlier.ui import svg

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = svg.number
    env.filters["percent"] = lambda value: "–" if value is None else f"{value:.1%}"
    env.filters["figure"] = figure
    env.filters["when"] = when
    env.globals["svg"] = svg
    return env


def page(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``; chart SVG is passed in as markup."""
    return _environment().get_template(template).render(**context)
