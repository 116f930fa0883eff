"""Server settings from the environment (the seed's pod-info.yaml sets these).

Every setting is checked when it is read -- by ``gunicorn.conf.py`` before any worker starts --
so a typo stops the server with a message naming the variable, its value and what it takes,
instead of a bare ``int()`` traceback or a server that only fails at its first download.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

EVENT_LOOPS = ("auto", "uvloop", "asyncio")
MODEL_TYPES = ("sklearn", "custom", "tf", "mlflow")
STORAGES = ("local", "ftp", "gcs")
# Each model's default WORK_DIR is a folder of its own under this one: two servers on one host
# must never share ``current.json`` (they would serve each other's model).
WORK_ROOT = "/tmp/somlier-online"
MAX_NAME_BYTES = 255  # one path component, as Linux file systems allow


class SettingsError(ValueError):
    """A setting the server cannot run with; the message names the variable, its value and what it takes."""


def check_event_loop(kind: str) -> str:
    """``kind`` if it names an event loop the front worker can run (``EVENT_LOOP``), else a SettingsError."""
    if kind not in EVENT_LOOPS:
        raise SettingsError(f"EVENT_LOOP={kind!r}: expected one of {', '.join(EVENT_LOOPS)}")
    return kind


def check_model_name(name: str) -> str:
    """``name`` if it can name one folder (``<STORAGE_ROOT>/<MODEL_NAME>``, the default WORK_DIR), else a SettingsError.

    The name is a path component in storage and in the work dir: a '/', '..' or NUL in it
    would reach outside the model's own folder, where another model's files are.
    """
    if not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0") or (
            len(name.encode(errors="surrogateescape")) > MAX_NAME_BYTES):
        raise SettingsError(
            f"MODEL_NAME={name!r}: expected a name that can be one folder's (not empty, '.' or '..', "
            f"no '/', '\\' or NUL, at most {MAX_NAME_BYTES} bytes)"
        )
    return name


def default_work_dir(model_name: str) -> str:
    """The model's own work dir when WORK_DIR is not set: ``/tmp/somlier-online/<MODEL_NAME>``."""
    return os.path.join(WORK_ROOT, check_model_name(model_name))


def env_number(env, key: str, kind: type[int] | type[float], default: int | float | None = None) -> int | float | None:
    """``env[key]`` as a non-negative ``kind`` (``default`` when unset or empty), else a SettingsError naming it.

    Every number the server reads is a size, a count or a duration: a negative one, NaN or
    infinity is a typo, refused like a value that is not a number at all.
    """
    raw = env.get(key)
    if raw is None or not raw.strip():
        return default
    expected = "a whole number >= 0, e.g. 8" if kind is int else "a number >= 0, e.g. 2.5"
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{key}={raw!r}: expected {expected}") from None
    if not math.isfinite(value) or value < 0:
        raise SettingsError(f"{key}={raw!r}: expected {expected}")
    return value


def number_setting(env, name: str) -> int | float:
    """The number field ``name`` of ``Settings`` from ``env``, read exactly as ``Settings.from_env`` reads it.

    For the workers, which read a few settings from the environment themselves: a parse of their
    own would differ from the one ``gunicorn.conf.py`` checked at start (``MAX_BATCH=" "`` passed
    it as the default, then every worker failed to boot on ``int(" ")``).
    """
    field = Settings.__dataclass_fields__[name]
    return env_number(env, name.upper(), int if field.type == "int" else float, field.default)


@dataclass(frozen=True)
class Settings:
    model_name: str
    model_type: str = "sklearn"  # sklearn | custom | tf | mlflow
    storage: str = "local"  # local | ftp | gcs
    storage_root: str = "."
    work_dir: str = ""  # empty: the model's own folder, default_work_dir(model_name)
    ftp_host: str = "127.0.0.1"
    ftp_port: int = 21
    ftp_user: str = "anonymous"
    ftp_password: str = ""
    gcs_bucket: str = ""
    model_module: str = ""
    model_class: str = ""
    model_ref: str = ""
    mlflow_conn_id: str = "mlflow_default"
    download_token: str = ""
    max_body_bytes: int = 1 << 20
    max_archive_bytes: int = 1 << 30
    native_threads: int = 0  # OpenMP/BLAS threads per worker; 0: the cores divided by the workers
    max_batch: int = 32  # one-row /result requests computed in one predict call, at most (1: no batching)
    max_batch_wait_ms: float = 2.0  # how long a batch waits for requests the server already holds, at most
    follow_pointer_seconds: float = 1.0  # how often an idle worker checks for a switch (0: only on requests)
    read_timeout_seconds: float = 10.0  # a request's head and body must arrive within this of its accept (else 408)
    predict_timeout_seconds: float = 30.0  # a /result answered later is a 504 and its worker is replaced
    # a download's storage exchange must end within this; a download waits this long for another to end (else 409)
    download_timeout_seconds: float = 300.0
    # a new version's load and smoke test must end within this (else 504, and its worker is replaced)
    load_timeout_seconds: float = 300.0
    event_loop: str = "auto"  # the front worker's loop: uvloop | asyncio | auto (uvloop when installed)

    def __post_init__(self) -> None:
        check_event_loop(self.event_loop)
        check_model_name(self.model_name)
        # refused at start: otherwise the server runs and only /model_download (422) and /readyz (503) say so
        if self.model_type not in MODEL_TYPES:
            raise SettingsError(f"MODEL_TYPE={self.model_type!r}: expected one of {', '.join(MODEL_TYPES)}")
        if self.storage not in STORAGES:
            raise SettingsError(f"STORAGE={self.storage!r}: expected one of {', '.join(STORAGES)}")
        if not self.download_timeout_seconds > 0:
            raise SettingsError(f"DOWNLOAD_TIMEOUT_SECONDS={self.download_timeout_seconds!r}: expected a number > 0, e.g. 300")
        if not self.load_timeout_seconds > 0:
            raise SettingsError(f"LOAD_TIMEOUT_SECONDS={self.load_timeout_seconds!r}: expected a number > 0, e.g. 300")
        if self.model_type == "mlflow" and not self.model_ref.strip():
            raise SettingsError("MODEL_TYPE=mlflow needs MODEL_REF: expected the registry model to serve, "
                                "e.g. MODEL_REF=diabetes-ridge@champion")
        if not self.work_dir:
            object.__setattr__(self, "work_dir", default_work_dir(self.model_name))
        # the seed's rule: the custom module and class default to the model's name
        if not self.model_module:
            object.__setattr__(self, "model_module", self.model_name)
        if not self.model_class:
            object.__setattr__(self, "model_class", self.model_module)

    @property
    def own_work_dir(self) -> bool:
        """WORK_DIR is the model's default folder, so a pointer there that names no model is this model's."""
        return os.path.abspath(self.work_dir) == os.path.abspath(default_work_dir(self.model_name))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """The settings in ``environ`` (default ``os.environ``); a SettingsError names the first bad one."""
        env = os.environ if environ is None else environ
        fields = cls.__dataclass_fields__
        values = {}
        for name, field in fields.items():
            key = name.upper()
            if key not in env:
                continue
            if field.type in ("int", "float"):
                values[name] = number_setting(env, name)
            else:
                values[name] = env[key]
        if "model_name" not in values:
            raise SettingsError("MODEL_NAME is not set")
        return cls(**values)
