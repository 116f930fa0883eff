"""The header of a generated file: fixed first lines, and a command that re-runs to the same file."""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main
from airflow_provider_somlier.generate.render import FIXED_HEADER, header_command, shell_quote

ENV = {"SOMLIER_CONFIG": "/nonexistent"}
TRICKY_ARGS = [
    "plain", "two words", "it's", 'say "hi"', "$HOME `id` $(id)", "back\\slash", "new\nline", "tab\there",
    "caf\u00e9", "\U0001f600", "a\u2028b", "", "-", "--flag", "{{ ds }}", "x\x1b[31m",
]


def _argv_from_header(command: str) -> list[str]:
    """What a shell makes of the header's command: bash prints each argument NUL-terminated."""
    assert command.startswith("somlier ")
    done = subprocess.run(
        ["bash", "-c", "printf '%s\\0' " + command.removeprefix("somlier ")], capture_output=True, check=True, env={}
    )
    return [a.decode("utf-8") for a in done.stdout.split(b"\0")[:-1]]


def _header(source: str) -> str:
    line = source.splitlines()[3]
    assert line.startswith("#   somlier ")
    return line.removeprefix("#   ")


def test_shell_quoting_reads_back_to_the_same_arguments_in_bash():
    command = header_command(["somlier", *TRICKY_ARGS])
    assert command.isascii() and command.isprintable()
    assert _argv_from_header(command) == TRICKY_ARGS


def test_a_non_ascii_argument_is_quoted_as_utf8_bytes():
    assert shell_quote("caf\u00e9's") == "$'caf\\xc3\\xa9\\'s'"


@pytest.mark.parametrize("argv", [
    ["batch", "create", "gcr.io/p/sift:latest", "0 0 * * *",
     "sh -c 'echo \"caf\u00e9\" $HOME\n{{ ds }}' 'two words' back\\\\slash", "sift",
     "--env", "GREETING=hello\u2028world 'quoted'", "--env", "EMPTY=", "--cpu", "500m"],
    ["offline", "create_v2", "my model@champion", "inference.x", "@daily", "coding:ebcdic.cp.table", "load_date",
     "results.predictions", "ghp_notprinted1", "--passthrough_columns", "id, user_id"],
    ["offline", "create_v2", "churn@champion", "churn_daily", "@daily", "features.daily", "load_date",
     "results.churn", "-", "--quality_checks", '{"max_psi": 0.2, "prediction_range": [0, 1], "row_count_factor": null}',
     "--baseline", "training", "--on_quality_failure", "warn"],
], ids=["batch", "offline", "offline_quality"])
def test_running_the_header_command_again_reproduces_the_file_byte_for_byte(argv):
    first = CliRunner().invoke(main, [*argv, "--start_date", "2026-11-22", "--dry_run"], env=ENV)
    assert first.exit_code == 0, first.stderr
    again_argv = _argv_from_header(_header(first.stdout))
    again = CliRunner().invoke(main, [*again_argv, "--dry_run"], env=ENV)
    assert again.exit_code == 0, again.stderr
    assert again.stdout_bytes == first.stdout_bytes


@pytest.mark.parametrize("template", ["offline_v2.py.j2", "batch_kpo.py.j2"])
def test_both_templates_start_with_the_fixed_header(template):
    from airflow_provider_somlier.generate.render import templates_dir

    text = (templates_dir() / template).read_text()
    assert text.split("-#}\n", 1)[1].startswith(FIXED_HEADER)


def test_the_fixed_header_cannot_declare_an_encoding():
    import re

    # PEP 263's pattern, applied to the only two lines Python looks at
    for line in FIXED_HEADER.splitlines():
        assert not re.match(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line)


