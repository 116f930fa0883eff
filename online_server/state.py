"""This worker's loaded model, kept in step with the shared pointer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from online_server import metrics
from online_server.models import ModelLoadError, Predictor, load_predictor
from online_server.swap import Current, Pointer

# A model that failed to load is not tried again for this long unless the pointer moves:
# a registry that is down must not make every request wait for MLflow's own retries.
RETRY_LOAD_AFTER_SECONDS = 5.0


class ServingState:
    """Per worker process: the predictor for the pointer's current version."""

    def __init__(self, settings):
        self.settings = settings
        self.pointer = Pointer(Path(settings.work_dir))
        self._lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self.predictor: Predictor | None = None
        self.current = Current(None, None, None)
        self._failure: tuple[tuple[int, int] | None, float, str] | None = None  # pointer identity, when, why

    @property
    def loaded_identity(self) -> tuple[int, int] | None:
        """The pointer (inode, mtime) the serving predictor was loaded for."""
        return self._identity

    def refresh(self, identity: tuple[int, int] | None) -> None:
        """Reload when another worker moved the pointer to ``identity`` (nothing when it did not)."""
        if identity == self._identity:
            return
        with self._lock:
            if identity == self._identity:
                return
            current = self.pointer.read()
            predictor = load_predictor(self.settings, as_path(current.src), as_path(current.model), current.version)
            self.install(current, predictor, identity)

    def install(self, current: Current, predictor: Predictor, identity: tuple[int, int] | None = None) -> None:
        """Serve ``predictor``; ``identity`` is the pointer it was loaded for (None: refresh decides).

        Each worker shows the version it now serves in the version gauge, whichever worker
        answered the download, and a worker started later shows its own as soon as it loads.
        """
        self.current, self.predictor = current, predictor
        metrics.set_version(predictor.version)
        if identity is not None:
            self._identity, self._failure = identity, None

    def ensure_loaded(self) -> Predictor:
        """The serving predictor; each loader raises ModelLoadError naming what is missing.

        A failure is remembered for ``RETRY_LOAD_AFTER_SECONDS`` (or until the pointer
        moves) and raised again at once, so requests in that time answer 503 immediately.
        """
        identity = self.pointer.identity()  # the one stat per request
        failure = self._failure
        if failure and failure[0] == identity and time.monotonic() - failure[1] < RETRY_LOAD_AFTER_SECONDS:
            raise ModelLoadError(failure[2])
        try:
            self.refresh(identity)
            if self.predictor is None:
                current = self.current
                self.install(current, load_predictor(self.settings, as_path(current.src), as_path(current.model),
                                                     current.version))
        except ModelLoadError as exc:
            self._failure = (identity, time.monotonic(), str(exc))
            raise
        self._failure = None
        return self.predictor


def as_path(value: str | None) -> Path | None:
    return Path(value) if value else None
