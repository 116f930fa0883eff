"""A model class shipped in the source zip (the k8s_flask rules): ``load(model_path)`` + ``predict(input)``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from online_server.models import BadInputError, ModelLoadError


class CustomPredictor:
    def __init__(self, instance: Any, version: str | None):
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
        sys.path.insert(0, str(path.parent))
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            loaded = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded)
            instance = getattr(loaded, class_name)()
            instance.load(str(model_dir) if model_dir else None)
        except Exception as exc:  # noqa: BLE001 - whatever the user's code raises
            raise ModelLoadError(f"{module}.{class_name} failed to load: {type(exc).__name__}: {exc}") from None
        finally:
            sys.path.remove(str(path.parent))
        return cls(instance, version)

    def predict(self, data: Any) -> list | Any:
        try:
            result = self.instance.predict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise BadInputError(f"the model rejected the input: {type(exc).__name__}: {exc}") from None
        return result.tolist() if hasattr(result, "tolist") else result