def test_the_utf7_header_attack_is_inert_through_the_real_lint_and_commit(tmp_path):
    """The attack from the field: an entrypoint argument that made line 1 a UTF-7 declaration."""
    marker = tmp_path / "pwned"
    repo = tmp_path / "dags-repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    entrypoint = f"sh coding:utf-7 x+ACc-,__import__(+ACc-os+ACc-).system(+ACc-touch {marker}+ACc-)"
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_somlier.cli", "batch", "create", "gcr.io/p/coding:utf-7", "@daily",
         entrypoint, "utf7_attack", "--start_date", "2026-11-22", "--local_repo", str(repo)],
        capture_output=True, text=True, env={**_environ(), **ENV}, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    data = (repo / "dags" / "utf7_attack.py").read_bytes()
    assert data.isascii() and data.startswith(FIXED_HEADER.encode())
    tree = compile(data, "utf7_attack.py", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    arguments = next(k.value for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "arguments")
    assert ast.literal_eval(arguments) == shlex.split(entrypoint)[1:]


def _environ() -> dict:
    import os

    return dict(os.environ)


def test_a_non_utf8_byte_on_the_real_command_line_exits_2_naming_the_field():
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_somlier.cli", "batch", "create", "gcr.io/p/sift:latest", "@daily",
         b"sh -c \xff", "sift", "--dry_run"],
        capture_output=True, env={**_environ(), **ENV, "LC_ALL": "C.UTF-8"}, timeout=600,
    )
    assert done.returncode == 2
    assert b"error: ENTRYPOINT 'sh -c \\udcff' is not valid UTF-8 (byte 0xff at position 6)" in done.stderr
    assert b"Traceback" not in done.stderr and done.stdout == b""


def test_golden_files_are_ascii_with_the_fixed_header():
    for path in (Path(__file__).parent / "golden").glob("*.py"):
        data = path.read_bytes()
        assert data.isascii() and data.startswith(FIXED_HEADER.encode())
        compile(data, path.name, "exec", dont_inherit=True)


def test_an_encoding_lookalike_dataset_ref_still_lints_and_commits(tmp_path):
    """A domain-scoped project `coding:ebcdic` once made a create_v2 file unparseable."""
    repo = tmp_path / "dags-repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    done = CliRunner().invoke(
        main,
        ["offline", "create_v2", "coding utf-7@champion", "ebcdic_dag", "@daily", "coding:ebcdic.cp.table", "date",
         "results.predictions", "--start_date", "2026-11-22", "--local_repo", str(repo)],
        env=ENV,
    )
    assert done.exit_code == 0, done.stderr
    data = (repo / "dags" / "ebcdic_dag.py").read_bytes()
    tree = compile(data, "ebcdic_dag.py", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    keywords = {k.arg: k.value for k in ast.walk(tree) if isinstance(k, ast.keyword)}
    assert ast.literal_eval(keywords["dataset_ref"]) == "coding:ebcdic.cp.table"
    assert ast.literal_eval(keywords["model_ref"]) == "coding utf-7@champion"


def test_quality_flags_reach_the_operator_as_literals():
    done = CliRunner().invoke(main, [
        "offline", "create_v2", "churn@champion", "churn_daily", "@daily", "features.daily", "load_date",
        "results.churn", "-", "--start_date", "2026-11-22", "--dry_run",
        "--quality_checks", '{"max_psi": 0.2, "prediction_range": [0, 1.5]}', "--baseline", "previous_days:14",
    ], env=ENV)
    assert done.exit_code == 0, done.stderr
    assert "quality_checks={'max_psi': 0.2, 'prediction_range': [0, 1.5]}," in done.stdout
    assert "baseline='previous_days:14'," in done.stdout and "on_quality_failure" not in done.stdout
    assert "null_features" not in done.stdout  # left out: the operator's default
    ast.parse(done.stdout)


def test_null_features_reaches_the_operator_and_the_regeneration_command():
    done = CliRunner().invoke(main, [
        "offline", "create_v2", "churn@champion", "churn_daily", "@daily", "features.daily", "load_date",
        "results.churn", "-", "--start_date", "2026-11-22", "--dry_run", "--null_features", "pass",
    ], env=ENV)
    assert done.exit_code == 0, done.stderr
    assert "        null_features='pass',\n" in done.stdout and "--null_features pass" in done.stdout
    ast.parse(done.stdout)
