"""``somlier.yaml``: the project's docker, python, model and entrypoint settings, schema-checked.

Unknown keys are errors that name the key and where it is, so a typo does not silently
drop a setting.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from airflow_provider_somlier.errors import InvalidArgumentError

BANNER = r"""
   _____       __  _____    _
  / ___/____  /  |/  / /   (_)__  _____
  \__ \/ __ \/ /|_/ / /   / / _ \/ ___/
 ___/ / /_/ / /  / / /___/ /  __/ /
/____/\____/_/  /_/_____/_/\___/_/
"""

# key → (type, nested schema or None)
SCHEMA: dict[str, Any] = {
    "project": {
        "docker": {"env": list, "name": str, "tags": list, "volumes": list},
        "name": str,
        "python": {"requirements_txt": str, "version": str},
    },
    "model": {"assets": list, "config": dict, "name": str, "tags": list, "version": str},
    "entrypoint": dict,  # name → {"command": str, "args": list}
}
ENTRYPOINT = {"command": str, "args": list}


def _check(value: Any, schema: Any, where: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{where or 'somlier.yaml'} must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in schema:
                raise InvalidArgumentError(
                    f"unknown key {key!r} in {where or 'somlier.yaml'}; expected one of {', '.join(schema)}"
                )
            _check(value[key], schema[key], f"{where}.{key}" if where else key)
    elif not isinstance(value, schema):
        raise InvalidArgumentError(f"{where} must be a {schema.__name__}, got {type(value).__name__} {value!r}")


def _read_text(path: Path, what: str = "") -> str:
    """The file as UTF-8 text; a file that cannot be read or is not UTF-8 is named, not a traceback.

    ``what`` names the setting the path came from (``project.python.requirements_txt``).
    """
    label = f"{what} ({path})" if what else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"{label} cannot be read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"{label} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        ) from None


def _check_entrypoint(name: Any, entry: Any) -> None:
    """An entrypoint's name is text, its command a program, its args numbers or text.

    YAML reads ``1:``, ``yes:`` or ``true`` as a number or a boolean, which would otherwise be
    passed on as Python's spelling (``True``, ``None``, ``{'a': 1}``): refused, asking for quotes.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"entrypoint name {name!r} ({type(name).__name__}) is not text: quote it in somlier.yaml ('{name}':)"
        )
    where = f"entrypoint.{name}"
    _check(entry, ENTRYPOINT, where)
    if "command" not in entry:
        raise InvalidArgumentError(f"{where} has no command")
    command_argv(name, entry)
    for index, arg in enumerate(entry.get("args", [])):
        if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            if isinstance(arg, bool):
                problem = f"is the boolean {str(arg).lower()}: quote it ('{str(arg).lower()}') to pass text"
            else:
                shown = "null" if arg is None else f"{type(arg).__name__} {arg!r}"
                problem = f"is {shown}: expected text or a number"
            raise InvalidArgumentError(f"{where}.args[{index}] {problem}")
        if isinstance(arg, str) and "\0" in arg:
            raise InvalidArgumentError(f"{where}.args[{index}] {arg!r} holds a NUL character, which no program accepts")


def command_argv(name: str, entry: dict[str, Any]) -> list[str]:
    """The entrypoint's command split as a shell would (``python train.py`` is python with one argument).

    ``command`` is most often written as the whole command line, so it is split with shell rules
    (quotes keep spaces: ``"'my tool' --fast"``); no shell runs it, so ``|``, ``>`` or ``$VAR`` are
    plain arguments. ``args`` are appended after it.
    """
    where = f"entrypoint.{name}.command"
    command = entry["command"]
    if "\0" in command:
        raise InvalidArgumentError(f"{where} {command!r} holds a NUL character, which no program accepts")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidArgumentError(f"{where} {command!r} cannot be split as a command line: {exc}") from None
    if not argv:
        raise InvalidArgumentError(f"{where} is empty: expected a program, e.g. 'python train.py' or 'bash'")
    return argv


def load_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise InvalidArgumentError(f"{path} not found: run the command in the project folder holding somlier.yaml")
    try:
        data = yaml.safe_load(_read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{path} is not valid YAML: {exc}") from None
    _check(data, SCHEMA, "")
    for name, entry in (data.get("entrypoint") or {}).items():
        _check_entrypoint(name, entry)
    return data


def describe(path: Path, data: dict[str, Any], dependencies: bool) -> str:
    project, model = data.get("project", {}), data.get("model", {})
    docker, python = project.get("docker", {}), project.get("python", {})
    lines = [BANNER, f"SoMLier YAML: [{path}]"]
    if dependencies:
        requirements = path.parent / python.get("requirements_txt", "requirements.txt")
        lines.append("-------- dependencies --------")
        if requirements.is_file():
            where = f"project.python.requirements_txt {python.get('requirements_txt', 'requirements.txt')!r}"
            text = _read_text(requirements, where)
            lines += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        else:
            lines.append(f"(no {requirements.name})")
        lines.append("------------------------------")
        return "\n".join(lines)
    lines += [
        f"Model Name: {model.get('name', '')}",
        f"Model Version: {model.get('version', '')}",
        f"Model Tag: {model.get('tags', [])}",
        f"Model Assets: {model.get('assets', [])}",
        f"Python Version: {python.get('version', '')}",
        f"Docker Image Name: {docker.get('name', '')}:{docker.get('tags', [])}",
    ]
    return "\n".join(lines)


def run_entrypoint(path: Path, data: dict[str, Any], name: str) -> tuple[int, str]:
    """Run an entrypoint in the project folder; return its exit code and the JSON result line.

    The entrypoint's output is decoded as UTF-8 with undecodable bytes written as ``\\xff``,
    so any output gives a result line; the line is ASCII JSON, printable on any terminal.
    """
    entrypoints = data.get("entrypoint") or {}
    if name not in entrypoints:
        defined = ", ".join(str(key) for key in entrypoints) or "none"
        raise InvalidArgumentError(f"entrypoint {name!r} is not in {path}; defined: {defined}")
    entry = entrypoints[name]
    command = [*command_argv(name, entry), *map(str, entry.get("args", []))]
    try:
        done = subprocess.run(command, cwd=path.parent, capture_output=True)
    except OSError as exc:  # not found, not executable, not a program (no #! line)
        raise InvalidArgumentError(
            f"entrypoint.{name}.command {entry['command']!r}: cannot run {command[0]!r} in {path.parent}: "
            f"{exc.strerror or exc} (expected a program on PATH or a path from the project folder)"
        ) from None
    result = {"name": name, "command": command, "returncode": done.returncode,
              "stdout": done.stdout.decode("utf-8", "backslashreplace"),
              "stderr": done.stderr.decode("utf-8", "backslashreplace"), "timestamp": dt.datetime.now().isoformat()}
    return done.returncode, json.dumps(result)
