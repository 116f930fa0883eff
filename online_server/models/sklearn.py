"""A pickled scikit-learn estimator from the model zip."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from online_server.models import BadInputError, ModelLoadError
from online_server.models.tabular import as_rows, to_json


class SklearnPredictor:
    def __init__(self, estimator: Any, version: str | None):
        self.estimator = estimator
        self.version = version or "unknown"
        names = getattr(estimator, "feature_names_in_", None)
        self.columns = [str(n) for n in names] if names is not None else None

    @classmethod
    def load(cls, model_dir: Path | None, version: str | None) -> SklearnPredictor:
        if model_dir is None:
            raise ModelLoadError("no model downloaded yet: call /src_download, then /model_download")
        files = sorted(p for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib"))
        if len(files) != 1:
            raise ModelLoadError(f"the model zip must hold exactly one .pkl/.joblib file, found {[f.name for f in files]}")
        try:
            if files[0].suffix == ".joblib":
                import joblib

                return cls(joblib.load(files[0]), version)
            with open(files[0], "rb") as handle:
                return cls(pickle.load(handle), version)  # noqa: S301 - the operator's own storage
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"cannot unpickle {files[0].name}: {type(exc).__name__}: {exc}") from None

    def predict(self, data: Any) -> list:
        rows = as_rows(data, self.columns)
        try:
            return to_json(self.estimator.predict(rows))
        except ValueError as exc:
            raise BadInputError(f"the model rejected the input: {exc}") from None
