"""A registry model that fails the first ``predict`` after a trigger file appears, in whichever process gets there first.

Shards run in separate worker processes; removing the trigger file is atomic, so exactly
one shard fails, once. Pickled by value so Airflow workers load it without this module.
"""

from __future__ import annotations

import os

import mlflow.pyfunc


class FailOnceModel(mlflow.pyfunc.PythonModel):
    def __init__(self, trigger: str) -> None:
        self.trigger = trigger

    def predict(self, context, model_input, params=None):
        try:
            os.unlink(self.trigger)
        except FileNotFoundError:
            return model_input["bmi"].to_numpy() * 10.0 + model_input["bp"].to_numpy()
        raise RuntimeError("injected failure of one shard")


def register_fail_once(tracking_uri: str, model_name: str, trigger: str, artifact_root: str):
    """Register a :class:`FailOnceModel` armed by ``trigger`` as a new version of ``model_name``."""
    import sys

    import cloudpickle
    from mlflow.models import infer_signature

    from airflow_provider_somlier.devtools.sample_model import diabetes_frame, register_model

    features, _ = diabetes_frame()
    model = FailOnceModel(trigger)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    def save(path: str) -> None:
        mlflow.pyfunc.save_model(
            path,
            python_model=model,
            signature=infer_signature(features, model.predict(None, features)),
            pip_requirements=["mlflow"],
        )

    return register_model(tracking_uri, model_name, save, artifact_root=artifact_root)
