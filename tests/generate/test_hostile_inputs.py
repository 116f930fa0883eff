"""Every field of both generators against hostile text: refused with exit 2 naming the field, or inert.

"Inert" is checked on the file's *bytes*, the way Python reads them: ``compile(data)``
honours an encoding declaration on line 1 or 2 (PEP 263), which a test parsing the
decoded text would never see. An inert file is ASCII, starts with the fixed header,
has exactly the syntax tree of a file made from harmless values (every literal
blanked), and holds the hostile value as a literal.
"""

from __future__ import annotations

import ast
import shlex

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from airflow_provider_somlier.generate.render import FIXED_HEADER

NOT_UTF8 = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")  # what Python makes of such bytes on argv
HOSTILE = {
    "double quote code": '"); import os; os.system("id"); ("',
    "single quote newline code": "x'\nimport os\n'",
    "jinja expression": "{{ 7*7 }}",
    "jinja block": "{% for x in range(9) %}",
    "backslashes": "a\\' \\\\ \\x41 \\N{BULLET}",
    "NUL": "a\x00b",
    "line separator": "a\u2028b\u2029c",
    "non-ASCII": "caf\u00e9 \U0001f600",
    "non-UTF-8 bytes": NOT_UTF8,
    "coding utf-7": "sh coding:utf-7 x+ACc-,__import__(+ACc-os+ACc-).system(+ACc-id+ACc-)",
    "coding ebcdic": "x coding=ebcdic",
    "vim fileencoding": "vim: set fileencoding=utf-7 :",
    "trailing newline": "date\n",
    "carriage return": "date\r",
    "10 KB": "a" * 10_240,
}
# Field-shaped variants: they pass a field's pattern, so only rendering can keep them inert.
SHAPED = {
    "image with coding tag": ("DOCKER_IMAGE", "gcr.io/p/coding:utf-7"),
    "dataset ref with coding project": ("DATASET_REF", "coding:ebcdic.cp.table"),
    "model name with coding": ("MODEL_REF", "coding utf-7@champion"),
    "entrypoint with quoted arguments": ("ENTRYPOINT", "sh -c 'echo \"$HOME\" {{ ds }}' 'a b'"),
}

OFFLINE_POSITIONALS = ["MODEL_REF", "DAG_ID", "SCHEDULE_INTERVAL", "DATASET_REF", "DATASET_LOAD_COLUMN",
                       "DESTINATION_TABLE_REF"]
OFFLINE = {
    "MODEL_REF": "boston-house-pricing/2", "DAG_ID": "inference_boston", "SCHEDULE_INTERVAL": "0 9 * * *",
    "DATASET_REF": "temp_serena.features", "DATASET_LOAD_COLUMN": "date", "DESTINATION_TABLE_REF": "temp_serena.result",
    "--start_date": "2026-11-22", "--dataset_load_window": "1", "--dataset_load_by_kst": "True",
    "--passthrough_columns": "id",
}
BATCH_POSITIONALS = ["DOCKER_IMAGE", "SCHEDULE", "ENTRYPOINT", "DAG_ID"]
BATCH = {
    "DOCKER_IMAGE": "gcr.io/p/sift:latest", "SCHEDULE": "0 0 * * *", "ENTRYPOINT": "sh -c predict.sh",
    "DAG_ID": "sift_batch", "--start_date": "2026-11-22", "--namespace": "batch", "--service_account": "runner",
    "--cpu": "500m", "--memory": "1Gi", "--env name": "MODE", "--env value": "daily",
}


def _argv(command: list[str], positionals: list[str], values: dict[str, str]) -> list[str]:
    argv = [*command, *(values[name] for name in positionals)]
    for name, value in values.items():
        if name.startswith("--") and not name.startswith("--env"):
            argv += [name, value]
    if "--env name" in values:
        argv += ["--env", f"{values['--env name']}={values['--env value']}"]
    return [*argv, "--dry_run", "--local_repo", "/unused"]


def _generate(argv: list[str]):
    return CliRunner().invoke(main, argv, env={"SOMLIER_CONFIG": "/nonexistent"}, catch_exceptions=False)


