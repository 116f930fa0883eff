"""A registry model, resolved and loaded with SoMLier's MLflowHook (as the batch operator does)."""

from __future__ import annotations

from typing import Any

from online_server.models import BadInputError, ModelLoadError
from online_server.models.tabular import as_rows, to_json


class MlflowPredictor:
    def __init__(self, model: Any, version: str, columns: list[str] | None):
        self.model, self.version, self.columns = model, version, columns

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

    def predict(self, data: Any) -> list:
        try:
            return to_json(self.model.predict(as_rows(data, self.columns)))
        except BadInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow's schema enforcement raises several types
            raise BadInputError(f"the model rejected the input: {exc}") from None
