"""This worker's loaded model, kept in step with the shared pointer."""

from __future__ import annotations

import threading
from pathlib import Path

from online_server.models import ModelLoadError, Predictor, load_predictor
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
            self.install(current, load_predictor(self.settings, _path(current.src), _path(current.model), current.version))
            self._identity = identity

    def install(self, current: Current, predictor: Predictor) -> None:
        self.current, self.predictor = current, predictor

    def ensure_loaded(self) -> Predictor:
        self.refresh()
        if self.predictor is None:
            if self.settings.model_type != "mlflow" and self.current.model is None and self.settings.model_type != "custom":
                raise ModelLoadError("no model downloaded yet: call /src_download, then /model_download")
            self.predictor = load_predictor(
                self.settings, _path(self.current.src), _path(self.current.model), self.current.version
            )
        return self.predictor


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
