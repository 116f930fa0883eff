"""TensorFlow models (``MODEL_TYPE=tf``); TensorFlow itself is the optional extra ``tf``.

Two shapes, both behind ``/src_download`` → ``/model_download`` → ``/result``:

* **the seed's**: the source zip's module holds a class whose ``load(model_path)`` builds a
  TF1-style graph with ``tf.compat.v1``, restores a checkpoint from the model zip and keeps
  (or returns) a session; ``predict(input)`` runs it. The class owns its graph
  (``tf.Graph()``), so eager TF2 code elsewhere in the process is unaffected;
* **TF2**: when the source zip has no such module, the model zip itself is served: a
  SavedModel folder (``tf.saved_model.save`` or Keras ``model.export``) through its
  ``serving_default`` signature, or a ``.keras`` file through Keras.

Input is one row (a flat list) or a batch (a list of rows); the answer is a list, one
entry per row (a single-output model's ``[[y]]`` per row becomes ``y``). TensorFlow's own complaints about an input (wrong shape or type) are
the client's fault and become ``BadInputError``, so ``/result`` answers 400, not 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from online_server.models import BadInputError, ModelLoadError


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        raise ModelLoadError("MODEL_TYPE=tf needs TensorFlow: install the extra (pip install '.[tf]')") from None
    return tf


def _plain(value: Any) -> Any:
    """NumPy/TensorFlow results as JSON-ready lists and floats."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return value.tolist() if hasattr(value, "tolist") else value


class TFPredictor:
    """One loaded TensorFlow model and the version it came from."""

    def __init__(self, run: Any, version: str | None, *, keep: Any, rows_as_batch: bool):
        self._run = run
        self._keep = keep  # the object (class instance, SavedModel, Keras model) ``run`` needs alive
        self._rows_as_batch = rows_as_batch  # a TF2 model takes a batch: one row becomes a batch of one
        self.version = version or "unknown"

    @classmethod
    def load(cls, src_dir: Path | None, model_dir: Path | None, version: str | None, module: str, class_name: str):
        if src_dir is not None and any(src_dir.rglob(f"{module}.py")):
            return cls._seed_class(src_dir, model_dir, version, module, class_name)
        return cls._tf2_model(model_dir, version, module)

    @classmethod
    def _seed_class(cls, src_dir: Path, model_dir: Path | None, version: str | None, module: str, class_name: str):
        from online_server.models.custom import CustomPredictor

        _tensorflow()
        instance = CustomPredictor.load(src_dir, model_dir, version, module, class_name).instance
        return cls(instance.predict, version, keep=instance, rows_as_batch=False)

    @classmethod
    def _tf2_model(cls, model_dir: Path | None, version: str | None, module: str):
        tf = _tensorflow()
        if model_dir is None:
            raise ModelLoadError("no model downloaded yet: call /model_download first")
        saved = sorted(p.parent for p in model_dir.rglob("saved_model.pb"))
        keras_files = sorted(model_dir.rglob("*.keras"))
        try:
            if saved:
                model = tf.saved_model.load(str(saved[0]))
                return cls(_signature_caller(tf, model.signatures["serving_default"]), version, keep=model, rows_as_batch=True)
            if keras_files:
                model = tf.keras.models.load_model(keras_files[0])
                return cls(lambda rows: model(tf.constant(rows, dtype=tf.float32), training=False), version,
                           keep=model, rows_as_batch=True)
        except (OSError, ValueError, KeyError, tf.errors.OpError) as exc:
            raise ModelLoadError(f"TensorFlow could not load the model: {type(exc).__name__}: {exc}") from None
        raise ModelLoadError(
            f"the sources have no {module}.py and the model zip holds no SavedModel (saved_model.pb) or .keras file"
        )

    def predict(self, data: Any) -> list:
        tf = _tensorflow()
        if self._rows_as_batch and isinstance(data, list) and data and not isinstance(data[0], list):
            data = [data]
        try:
            result = self._run(data)
        except (TypeError, ValueError, KeyError, tf.errors.InvalidArgumentError) as exc:
            raise BadInputError(f"the model rejected the input: {type(exc).__name__}: {exc}") from None
        result = _plain(result)
        if self._rows_as_batch and isinstance(result, list) and all(isinstance(r, list) and len(r) == 1 for r in result):
            result = [r[0] for r in result]  # one output per row: [[y1], [y2]] → [y1, y2], as the other model types answer
        return result


def _signature_caller(tf: Any, signature: Any):
    """Call a serving signature with rows cast to its one input's dtype; return its one output."""
    ((name, spec),) = signature.structured_input_signature[1].items()

    def run(rows: Any) -> Any:
        outputs = signature(**{name: tf.constant(rows, dtype=spec.dtype)})
        return next(iter(outputs.values())) if len(outputs) == 1 else {k: _plain(v) for k, v in outputs.items()}

    return run
