"""A registry model, resolved and loaded with SoMLier's MLflowHook (as the batch operator does)."""

from __future__ import annotations

from typing import Any

from online_server.models import BadInputError, ModelLoadError
from online_server.models.sklearn import SklearnPredictor
from online_server.models.tabular import as_rows, check_one, is_records, to_json

NUMERIC = {"double", "float", "long", "integer"}


class MlflowPredictor:
    batchable = True

    def __init__(self, model: Any, version: str, columns: list[str] | None):
        from airflow_provider_somlier.features import signature_inputs

        self.model, self.version, self.columns = model, version, columns
        # the columns whose values must be JSON numbers; strings and booleans go to MLflow's own checks
        self.numeric = [name for name, kind in signature_inputs(model) or [] if kind in NUMERIC] if columns else None
        self.direct = direct_sklearn(model, version)

    @classmethod
    def load(cls, model_ref: str, conn_id: str) -> MlflowPredictor:
        from airflow_provider_somlier.errors import SomlierError
        from airflow_provider_somlier.features import signature_inputs
        from airflow_provider_somlier.hooks.mlflow import MLflowHook

        if not model_ref:
            raise ModelLoadError("MODEL_TYPE=mlflow needs MODEL_REF (e.g. diabetes-ridge@champion)")
        try:
            hook = MLflowHook(mlflow_conn_id=conn_id)
            resolved = hook.resolve(model_ref)
            model = hook.load_pyfunc(resolved)
        except SomlierError as exc:
            raise ModelLoadError(str(exc)) from None
        inputs = signature_inputs(model)
        return cls(model, f"{resolved.name}/{resolved.version}", [n for n, _ in inputs] if inputs else None)

    def sample_input(self) -> None:
        """A registry model is checked by its signature; no generated input is needed."""
        return None

    def check_row(self, data: Any) -> None:
        """``BadInputError`` for one row that ``predict`` would refuse alone (before it joins a batch)."""
        if self.direct is not None:
            self.direct.check_row(data)
        elif self.columns or not is_records(data):
            check_one(data, self.columns, checked=self.numeric)

    def predict(self, data: Any) -> list:
        if self.direct is not None:
            return self.direct.predict(data)
        try:
            return to_json(self.model.predict(as_rows(data, self.columns, checked=self.numeric)))
        except BadInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's schema enforcement raises several types
            raise BadInputError(f"the model rejected the input: {exc}") from None


def direct_sklearn(model: Any, version: str) -> SklearnPredictor | None:
    """The registry model's own estimator behind the server's checks, when MLflow's input check
    adds nothing (``airflow_provider_somlier.direct_sklearn``); None keeps MLflow's path."""
    from airflow_provider_somlier.direct_sklearn import direct_estimator

    estimator = direct_estimator(model)
    return None if estimator is None else SklearnPredictor(estimator, version)
