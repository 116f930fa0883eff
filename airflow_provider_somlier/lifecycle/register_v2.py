"""``somlier online register_v2``: register a model trained anywhere, from its weights file.

``sklearn``: a pickled or joblib estimator. ``pytorch``: a ``state_dict`` file plus the
model class, loaded from ``MODEL_MODULE_PATH`` of ``PROJECT_NAME`` in the git repository
at ``PROJECT_REF`` (torch is an optional install). The weights come from ``gs://`` (the
Google client's credentials; ``STORAGE_EMULATOR_HOST`` for an emulator) or a local path.
"""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import tempfile
from pathlib import Path

from airflow_provider_somlier.errors import InvalidArgumentError, SomlierError
from airflow_provider_somlier.lifecycle.registry import (
    RegisteredModel,
    register_model,
    without_airflow_deprecation_warnings,
)
from airflow_provider_somlier.refs import validate_model_name

MODEL_TYPES = ("sklearn", "pytorch")


def fetch_weights(uri: str, folder: Path) -> Path:
    """Copy ``gs://bucket/path`` or a local path into ``folder``."""
    if uri.startswith("gs://"):
        from google.cloud import storage

        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not bucket or not name:
            raise InvalidArgumentError(f"GCS_URI {uri!r} is malformed: expected gs://bucket/path/to/file")
        blob = storage.Client().bucket(bucket).get_blob(name)
        if blob is None:
            raise InvalidArgumentError(f"GCS_URI {uri!r} does not exist")
        target = folder / Path(name).name
        blob.download_to_filename(str(target))
        return target
    path = Path(uri.removeprefix("file://"))
    if not path.is_file():
        raise InvalidArgumentError(f"GCS_URI {uri!r} is neither gs://… nor an existing file")
    return path


def _load_sklearn(path: Path):
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the user's own model file
    except Exception as exc:  # noqa: BLE001
        raise InvalidArgumentError(f"{path.name} is not a pickled scikit-learn model: {type(exc).__name__}: {exc}") from None


def _load_pytorch(path: Path, github_uri: str, project: str, ref: str, module_path: str, class_name: str, folder: Path):
    try:
        import torch
    except ImportError:
        raise SomlierError("pytorch models need torch installed (pip install torch)") from None
    if not all((github_uri, project, ref, module_path, class_name)):
        raise InvalidArgumentError(
            "pytorch needs GITHUB_URI PROJECT_NAME PROJECT_REF MODEL_MODULE_PATH MODEL_CLASS_NAME after MODEL_NAME"
        )
    checkout = folder / "source"
    done = subprocess.run(["git", "clone", "--quiet", github_uri, str(checkout)], capture_output=True, text=True)
    if done.returncode or subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", ref]).returncode:
        raise InvalidArgumentError(f"cannot check out {ref!r} of {github_uri}: {done.stderr.strip()}")
    source = checkout / project / module_path
    spec = importlib.util.spec_from_file_location("somlier_model_class", source)
    if spec is None or not source.is_file():
        raise InvalidArgumentError(f"MODEL_MODULE_PATH {module_path!r} not found in {project} at {ref}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, class_name)()
    model.load_state_dict(torch.load(path, map_location="cpu"))
    return model.eval()


# scikit-learn's own classes that skops does not trust by default but that a fitted
# estimator holds: HistGradientBoosting* keep their trees as TreePredictor objects.
# Only these are named as trusted when the model is saved in MLflow's skops format.
SKOPS_TRUSTED_SKLEARN_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def skops_trusted_types(model: object) -> list[str]:
    """The types the saved model must name as trusted for skops to load it.

    Refuses, by name, any type outside :data:`SKOPS_TRUSTED_SKLEARN_TYPES`: trusting
    arbitrary classes would make the skops file as unsafe to load as a pickle.
    """
    with without_airflow_deprecation_warnings():  # importing skops.io already walks every module
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    unknown = sorted(set(untrusted) - set(SKOPS_TRUSTED_SKLEARN_TYPES))
    if unknown:
        raise InvalidArgumentError(
            f"the model holds types skops does not trust: {', '.join(unknown)}; register a model built "
            "from scikit-learn's own estimators, or log it yourself with mlflow.sklearn.log_model(..., "
            "skops_trusted_types=[...])"
        )
    return sorted(untrusted)


def check_training_columns(model: object, columns: list[str]) -> None:
    """Refuse a training file that cannot be the baseline of ``model``'s inputs, before anything is
    registered: the names the estimator was fitted on (``feature_names_in_``) must all be columns
    of it, and an estimator fitted without names needs at least as many columns as it takes
    (``n_features_in_``). Otherwise the mismatch would only show as ProfileMismatchError when a
    scored day is compared with it."""
    from airflow_provider_somlier.quality.training import refuse_missing_inputs

    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        refuse_missing_inputs([str(name) for name in names], columns)
        return
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, int) and len(columns) < count:
        raise InvalidArgumentError(
            f"--training_data has {len(columns)} column(s) ({', '.join(columns)}) but the model takes {count} "
            "features: its profile could not be their baseline; nothing was registered"
        )


def register_v2(
    model_type: str, weights_uri: str, model_name: str, tracking_uri: str, *,
    github_uri: str = "", project: str = "", ref: str = "", module_path: str = "", class_name: str = "",
    training_columns: list[str] | None = None,
) -> RegisteredModel:
    """Register the model at ``weights_uri`` as a new version of ``model_name`` (a new run of its own).

    ``training_columns`` (a ``--training_data`` file's) are checked against a scikit-learn model's
    inputs before anything is registered; a pytorch ``state_dict`` names no inputs to check.
    """
    validate_model_name(model_name)
    if model_type not in MODEL_TYPES:
        raise InvalidArgumentError(f"MODEL_TYPE {model_type!r} must be one of {', '.join(MODEL_TYPES)}")
    with tempfile.TemporaryDirectory(prefix="somlier-register-") as tmp:
        folder = Path(tmp)
        weights = fetch_weights(weights_uri, folder)
        if model_type == "sklearn":
            import mlflow.sklearn
            import sklearn

            model = _load_sklearn(weights)
            if not hasattr(model, "predict"):
                raise InvalidArgumentError(f"{weights.name} holds a {type(model).__name__}, which has no predict()")

            if training_columns is not None:
                check_training_columns(model, training_columns)
            trusted = skops_trusted_types(model)

            def save(path: str) -> None:
                mlflow.sklearn.save_model(
                    model, path, pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                    skops_trusted_types=trusted or None,
                )
        else:
            import mlflow.pytorch

            model = _load_pytorch(weights, github_uri, project, ref, module_path, class_name, folder)

            def save(path: str) -> None:
                mlflow.pytorch.save_model(model, path)

        return register_model(
            tracking_uri, model_name, save, params={"source": weights_uri, "model_type": model_type},
            experiment=f"register_v2-{model_name}",
        )
