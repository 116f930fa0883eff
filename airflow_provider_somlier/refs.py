"""Parse and validate model and table references: one place for every ref rule.

Refs arrive from DAG authors and CLI users as strings and end up inside SQL
(table refs) or registry calls (model refs). They are validated against strict
patterns instead of being escaped: a ref that passes can be back-quoted into SQL
safely, and a ref that fails names the offending part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_somlier.errors import InvalidRefError

# MLflow allows a broad set of characters in registered model names; we accept the
# ones people use (letters, digits, '-', '_', '.', ' ') and refuse '/', '@' and quotes.
_MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\- ]{0,255}"
_MODEL_REF = re.compile(
    rf"\A(?:models:/)?(?P<name>{_MODEL_NAME})(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))\Z"
)
_VERSION = re.compile(r"\A[1-9][0-9]{0,9}\Z")
_ALIAS = re.compile(r"\A[A-Za-z_][A-Za-z0-9_\-]{0,254}\Z")
# MLflow keeps these alias names for itself (``models:/name@latest``, ``@v3`` = version 3).
_RESERVED_ALIAS = re.compile(r"\A(?:latest|v[0-9]+)\Z", re.IGNORECASE)

# https://cloud.google.com/resource-manager/docs/creating-managing-projects (plus legacy
# domain-scoped "example.com:project"), dataset and table naming rules, kept conservative.
_PROJECT = r"(?:[a-z][a-z0-9.\-]{0,62}:)?[a-z][a-z0-9\-]{4,29}"
_DATASET = r"[A-Za-z0-9_]{1,1024}"
_TABLE = r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,1023}"
# \A…\Z, never ^…$: '$' also matches before a trailing newline, which would let
# "load_date\n" through to SQL text.
_TABLE_REF = re.compile(rf"\A(?:(?P<project>{_PROJECT})\.)?(?P<dataset>{_DATASET})\.(?P<table>{_TABLE})\Z")
_TABLE_NAME = re.compile(rf"\A{_TABLE}\Z")
_PROJECT_ID = re.compile(rf"\A{_PROJECT}\Z")
_COLUMN = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,299}\Z")


@dataclass(frozen=True)
class ModelRef:
    """A registered model and either a version number or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.alias}"

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias}"


@dataclass(frozen=True)
class TableRef:
    """A fully qualified BigQuery table, safe to back-quote into SQL."""

    project: str
    dataset: str
    table: str

    @property
    def table_id(self) -> str:
        """``project.dataset.table``, the form the BigQuery client takes."""
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql(self) -> str:
        """The back-quoted identifier for SQL text."""
        return f"`{self.table_id}`"

    @property
    def storage_path(self) -> str:
        """The resource name the BigQuery Storage Read API takes."""
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{self.table}"

    def sibling(self, table: str) -> TableRef:
        """A table in the same dataset (used for staging tables)."""
        return TableRef(self.project, self.dataset, validate_table_name(table))

    def __str__(self) -> str:
        return self.table_id


def parse_model_ref(ref: str) -> ModelRef:
    """Parse ``name/version``, ``name@alias``, ``models:/name/version`` or ``models:/name@alias``."""
    if not isinstance(ref, str):
        raise InvalidRefError(f"model_ref must be a string like 'name/3' or 'name@champion', got {ref!r}")
    match = _MODEL_REF.match(ref.strip())
    if not match:
        raise InvalidRefError(
            f"model_ref {ref!r} is malformed: expected 'name/VERSION', 'name@ALIAS', "
            "'models:/name/VERSION' or 'models:/name@ALIAS', the name of ASCII letters, digits, '_', '.', '-' "
            "or spaces (up to 256, starting with a letter or digit)"
        )
    name, version, alias = match["name"].strip(), match["version"], match["alias"]
    if version is not None and not _VERSION.match(version):
        raise InvalidRefError(f"model version {version!r} in model_ref {ref!r} is not a positive integer")
    if alias is not None and not _ALIAS.match(alias):
        raise InvalidRefError(
            f"model alias {alias!r} in model_ref {ref!r} is invalid: "
            "expected letters, digits, '_' or '-', starting with a letter or '_'"
        )
    return ModelRef(name=name, version=version, alias=alias)


