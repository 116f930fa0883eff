"""A pickled scikit-learn estimator from the model zip."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from airflow_provider_somlier.direct_sklearn import linear_shortcut
from online_server.models import BadInputError, ModelLoadError
from online_server.models.tabular import as_matrix, as_rows, check_one, is_records, to_json


class SklearnPredictor:
    batchable = True

    def __init__(self, estimator: Any, version: str | None):
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(f"the pickle holds a {type(estimator).__name__}, not a model: it has no predict()")
        self.estimator = estimator
        self.version = version or "unknown"
        names = getattr(estimator, "feature_names_in_", None)
        self.columns = [str(n) for n in names] if names is not None else None
        self.n_features = getattr(estimator, "n_features_in_", None)
        self.shortcut = linear_shortcut(estimator)

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
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"cannot unpickle {files[0].name}: {type(exc).__name__}: {exc}") from None

    def sample_input(self) -> Any:
        """A row of zeros of the fitted width (an object when the model knows its column names)."""
        if self.columns:
            return {name: 0.0 for name in self.columns}
        if isinstance(self.n_features, int) and self.n_features > 0:
            return [0.0] * self.n_features
        raise ModelLoadError(
            f"the {type(self.estimator).__name__} does not say how many features it takes: "
            "add smoke_input.json (one input it must answer) to the model zip"
        )

    def _no_names(self) -> BadInputError:
        return BadInputError(
            f"this model was fitted without feature names: send each row as a list of {self.n_features} numbers"
        )

    def check_row(self, data: Any) -> None:
        """``BadInputError`` for one row that ``predict`` would refuse alone (before it joins a batch)."""
        if isinstance(data, dict) and self.columns is None:
            raise self._no_names()
        check_one(data, self.columns, self.n_features if isinstance(self.n_features, int) else None)

    def predict(self, data: Any) -> list:
        records = is_records(data)
        if records and self.columns is None:
            raise self._no_names()
        width = self.n_features if isinstance(self.n_features, int) else None
        if self.shortcut is not None and not records:
            return to_json(self.shortcut(as_matrix(data, self.columns, width)))
        rows = as_rows(data, self.columns, width=width)
        try:
            return to_json(self.estimator.predict(rows))
        except ValueError as exc:
            raise BadInputError(f"the model rejected the input: {exc}") from None
