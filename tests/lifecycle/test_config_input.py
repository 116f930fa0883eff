"""`somlier config show|run` on somlier.yaml files users really write: each mistake named (exit 2), never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from airflow_provider_somlier.cli import main


def somlier(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.sh").write_text('echo trained "$@"\n')
    return tmp_path


def test_a_command_line_in_command_is_split_as_a_shell_would(folder):
    (folder / "somlier.yaml").write_text(
        "entrypoint:\n  main: {command: bash train.sh --alpha, args: [0.5, 3, \"it's\"]}\n"
    )
    code, out, err = somlier("config", "run", "main")
    result = json.loads(out)
    assert code == 0, err
    assert result["command"] == ["bash", "train.sh", "--alpha", "0.5", "3", "it's"]
    assert result["stdout"] == "trained --alpha 0.5 3 it's\n"


def test_output_that_is_not_utf8_still_gives_the_json_result_line(folder):
    (folder / "somlier.yaml").write_text(
        "entrypoint:\n  main: {command: printf, args: ['\\377\\376ok']}\n"
        "  fails: {command: bash, args: ['-c', \"printf '\\\\377' >&2; exit 4\"]}\n"
    )
    code, out, err = somlier("config", "run", "main")
    assert code == 0 and json.loads(out)["stdout"] == "\\xff\\xfeok", err
    code, out, _ = somlier("config", "run", "fails")
    result = json.loads(out)
    assert code == 1 and result["returncode"] == 4 and result["stderr"] == "\\xff"


@pytest.mark.parametrize("yaml_text, message", [
    ("entrypoint: {main: {command: no-such-program train.py}}\n",
     "entrypoint.main.command 'no-such-program train.py': cannot run 'no-such-program'"),
    ("entrypoint: {main: {command: ./train.sh}}\n", "cannot run './train.sh'"),  # not executable
    ("entrypoint: {main: {command: ''}}\n", "entrypoint.main.command is empty"),
    ("entrypoint: {main: {command: '  '}}\n", "entrypoint.main.command is empty"),
    ("entrypoint: {main: {command: 'echo \"a b'}}\n", "cannot be split as a command line"),
    ("entrypoint: {1: {command: bash}}\n", "entrypoint name 1 (int) is not text: quote it"),
    ("entrypoint: {main: {command: echo, args: [true]}}\n", "entrypoint.main.args[0] is the boolean true: quote it"),
    ("entrypoint: {main: {command: echo, args: [x, null]}}\n", "entrypoint.main.args[1] is null"),
    ("entrypoint: {main: {command: echo, args: [{a: 1}]}}\n", "entrypoint.main.args[0] is dict {'a': 1}"),
    ("entrypoint: {main: {command: echo, args: [2021-01-01]}}\n", "entrypoint.main.args[0] is date"),
    ("entrypoint: {main: {command: echo, args: [\"a\\0b\"]}}\n", "holds a NUL character"),
])
def test_a_bad_entrypoint_is_named_with_exit_2(folder, yaml_text, message):
    (folder / "somlier.yaml").write_text(yaml_text)
    code, out, err = somlier("config", "run", "main")
    assert (code, out) == (2, "") and message in err and "Traceback" not in err, err


def test_an_unknown_entrypoint_is_named_beside_a_quoted_number(folder):
    (folder / "somlier.yaml").write_text("entrypoint: {'1': {command: bash}, main: {command: bash}}\n")
    code, _, err = somlier("config", "run", "train")
    assert code == 2 and "defined: 1, main" in err


def test_a_somlier_yaml_that_is_not_utf8_is_named(folder):
    (folder / "somlier.yaml").write_bytes(b"model: {name: caf\xe9}\n")
    code, _, err = somlier("config", "show")
    assert code == 2 and "is not UTF-8 text: byte 0xe9 at offset 17" in err and "Traceback" not in err


def test_a_binary_requirements_file_is_named(folder):
    (folder / "somlier.yaml").write_text("project: {python: {requirements_txt: model.bin}}\n")
    (folder / "model.bin").write_bytes(b"\x80\x04\x95")
    code, _, err = somlier("config", "show", "-d")
    assert code == 2 and "project.python.requirements_txt 'model.bin'" in err and "byte 0x80 at offset 0" in err
