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
from airflow_provider_somlier.generate.redact import holds_token
from airflow_provider_somlier.generate.routing import ScoreRouting, validate_routing
from airflow_provider_somlier.refs import parse_model_ref, parse_table_ref, validate_column_name
from airflow_provider_somlier.window import parse_bool, parse_window

DAG_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,249}")
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@continuous")
CONTINUOUS = "@continuous"
"""Airflow's ContinuousTimetable starts the next run when the last ends: it refuses a DAG whose
``max_active_runs`` exceeds 1, so a continuous DAG is rendered with exactly one active run."""
OFFLINE_MAX_ACTIVE_RUNS = 4
# registry/path:tag or @sha256:digest, as docker reference grammar allows (lower-case path components)
IMAGE = re.compile(
    r"(?:(?P<registry>[a-zA-Z0-9.\-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:[._\-]{1,2}[a-z0-9]+)*(?:/[a-z0-9]+(?:[._\-]{1,2}[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Patterns above are used with fullmatch only: `$` would also match before a trailing newline.

MAX_VALUE_CHARS = 4096
"""Longest value accepted in any field: a DAG file is no place for a script, and the header stays readable."""


def _shown(value: str) -> str:
    """The value as it appears in a message: a short ASCII repr, whatever it holds."""
    return ascii(value if len(value) <= 80 else value[:60] + "..." + value[-12:])


def checked_text(value: object, field: str, *, free_text: bool = False) -> str:
    """``value`` as text that can be rendered safely, or :class:`InvalidArgumentError` naming ``field``.

    Every field is refused when it holds bytes that are not UTF-8 (Python hands them
    over as lone surrogates), a NUL, more than :data:`MAX_VALUE_CHARS` characters, or
    a GitHub token (the file is committed for anyone with the repository to read).
    Names, refs, schedules and quantities must also be printable ASCII, so a newline
    or a look-alike character never slips past a pattern. ``free_text`` fields
    (entrypoint arguments, environment values) may hold any other character: the
    renderer escapes it inside a string literal.
    """
    text = value if isinstance(value, str) else str(value)
    for position, char in enumerate(text):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise InvalidArgumentError(
                f"{field} {_shown(text)} is not valid UTF-8 (byte 0x{ord(char) & 0xFF:02x} at position {position}): "
                "pass the value as UTF-8 text"
            )
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidArgumentError(
            f"{field} {_shown(text)} is {len(text)} characters long: at most {MAX_VALUE_CHARS} are accepted"
        )
    if holds_token(text):
        raise InvalidArgumentError(
            f"{field} holds what looks like a GitHub token: a generated DAG file is committed to the dags "
            "repository, so it must not hold secrets (use an Airflow connection or a Kubernetes secret)"
        )
    for position, char in enumerate(text):
        if char == "\0" or (not free_text and not " " <= char <= "~"):
            expected = "a NUL character" if char == "\0" else "characters other than printable ASCII"
            raise InvalidArgumentError(
                f"{field} {_shown(text)} has {ascii(char)} at position {position}: {field} cannot hold {expected}"
            )
    return text


def checked_template(text: str, field: str) -> str:
    """``text`` if Airflow can render it as a Jinja template at run time (KubernetesPodOperator templates it)."""
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidArgumentError(
            f"{field} {_shown(text)} is not a valid Airflow template ({exc.message}): Airflow renders it at run "
            "time, so write {{ '{{' }} for a literal '{{' and {{ '{%' }} for a literal '{%'"
        ) from None
    return text


def validate_dag_id(dag_id: str, field: str = "DAG_ID") -> str:
    dag_id = checked_text(dag_id, field)
    if not DAG_ID.fullmatch(dag_id):
        raise InvalidArgumentError(
            f"{field} {_shown(dag_id)} is invalid: expected letters, digits, '_', '-' or '.', at most 250 characters"
        )
    return dag_id


def validate_schedule(schedule: str, field: str = "SCHEDULE") -> str:
    """A cron expression (5 fields) or one of Airflow's presets."""
    text = checked_text(schedule, field).strip(" ")
    if text in SCHEDULE_PRESETS:
        return text
    from croniter import CroniterBadDateError, croniter

    if len(text.split()) == 5 and croniter.is_valid(text):
        try:  # valid fields can still name no date ('31 2': February 31st); Airflow could never schedule it
            croniter(text, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
        except CroniterBadDateError:
            raise InvalidArgumentError(
                f"{field} {_shown(text)} never matches a date (e.g. February 30th or 31st, April 31st): "
                "the DAG would never run; expected a cron expression that fires"
            ) from None
        return text
    raise InvalidArgumentError(
        f"{field} {_shown(text)} is invalid: expected a 5-field cron expression such as '0 9 * * *' "
        f"or one of {', '.join(SCHEDULE_PRESETS)}"
    )


def validate_date(value: str | dt.date, *, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    text = checked_text(value, field)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise InvalidArgumentError(f"{field} {_shown(text)} is not a date: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{field} {_shown(text)} is not a date: expected YYYY-MM-DD") from None


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
    shards: int | None = None  # None: one MLOpsOfflineOperator task; N: the sharded task group
    # The quality gate's settings, each left to the operator's default when None.
    quality_checks: dict | None = None
    baseline: str | None = None
    on_quality_failure: str | None = None
    null_features: str | None = None  # the operator's default (auto) when None
    routing: ScoreRouting = field(default_factory=ScoreRouting)  # queue, pool, pod resources of the score task(s)

    @property
    def max_active_runs(self) -> int:
        """Days scored at once: a few for catch-up, one when the schedule is continuous."""
        return 1 if self.schedule == CONTINUOUS else OFFLINE_MAX_ACTIVE_RUNS

    @classmethod
    def validated(cls, **values: object) -> OfflineDagSpec:
        model_ref = checked_text(values["model_ref"], "MODEL_REF").strip(" ")
        dataset_ref = checked_text(values["dataset_ref"], "DATASET_REF").strip(" ")
        destination_table_ref = checked_text(values["destination_table_ref"], "DESTINATION_TABLE_REF").strip(" ")
        parse_model_ref(model_ref)
        # Refs without a project are fine here: the connection supplies it at run time.
        parse_table_ref(dataset_ref, "placeholder-project", field="DATASET_REF")
        parse_table_ref(destination_table_ref, "placeholder-project", field="DESTINATION_TABLE_REF")
        load_column = checked_text(values["dataset_load_column"], "DATASET_LOAD_COLUMN")
        passthrough = [checked_text(c, "--passthrough_columns") for c in values.get("passthrough_columns") or ()]
        return cls(
            model_ref=model_ref,
            dag_id=validate_dag_id(values["dag_id"]),
            schedule=validate_schedule(values["schedule"], "SCHEDULE_INTERVAL"),
            dataset_ref=dataset_ref,
            dataset_load_column=validate_column_name(load_column, field="DATASET_LOAD_COLUMN"),
            destination_table_ref=destination_table_ref,
            start_date=validate_date(values["start_date"], field="--start_date"),
            dataset_load_window=parse_window(checked_text(values.get("dataset_load_window", 1), "--dataset_load_window")),
            dataset_load_by_kst=parse_bool(
                checked_text(values.get("dataset_load_by_kst", True), "--dataset_load_by_kst"),
                field="--dataset_load_by_kst",
            ),
            passthrough_columns=tuple(validate_column_name(c, field="--passthrough_columns") for c in passthrough),
            shards=validate_shards(values.get("shards")),
            **validate_quality(values.get("quality_checks"), values.get("baseline"), values.get("on_quality_failure")),
            null_features=validate_null_features(values.get("null_features")),
            routing=validate_routing(values),
        )


def validate_quality(quality_checks: object, baseline: object, on_quality_failure: object) -> dict[str, object]:
    """``--quality_checks`` (JSON), ``--baseline`` and ``--on_quality_failure``, checked as the operator checks them."""
    import json

    from airflow_provider_somlier.quality.gate import DEFAULT_BASELINE, parse_settings

    checks = None
    if quality_checks not in (None, ""):
        text = checked_text(quality_checks, "--quality_checks")
        try:
            checks = json.loads(text)
        except json.JSONDecodeError:
            raise InvalidArgumentError(
                f"--quality_checks {_shown(text)} is not JSON: expected an object such as "
                '\'{"max_psi": 0.2, "prediction_range": [0, 1]}\''
            ) from None
    baseline = checked_text(baseline, "--baseline") if baseline not in (None, "") else None
    on_failure = checked_text(on_quality_failure, "--on_quality_failure") if on_quality_failure not in (None, "") else None
    parse_settings(checks, baseline or DEFAULT_BASELINE, on_failure or "fail")
    return {"quality_checks": checks, "baseline": baseline, "on_quality_failure": on_failure}


def validate_null_features(value: object) -> str | None:
    """``--null_features``: one of the operator's choices, or None (left out) for its default."""
    from airflow_provider_somlier.operators.offline import NULL_FEATURES_CHOICES

    if value is None:
        return None
    text = checked_text(value, "--null_features")
    if text not in NULL_FEATURES_CHOICES:
        raise InvalidArgumentError(
            f"--null_features {_shown(text)} is not one of {', '.join(NULL_FEATURES_CHOICES)}"
        )
    return text


def validate_shards(value: object, field: str = "--shards") -> int | None:
    """A shard count from 1 to the sharded operators' maximum, or None (the option left out) for the single task.

    An empty or blank value is refused, not read as "left out": ``--shards "$N"`` with ``N``
    unset must not quietly render the single task the user did not ask for.
    """
    from airflow_provider_somlier.operators.sharded import MAX_SHARDS

    if value is None:
        return None
    text = checked_text(value, field).strip(" ")
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_SHARDS:
        raise InvalidArgumentError(f"{field} {_shown(text)} is invalid: expected a whole number from 1 to {MAX_SHARDS}")
    return int(text)


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

    @property
    def max_active_runs(self) -> int | None:
        """1 for a continuous schedule (which Airflow requires); otherwise Airflow's configured default (None)."""
        return 1 if self.schedule == CONTINUOUS else None

    @classmethod
    def validated(cls, **values: object) -> BatchDagSpec:
        image = checked_text(values["docker_image"], "DOCKER_IMAGE").strip(" ")
        if not IMAGE.fullmatch(image):
            raise InvalidArgumentError(
                f"DOCKER_IMAGE {_shown(image)} is not an image reference: expected "
                "[registry/]name[:tag][@sha256:digest], e.g. gcr.io/project/sift:latest"
            )
        entrypoint_text = checked_text(values["entrypoint"], "ENTRYPOINT", free_text=True)
        try:
            entrypoint = tuple(shlex.split(entrypoint_text))
        except ValueError as exc:
            raise InvalidArgumentError(f"ENTRYPOINT {_shown(entrypoint_text)} cannot be split: {exc}") from None
        if not entrypoint:
            raise InvalidArgumentError("ENTRYPOINT is empty: expected a command such as 'sh -c predict.sh'")
        for argument in entrypoint:
            checked_template(argument, "ENTRYPOINT argument")
        namespace = checked_text(values.get("namespace") or "default", "--namespace")
        if not K8S_NAME.fullmatch(namespace):
            raise InvalidArgumentError(f"--namespace {_shown(namespace)} is not a Kubernetes name (e.g. 'batch-jobs')")
        service_account = values.get("service_account")
        if service_account is not None:
            service_account = checked_text(service_account, "--service_account")
            if not K8S_NAME.fullmatch(service_account):
                raise InvalidArgumentError(
                    f"--service_account {_shown(service_account)} is not a Kubernetes name (e.g. 'batch-runner')"
                )
        quantities = {}
        for name in ("cpu", "memory"):
            if values.get(name) is not None:
                quantities[name] = checked_text(values[name], f"--{name}")
                if not QUANTITY.fullmatch(quantities[name]):
                    raise InvalidArgumentError(
                        f"--{name} {_shown(quantities[name])} is not a Kubernetes quantity (e.g. 500m, 2Gi)"
                    )
        env = []
        for key, value in sorted(dict(values.get("env") or {}).items()):
            key = checked_text(key, "--env name")
            if not ENV_NAME.fullmatch(key):
                raise InvalidArgumentError(
                    f"--env name {_shown(key)} is invalid: expected letters, digits and '_', not starting with a digit"
                )
            value = checked_template(checked_text(value, f"--env {key}", free_text=True), f"--env {key}")
            env.append((key, value))
        return cls(
            docker_image=image,
            schedule=validate_schedule(values["schedule"]),
            entrypoint=entrypoint,
            dag_id=validate_dag_id(values["dag_id"]),
            start_date=validate_date(values["start_date"], field="--start_date"),
            namespace=namespace,
            service_account=service_account or None,
            cpu=quantities.get("cpu") or None,
            memory=quantities.get("memory") or None,
            env=tuple(env),
        )
