"""A model class shipped in the source zip (the k8s_flask rules): ``load(model_path)`` + ``predict(input)``."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from online_server.models import BadInputError, ModelFailedError, ModelLoadError

log = logging.getLogger(__name__)
_IMPORTS = threading.Lock()  # sys.modules and sys.path are the process's: one source zip loads at a time


@contextlib.contextmanager
def isolated_imports(folder: Path) -> Iterator[None]:
    """Import the source zip's modules fresh from ``folder`` and leave none of them behind.

    ``import helper`` returns whatever ``sys.modules['helper']`` already holds, so without
    this a new source zip's helpers would never replace the old ones (and each worker would
    run whichever it imported first). Inside the block the names the folder provides are
    free and the folder is first on ``sys.path``; afterwards every module loaded from it is
    removed (the model keeps its own references) and anything it shadowed is put back.
    """
    top = str(folder.resolve())
    provided = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}
    shadowed = {name: module for name, module in sys.modules.items() if name.partition(".")[0] in provided}
    for name in shadowed:
        del sys.modules[name]
    sys.path.insert(0, top)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(top)
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if name.partition(".")[0] in provided or origin.startswith(top + "/"):
                del sys.modules[name]
        sys.modules.update(shadowed)


class CustomPredictor:
    batchable = False  # the class decides what an input is: each request is its own predict call

    def __init__(self, instance: Any, version: str | None):
        if not callable(getattr(instance, "predict", None)):
            raise ModelLoadError(f"{type(instance).__name__} has no predict(input) method")
        self.instance = instance
        self.version = version or "unknown"

    @classmethod
    def load(cls, src_dir: Path | None, model_dir: Path | None, version: str | None, module: str, class_name: str):
        if src_dir is None:
            raise ModelLoadError("no sources downloaded yet: call /src_download first")
        candidates = sorted(src_dir.rglob(f"{module}.py"))
        if not candidates:
            raise ModelLoadError(f"the source zip has no {module}.py")
        path = candidates[0]
        # A unique module name per unpacked folder: old and new versions coexist in one process.
        name = f"somlier_src_{abs(hash(str(path)))}_{module}"
        try:
            with _IMPORTS, isolated_imports(path.parent):
                spec = importlib.util.spec_from_file_location(name, path)
                loaded = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(loaded)
                instance = getattr(loaded, class_name)()
                instance.load(str(model_dir) if model_dir else None)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever the user's code raises, sys.exit() included
            raise ModelLoadError(f"{module}.{class_name} failed to load: {type(exc).__name__}: {exc}") from None
        return cls(instance, version)

    def sample_input(self) -> None:
        """The class alone knows its input: only the zip's smoke_input.json can check it."""
        return None

    def predict(self, data: Any) -> list | Any:
        try:
            result = self.instance.predict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise BadInputError(f"the model rejected the input: {type(exc).__name__}: {exc}") from None
        except BaseException as exc:  # noqa: BLE001 - sys.exit(), KeyboardInterrupt: the worker keeps serving
            log.warning("%s.predict raised", type(self.instance).__name__, exc_info=True)  # the client gets one line
            raise ModelFailedError(f"the model failed: {type(exc).__name__}: {exc}") from None
        return result.tolist() if hasattr(result, "tolist") else result
