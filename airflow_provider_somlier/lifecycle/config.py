"""``somlier.yaml``: the project's docker, python, model and entrypoint settings, schema-checked.

Unknown keys are errors that name the key and where it is, so a typo does not silently
drop a setting.
"""

from __future__ import annotations

import datetime as dt
import json
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


def load_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise InvalidArgumentError(f"{path} not found: run the command in the project folder holding somlier.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"{path} is not valid YAML: {exc}") from None
    _check(data, SCHEMA, "")
    for name, entry in (data.get("entrypoint") or {}).items():
        _check(entry, ENTRYPOINT, f"entrypoint.{name}")
        if "command" not in entry:
            raise InvalidArgumentError(f"entrypoint.{name} has no command")
    return data


def describe(path: Path, data: dict[str, Any], dependencies: bool) -> str:
    project, model = data.get("project", {}), data.get("model", {})
    docker, python = project.get("docker", {}), project.get("python", {})
    lines = [BANNER, f"SoMLier YAML: [{path}]"]
    if dependencies:
        requirements = path.parent / python.get("requirements_txt", "requirements.txt")
        lines.append("-------- dependencies --------")
        if requirements.is_file():
            lines += [line.strip() for line in requirements.read_text().splitlines() if line.strip() and not line.startswith("#")]
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
    """Run an entrypoint in the project folder; return its exit code and the JSON result line."""
    entrypoints = data.get("entrypoint") or {}
    if name not in entrypoints:
        raise InvalidArgumentError(f"entrypoint {name!r} is not in {path}; defined: {', '.join(entrypoints) or 'none'}")
    command = [entrypoints[name]["command"], *map(str, entrypoints[name].get("args", []))]
    done = subprocess.run(command, cwd=path.parent, capture_output=True, text=True)
    result = {"name": name, "command": command, "returncode": done.returncode, "stdout": done.stdout,
              "stderr": done.stderr, "timestamp": dt.datetime.now().isoformat()}
    return done.returncode, json.dumps(result, ensure_ascii=False)