class _Blank(ast.NodeTransformer):
    """Every literal blanked, and lists of literals emptied (an entrypoint may split into more arguments)."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:  # noqa: N802
        return ast.Constant(value=None)

    def visit_List(self, node: ast.List) -> ast.List:  # noqa: N802
        if all(isinstance(e, ast.Constant) for e in node.elts):
            return ast.List(elts=[], ctx=node.ctx)
        return self.generic_visit(node)


def _shape(data: bytes) -> str:
    """What code the file runs, whatever the values: its syntax tree with every literal blanked."""
    return ast.dump(_Blank().visit(ast.parse(compile(data, "generated.py", "exec", ast.PyCF_ONLY_AST, dont_inherit=True))))


def _strings(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _expected_literals(field: str, value: str) -> set[str]:
    if field == "ENTRYPOINT":
        return set(shlex.split(value))
    if field == "--passthrough_columns":
        return {c.strip() for c in value.split(",") if c.strip()}
    return {value.strip(" ")}


def _check(command: list[str], positionals: list[str], defaults: dict[str, str], field: str, value: str) -> None:
    baseline = _generate(_argv(command, positionals, defaults))
    assert baseline.exit_code == 0, baseline.stderr
    done = _generate(_argv(command, positionals, {**defaults, field: value}))
    if done.exit_code != 0:
        assert done.exit_code == 2, done.stderr
        assert done.stderr.startswith("error: ") and field.split()[0].lower().lstrip("-") in done.stderr.lower(), done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
        assert len(done.stderr) < 1000, "a refused value is shown shortened"
        return
    data = done.stdout_bytes
    assert data.isascii()
    assert data.startswith(FIXED_HEADER.encode("ascii"))
    tree = compile(data, "generated.py", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    assert _expected_literals(field, value) <= _strings(tree)
    assert _shape(data) == _shape(baseline.stdout_bytes)


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("field", list(OFFLINE))
def test_offline_create_v2_refuses_or_renders_hostile_text_inert(field, value):
    _check(["offline", "create_v2"], OFFLINE_POSITIONALS, OFFLINE, field, value)


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("field", list(BATCH))
def test_batch_create_refuses_or_renders_hostile_text_inert(field, value):
    _check(["batch", "create"], BATCH_POSITIONALS, BATCH, field, value)


@pytest.mark.parametrize("field, value", SHAPED.values(), ids=SHAPED.keys())
def test_values_that_pass_a_fields_pattern_are_rendered_inert(field, value):
    command, positionals, defaults = (
        (["offline", "create_v2"], OFFLINE_POSITIONALS, OFFLINE) if field in OFFLINE
        else (["batch", "create"], BATCH_POSITIONALS, BATCH)
    )
    done = _generate(_argv(command, positionals, {**defaults, field: value}))
    assert done.exit_code == 0, done.stderr
    _check(command, positionals, defaults, field, value)


@pytest.mark.parametrize("field, value", [
    ("DAG_ID", "nl_dag\n"), ("--namespace", "batch\n"), ("--cpu", "500m\n"), ("--env name", "MODE\n"),
    ("DOCKER_IMAGE", "gcr.io/p/sift:latest\n"), ("--service_account", "runner\n"), ("--memory", "1Gi\n"),
])
def test_a_trailing_newline_is_refused_with_the_field_named(field, value):
    done = _generate(_argv(["batch", "create"], BATCH_POSITIONALS, {**BATCH, field: value}))
    assert done.exit_code == 2 and field.split()[0] in done.stderr and "'\\n'" in done.stderr


def test_a_trailing_newline_in_the_load_column_is_refused():
    done = _generate(_argv(["offline", "create_v2"], OFFLINE_POSITIONALS, {**OFFLINE, "DATASET_LOAD_COLUMN": "date\n"}))
    assert done.exit_code == 2 and "DATASET_LOAD_COLUMN 'date\\n' has '\\n' at position 4" in done.stderr


def test_non_utf8_bytes_name_the_field_and_the_byte():
    done = _generate(_argv(["batch", "create"], BATCH_POSITIONALS, {**BATCH, "--env value": NOT_UTF8}))
    assert done.exit_code == 2
    assert "--env MODE 'caf\\udce9 \\udcff' is not valid UTF-8 (byte 0xe9 at position 3)" in done.stderr


def test_an_unbalanced_airflow_template_in_an_argument_is_refused():
    done = _generate(_argv(["batch", "create"], BATCH_POSITIONALS, {**BATCH, "ENTRYPOINT": "echo '{{ ds'"}))
    assert done.exit_code == 2 and "ENTRYPOINT argument '{{ ds' is not a valid Airflow template" in done.stderr


TOKEN = "ghp_" + "Zx9" * 12


@pytest.mark.parametrize("command, positionals, defaults, field", [
    *((["offline", "create_v2"], OFFLINE_POSITIONALS, OFFLINE, f) for f in OFFLINE),
    *((["batch", "create"], BATCH_POSITIONALS, BATCH, f) for f in BATCH),
])
def test_a_github_token_is_never_written_into_a_dag_file(command, positionals, defaults, field):
    done = _generate(_argv(command, positionals, {**defaults, field: f"x {TOKEN}" if "--env" in field else TOKEN}))
    assert done.exit_code == 2 and field.split()[0].lower().lstrip("-") in done.stderr.lower(), done.stderr
    assert TOKEN not in done.stdout + done.stderr
