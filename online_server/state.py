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
        self.pointer = Pointer.of(settings)  # refuses another model's pointer
        self._lock = threading.RLock()  # held while a model loads and while one is installed
        self._loading = False
        self._identity: tuple[int, int] | None = None
        self.predictor: Predictor | None = None
        self.current = Current(None, None, None)
        self._failure: tuple[tuple[int, int] | None, float, str] | None = None  # pointer identity, when, why
        self.followed = False  # a follower thread loads switches in the background (``online_server.follow``)
        self.wake = threading.Event()  # set to make the follower look at the pointer now

    @property
    def loaded_identity(self) -> tuple[int, int] | None:
        """The pointer (inode, mtime) the serving predictor was loaded for."""
        return self._identity

    @property
    def loading(self) -> bool:
        """A model is being loaded: requests that need it wait (the server sends new ones elsewhere)."""
        return self._loading

    def behind(self) -> bool:
        """True while this worker cannot answer for the pointer without a load first.

        That is while a model loads, or -- when a follower runs -- while the pointer names a
        version this worker has not loaded (another worker switched) and its load has not
        just failed. The follower is woken to load it now. The front takes no connection
        meanwhile, so new requests go to a worker that serves the new version at once
        instead of waiting here for the load (measured: a follower's first load, imports
        included, held every request it had accepted for ~2.4 s). A load that failed is not
        "behind": requests are taken and answered 503 naming the failure.
        """
        if self._loading:
            return True
        if not self.followed:
            return False
        identity = self.pointer.identity()  # one stat
        if identity == self._identity:
            return False
        failure = self._failure
        if failure and failure[0] == identity:
            return False
        self.wake.set()
        return True

    def refresh(self, identity: tuple[int, int] | None) -> None:
        """Reload when another worker moved the pointer to ``identity`` (nothing when it did not)."""
        if identity == self._identity:
            return
        with self._lock:
            if identity == self._identity:
                return
            current = self.pointer.read()
            self.install(current, self._load(current), identity)

    def _load(self, current: Current) -> Predictor:
        """The predictor of ``current``, loaded under the lock (``loading`` meanwhile)."""
        with self._lock:
            self._loading = True
            try:
                return load_predictor(self.settings, as_path(current.src), as_path(current.model), current.version)
            finally:
                self._loading = False

    def install(self, current: Current, predictor: Predictor, identity: tuple[int, int] | None = None) -> None:
        """Serve ``predictor``; ``identity`` is the pointer it was loaded for (None: refresh decides).

        Each worker shows the version it now serves in the version gauge, whichever worker
        answered the download, and a worker started later shows its own as soon as it loads.
        The gauge is set under the same lock as the predictor, so a switch and the pointer
        follower cannot leave it showing a version the worker no longer serves.
        """
        with self._lock:
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
                with self._lock:
                    if self.predictor is None:
                        current = self.current
                        self.install(current, self._load(current))
        except Exception as exc:  # any failed load is remembered, not only the loaders' named ones:
            # otherwise ``behind`` would hold the worker out of rotation while its follower retried
            why = (str(exc) if isinstance(exc, ModelLoadError)
                   else f"the model did not load: {type(exc).__name__}: {exc}")
            self._failure = (identity, time.monotonic(), why)
            raise
        self._failure = None
        return self.predictor


def as_path(value: str | None) -> Path | None:
    return Path(value) if value else None
