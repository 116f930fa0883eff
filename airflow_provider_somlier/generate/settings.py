"""Where generated DAGs go, from the environment or a TOML config file.

Environment variables win over the file. File keys are the variable names without
the ``SOMLIER_`` prefix, in lower case (``dags_repo = "org/mlops-dags"``).

================================  =============================================
``SOMLIER_DAGS_REPO``             GitHub repository ``owner/name`` of the dags repo
``SOMLIER_DAGS_BASE_BRANCH``      base branch of pull requests (``main``)
``SOMLIER_DAGS_FOLDER``           folder of DAG files in that repository (``dags``)
``SOMLIER_GITHUB_BASE_URL``       GitHub Enterprise API URL (``https://api.github.com``)
``SOMLIER_LOCAL_DAGS_REPO``       publish into this local git work tree instead of GitHub
``SOMLIER_AIRFLOW_API_URL``       Airflow API server for ``--check_airflow``
``SOMLIER_AIRFLOW_USERNAME``      and its credentials (omit with all-admins auth)
``SOMLIER_AIRFLOW_PASSWORD``
``SOMLIER_CONFIG``                the TOML file (default ``~/.config/somlier/config.toml``)
================================  =============================================
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_somlier.errors import InvalidArgumentError

DEFAULT_CONFIG = Path("~/.config/somlier/config.toml")


@dataclass(frozen=True)
class Settings:
    dags_repo: str | None = None
    dags_base_branch: str = "main"
    dags_folder: str = "dags"
    github_base_url: str = "https://api.github.com"
    local_dags_repo: str | None = None
    airflow_api_url: str = "http://127.0.0.1:8080"
    airflow_username: str | None = None
    airflow_password: str | None = None
    check_airflow_timeout: float = 300.0

    @classmethod
    def load(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        path = Path(environ.get("SOMLIER_CONFIG", str(DEFAULT_CONFIG))).expanduser()
        values: dict[str, object] = {}
        if path.is_file():
            try:
                values.update(tomllib.loads(path.read_text()))
            except tomllib.TOMLDecodeError as exc:
                raise InvalidArgumentError(f"config file {path} is not valid TOML: {exc}") from None
        fields = cls.__dataclass_fields__
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise InvalidArgumentError(f"unknown key(s) {', '.join(unknown)} in {path}; known: {', '.join(fields)}")
        for name in fields:
            if f"SOMLIER_{name.upper()}" in environ:
                values[name] = environ[f"SOMLIER_{name.upper()}"]
        if "check_airflow_timeout" in values:
            try:
                values["check_airflow_timeout"] = float(values["check_airflow_timeout"])
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"check_airflow_timeout {values['check_airflow_timeout']!r} (SOMLIER_CHECK_AIRFLOW_TIMEOUT or "
                    f"{path}) is not a number of seconds"
                ) from None
        return cls(**values)
