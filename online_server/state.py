"""This worker's loaded model, kept in step with the shared pointer."""

from __future__ import annotations

import threading
from pathlib import Path

from online_server.models import Predictor, load_predictor
from online_server.swap import Current, Pointer


class ServingState:
    """Per worker process: the predictor for the pointer's current version."""

    def __init__(self, settings):
        self.settings = settings
        self.pointer = Pointer(Path(settings.work_dir))
        self._lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self.predictor: Predictor | None = None
        self.current = Current(None, None, None)

    def refresh(self) -> None:
        """Reload when another worker switched versions (a stat call when nothing changed)."""
        identity = self.pointer.identity()
        if identity == self._identity:
            return
        with self._lock:
            if identity == self._identity:
                return
            current = self.pointer.read()
            self.install(current, load_predictor(self.settings, as_path(current.src), as_path(current.model), current.version))
            self._identity = identity

    def install(self, current: Current, predictor: Predictor) -> None:
        self.current, self.predictor = current, predictor

    def serving_version(self) -> str:
        """The version in the pointer, else the loaded predictor's own (an MLflow ref's), else ""."""
        return self.current.version or (self.predictor.version if self.predictor else "")

    def ensure_loaded(self) -> Predictor:
        """The serving predictor; each loader raises ModelLoadError naming what is missing."""
        self.refresh()
        if self.predictor is None:
            self.predictor = load_predictor(
                self.settings, as_path(self.current.src), as_path(self.current.model), self.current.version
            )
        return self.predictor


def as_path(value: str | None) -> Path | None:
    return Path(value) if value else None
