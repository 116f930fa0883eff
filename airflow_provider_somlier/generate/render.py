"""Render a DAG file from a Jinja template in ``dag_templates/``, values as Python literals.

Templates never see raw text where code goes: the ``py`` filter turns every value into
``repr`` of a plain Python object (str, int, bool, list, dict), so quotes, newlines or
``{{ }}`` in an input stay inside a string literal. Rendering is deterministic: the
same inputs give a byte-identical file.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2

from airflow_provider_somlier import __version__
from airflow_provider_somlier.generate.spec import BatchDagSpec, OfflineDagSpec

TEMPLATE_VERSION = "1"
_SAFE_LITERALS = (str, int, float, bool, type(None))


def templates_dir() -> Path:
    """``dag_templates/`` of a source checkout, or the copy installed with the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "dag_templates", here.parents[1] / "dag_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("dag_templates/ not found next to the package")


def _py(value: object) -> str:
    """A Python literal for ``value``; refuses anything but plain data."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, _SAFE_LITERALS):
        return repr(value)
    raise TypeError(f"refusing to render {type(value).__name__} into a DAG file")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["py"] = _py
    return env


def _header_command(argv: list[str]) -> str:
    """The command line for the file header, on one line, quoted for a shell."""
    return " ".join(shlex.quote(a) for a in argv).replace("\n", "\\n").replace("\r", "\\r")


def render_offline(spec: OfflineDagSpec, argv: list[str]) -> str:
    return _environment().get_template("offline_v2.py.j2").render(
        spec=spec, command=_header_command(argv), somlier_version=__version__, template_version=TEMPLATE_VERSION
    )


def render_batch(spec: BatchDagSpec, argv: list[str]) -> str:
    resources = {k: v for k, v in (("cpu", spec.cpu), ("memory", spec.memory)) if v}
    return _environment().get_template("batch_kpo.py.j2").render(
        spec=spec,
        pod_name=spec.dag_id.replace("_", "-").replace(".", "-").lower()[:63].strip("-") or "somlier-batch",
        resources=resources,
        env=dict(spec.env),
        command=_header_command(argv),
        somlier_version=__version__,
        template_version=TEMPLATE_VERSION,
    )
