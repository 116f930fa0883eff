"""Model types the server can load. Each ``load(...)`` returns an object with ``predict(input) -> list``.

* ``sklearn`` -- the model zip holds one pickled/joblib estimator (``*.pkl``/``*.joblib``);
* ``custom``  -- the source zip's module (``MODEL_MODULE``, default ``<MODEL_NAME>``) has a
  class (``MODEL_CLASS``, default the module name) with ``load(model_path)`` and
  ``predict(input)``, as the k8s_flask rules describe; ``tf`` is the same contract for
  TensorFlow sources (TensorFlow itself is an optional install);
* ``mlflow``  -- ``MODEL_REF`` (``name/3`` or ``name@alias``) resolved with SoMLier's
  ``MLflowHook``, so batch DAGs and this server serve the same registry version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ModelLoadError(Exception):
    """The model or its source could not be loaded."""


class BadInputError(Exception):
    """The request's input does not fit the model."""


class ModelFailedError(Exception):
    """The model's own code failed while predicting (an error of the model, not of the request)."""


class Predictor(Protocol):
    """A loaded model and the version it is: an answer's version is read from the predictor that computed it."""

    version: str
    # True when ``predict`` of a list of rows answers one value per row, so concurrent
    # one-row requests can be computed in one call (tabular models; not custom code).
    batchable: bool

    def predict(self, data: Any) -> list: ...

    def check_row(self, data: Any) -> None:
        """(``batchable`` models) ``BadInputError`` for one row ``predict`` would refuse alone, with its message."""

    def sample_input(self) -> Any | None:
        """An input of the model's width for the smoke test when the zip brings none (None: not known)."""


def load_predictor(settings, src_dir: Path | None, model_dir: Path | None, version: str | None) -> Predictor:
    kind = settings.model_type
    if kind == "sklearn":
        from online_server.models.sklearn import SklearnPredictor

        return SklearnPredictor.load(model_dir, version)
    if kind == "tf":
        from online_server.models.tf import TFPredictor

        return TFPredictor.load(src_dir, model_dir, version, settings.model_module, settings.model_class)
    if kind == "custom":
        from online_server.models.custom import CustomPredictor

        return CustomPredictor.load(src_dir, model_dir, version, settings.model_module, settings.model_class)
    if kind == "mlflow":
        from online_server.models.mlflow import MlflowPredictor

        return MlflowPredictor.load(settings.model_ref, settings.mlflow_conn_id)
    raise ModelLoadError(f"MODEL_TYPE {kind!r} is not one of sklearn, custom, tf, mlflow")
