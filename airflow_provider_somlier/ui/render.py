"""HTML from the pages' data: Jinja templates shipped in the package, autoescaped, charts inline."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    from airflow_provider_somlier.ui import svg

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = svg.number
    env.filters["percent"] = lambda value: "–" if value is None else f"{value:.1%}"
    env.globals["svg"] = svg
    return env


def page(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context``; chart SVG is passed in as markup."""
    return _environment().get_template(template).render(**context)
