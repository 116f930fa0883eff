"""Server settings from the environment (the seed's pod-info.yaml sets these)."""

from __future__ import annotations

import os
from dataclasses import dataclass


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def check_event_loop(kind: str) -> str:
    """``kind`` if it names an event loop the front worker can run (``EVENT_LOOP``), else a ValueError."""
    if kind not in EVENT_LOOPS:
        raise ValueError(f"EVENT_LOOP={kind!r}: expected one of {', '.join(EVENT_LOOPS)}")
    return kind


@dataclass(frozen=True)
class Settings:
    model_name: str
    model_type: str = "sklearn"  # sklearn | custom | tf | mlflow
    storage: str = "local"  # local | ftp | gcs
    storage_root: str = "."
    work_dir: str = "/tmp/somlier-online"
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
    event_loop: str = "auto"  # the front worker's loop: uvloop | asyncio | auto (uvloop when installed)

    def __post_init__(self) -> None:
        check_event_loop(self.event_loop)
        # the seed's rule: the custom module and class default to the model's name
        if not self.model_module:
            object.__setattr__(self, "model_module", self.model_name)
        if not self.model_class:
            object.__setattr__(self, "model_class", self.model_module)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        ints = {"ftp_port", "max_body_bytes", "max_archive_bytes", "native_threads", "max_batch"}
        floats = {"max_batch_wait_ms", "follow_pointer_seconds", "read_timeout_seconds", "predict_timeout_seconds"}
        values = {}
        for name in cls.__dataclass_fields__:
            key = name.upper()
            if key in env:
                values[name] = int(env[key]) if name in ints else float(env[key]) if name in floats else env[key]
        if "model_name" not in values:
            raise ValueError("MODEL_NAME is not set")
        return cls(**values)
