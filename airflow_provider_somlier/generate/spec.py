"""The inputs of a generated DAG, validated before anything is rendered.

Each check names the field and the offending value. Values that pass are still
rendered as Python literals (see ``render.py``): validation keeps mistakes out,
literal rendering keeps code out.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field

from airflow_provider_somlier.errors import InvalidArgumentError
from airflow_provider_somlier.refs import parse_model_ref, parse_table_ref, validate_column_name
from airflow_provider_somlier.window import parse_bool, parse_window

DAG_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,249}$")
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@continuous")
# registry/path:tag or @sha256:digest, as docker reference grammar allows (lower-case path components)
IMAGE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.\-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:[._\-]{1,2}[a-z0-9]+)*(?:/[a-z0-9]+(?:[._\-]{1,2}[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


def validate_dag_id(dag_id: str) -> str:
    if not isinstance(dag_id, str) or not DAG_ID.match(dag_id):
        raise InvalidArgumentError(
            f"DAG_ID {dag_id!r} is invalid: expected letters, digits, '_', '-' or '.', at most 250 characters"
        )
    return dag_id


def validate_schedule(schedule: str) -> str:
    """A cron expression (5 fields) or one of Airflow's presets."""
    text = schedule.strip() if isinstance(schedule, str) else ""
    if text in SCHEDULE_PRESETS:
        return text
    from croniter import croniter

    if len(text.split()) == 5 and croniter.is_valid(text):
        return text
    raise InvalidArgumentError(
        f"SCHEDULE {schedule!r} is invalid: expected a 5-field cron expression such as '0 9 * * *' "
        f"or one of {', '.join(SCHEDULE_PRESETS)}"
    )


def validate_date(value: str | dt.date, *, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgumentError(f"{field} {value!r} is not a date: expected YYYY-MM-DD") from None


@dataclass(frozen=True)
class OfflineDagSpec:
    """``somlier offline create_v2``: one MLOpsOfflineOperator task on a schedule."""

    model_ref: str
    dag_id: str
    schedule: str
    dataset_ref: str
    dataset_load_column: str
    destination_table_ref: str
    start_date: dt.date
    dataset_load_window: int = 1
    dataset_load_by_kst: bool = True
    passthrough_columns: tuple[str, ...] = ()

    @classmethod
    def validated(cls, **values: object) -> OfflineDagSpec:
        parse_model_ref(values["model_ref"])
        # Refs without a project are fine here: the connection supplies it at run time.
        parse_table_ref(values["dataset_ref"], "placeholder-project", field="DATASET_REF")
        parse_table_ref(values["destination_table_ref"], "placeholder-project", field="DESTINATION_TABLE_REF")
        return cls(
            model_ref=str(values["model_ref"]).strip(),
            dag_id=validate_dag_id(values["dag_id"]),
            schedule=validate_schedule(values["schedule"]),
            dataset_ref=str(values["dataset_ref"]).strip(),
            dataset_load_column=validate_column_name(values["dataset_load_column"], field="DATASET_LOAD_COLUMN"),
            destination_table_ref=str(values["destination_table_ref"]).strip(),
            start_date=validate_date(values["start_date"], field="START_DATE"),
            dataset_load_window=parse_window(values.get("dataset_load_window", 1)),
            dataset_load_by_kst=parse_bool(values.get("dataset_load_by_kst", True), field="DATASET_LOAD_BY_KST"),
            passthrough_columns=tuple(
                validate_column_name(c, field="passthrough column") for c in values.get("passthrough_columns") or ()
            ),
        )


@dataclass(frozen=True)
class BatchDagSpec:
    """``somlier batch create``: one KubernetesPodOperator running an image's entrypoint."""

    docker_image: str
    schedule: str
    entrypoint: tuple[str, ...]
    dag_id: str
    start_date: dt.date
    namespace: str = "default"
    service_account: str | None = None
    cpu: str | None = None
    memory: str | None = None
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def validated(cls, **values: object) -> BatchDagSpec:
        image = str(values["docker_image"]).strip()
        if not IMAGE.match(image):
            raise InvalidArgumentError(
                f"DOCKER_IMAGE {values['docker_image']!r} is not an image reference: expected "
                "[registry/]name[:tag][@sha256:digest], e.g. gcr.io/project/sift:latest"
            )
        try:
            entrypoint = tuple(shlex.split(str(values["entrypoint"])))
        except ValueError as exc:
            raise InvalidArgumentError(f"ENTRYPOINT {values['entrypoint']!r} cannot be split: {exc}") from None
        if not entrypoint:
            raise InvalidArgumentError("ENTRYPOINT is empty: expected a command such as 'sh -c predict.sh'")
        namespace = str(values.get("namespace") or "default")
        if not K8S_NAME.match(namespace):
            raise InvalidArgumentError(f"namespace {namespace!r} is not a Kubernetes name")
        service_account = values.get("service_account")
        if service_account is not None and not K8S_NAME.match(str(service_account)):
            raise InvalidArgumentError(f"service_account {service_account!r} is not a Kubernetes name")
        for name in ("cpu", "memory"):
            if values.get(name) is not None and not QUANTITY.match(str(values[name])):
                raise InvalidArgumentError(f"{name} {values[name]!r} is not a Kubernetes quantity (e.g. 500m, 2Gi)")
        env = tuple(sorted(dict(values.get("env") or {}).items()))
        for key, _ in env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise InvalidArgumentError(f"environment variable name {key!r} is invalid")
        return cls(
            docker_image=image,
            schedule=validate_schedule(values["schedule"]),
            entrypoint=entrypoint,
            dag_id=validate_dag_id(values["dag_id"]),
            start_date=validate_date(values["start_date"], field="start_date"),
            namespace=namespace,
            service_account=str(service_account) if service_account else None,
            cpu=str(values["cpu"]) if values.get("cpu") else None,
            memory=str(values["memory"]) if values.get("memory") else None,
            env=env,
        )