def validate_model_name(name: object, *, field: str = "MODEL_NAME") -> str:
    """A registered model name as a user typed it, or :class:`InvalidRefError` naming it."""
    if not isinstance(name, str) or not re.fullmatch(_MODEL_NAME, name.strip()):
        raise InvalidRefError(
            f"{field} {name!r} is invalid: expected letters, digits, '-', '_', '.' or spaces, starting with a "
            "letter or digit, at most 256 characters"
        )
    return name.strip()


def validate_new_alias(alias: object, *, field: str = "--alias") -> str:
    """An alias a version can be given: the operator's alias pattern, and not one MLflow reserves."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidRefError(
            f"{field} {alias!r} is invalid: expected letters, digits, '_' or '-', starting with a letter or '_'"
        )
    if _RESERVED_ALIAS.match(alias):
        raise InvalidRefError(
            f"{field} {alias!r} is reserved by MLflow ('latest' and 'v' + a number name versions); "
            "choose another, e.g. 'champion'"
        )
    return alias


def parse_table_ref(ref: str, default_project: str | None = None, *, field: str = "table ref") -> TableRef:
    """Parse ``dataset.table`` or ``project.dataset.table``.

    ``default_project`` fills in a missing project (the seed's refs, such as
    ``temp_serena.boston_house_pricing_feature_set``, omit it).
    """
    if not isinstance(ref, str):
        raise InvalidRefError(f"{field} must be a string like 'dataset.table', got {ref!r}")
    match = _TABLE_REF.match(ref.strip().strip("`"))
    if not match:
        raise InvalidRefError(
            f"{field} {ref!r} is malformed: expected 'dataset.table' or 'project.dataset.table' "
            "made of letters, digits, '_' (and '-' in project and table names)"
        )
    project = match["project"] or default_project
    if not project:
        raise InvalidRefError(f"{field} {ref!r} has no project and the connection names none")
    if match["project"] is None and not (isinstance(project, str) and _PROJECT_ID.match(project)):
        raise InvalidRefError(f"project {project!r} for {field} {ref!r} is not a valid project id")
    return TableRef(project=project, dataset=match["dataset"], table=match["table"])


def validate_table_name(name: str) -> str:
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise InvalidRefError(f"table name {name!r} is not a valid BigQuery table name")
    return name


def validate_column_name(name: str, *, field: str = "column") -> str:
    """Column names go into SQL and row restrictions, so they must be plain identifiers."""
    if not isinstance(name, str) or not _COLUMN.match(name):
        raise InvalidRefError(
            f"{field} {name!r} is not a valid column name: expected letters, digits and '_', "
            "not starting with a digit"
        )
    return name


def column_list(value: object, *, field: str, rendered: bool = False) -> list[str] | str | None:
    """``value`` as a list of column names, or refused by name.

    A string is a list written the wrong way (``'age,bmi'`` would otherwise be read as the
    columns ``a``, ``g``, ``e``, ...), except a template (``'{{ params.ids }}'``) before it is
    rendered: that string is kept. Once ``rendered``, a string must hold a JSON or Python list
    of names, which is what a list parameter renders to without ``render_template_as_native_obj``.
    """
    from airflow_provider_somlier.errors import InvalidArgumentError

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        if not rendered and "{{" in value:
            return value
        if rendered:
            value = _list_literal(value, field)
        else:
            names = [part.strip() for part in value.split(",") if part.strip()]
            raise InvalidArgumentError(
                f"{field} must be a list of column names, got the string {value!r}; write {names!r}"
            )
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) for name in value):
        raise InvalidArgumentError(f"{field} must be a list of column names (strings), got {value!r}")
    return list(value)


def _list_literal(text: str, field: str) -> object:
    """The list a rendered template wrote: JSON (``["id"]``) or Python (``['id']``)."""
    import ast
    import json

    from airflow_provider_somlier.errors import InvalidArgumentError

    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(parsed, (list, tuple)):
            return parsed
    raise InvalidArgumentError(
        f"{field} rendered to {text!r}, which is not a list of column names; render a JSON or Python list "
        "(e.g. ['row_id']) or give the DAG render_template_as_native_obj=True"
    )
