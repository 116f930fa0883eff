"""A registry model that fails (or hangs in) the first ``predict`` after a trigger file appears, in whichever process gets there first.

Shards run in separate worker processes; removing the trigger file is atomic, so exactly
one shard fails, once. A hanging one writes ``<trigger>.hanging`` first, so a test knows
when to kill it. Pickled by value so Airflow workers load it without this module.
"""

from __future__ import annotations

import os

import mlflow.pyfunc


class FailOnceModel(mlflow.pyfunc.PythonModel):
    def __init__(self, trigger: str, hang: bool = False) -> None:
        self.trigger = trigger
        self.hang = hang

    def predict(self, context, model_input, params=None):
        try:
            os.unlink(self.trigger)
        except FileNotFoundError:
            return model_input["bmi"].to_numpy() * 10.0 + model_input["bp"].to_numpy()
        if self.hang:
            import time

            open(f"{self.trigger}.hanging", "w").close()
            time.sleep(600)
        raise RuntimeError("injected failure of one shard")


def register_fail_once(tracking_uri: str, model_name: str, trigger: str, artifact_root: str, *, hang: bool = False):
    """Register a :class:`FailOnceModel` armed by ``trigger`` as a new version of ``model_name``."""
    import sys

    import cloudpickle
    from mlflow.models import infer_signature

    from airflow_provider_somlier.devtools.sample_model import diabetes_frame, register_model

    features, _ = diabetes_frame()
    model = FailOnceModel(trigger, hang=hang)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    def save(path: str) -> None:
        mlflow.pyfunc.save_model(
            path,
            python_model=model,
            signature=infer_signature(features, model.predict(None, features)),
            pip_requirements=["mlflow"],
        )

    return register_model(tracking_uri, model_name, save, artifact_root=artifact_root)
