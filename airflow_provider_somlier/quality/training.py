"""Log a training frame's profile with a model, so scored days can be compared with what it learnt from.

A training script calls :func:`log_training_profile` on the frame it fitted (inside its
``mlflow.start_run()``, or with the ``run_id`` it registered); the profile is stored as the
run's artifact ``somlier/training_profile.json``. An operator with ``baseline="training"``
reads it from the run of the model version it resolved.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH
from airflow_provider_somlier.quality.profile import FEATURE, PREDICTION, DayProfile, profile_table


def training_profile(frame: Any, predictions: Any = None) -> DayProfile:
    """The profile of a training frame (pandas DataFrame or Arrow table): every column as a feature,
    plus the model's predictions on it (named as the operator names them) when given."""
    import pyarrow as pa

    from airflow_provider_somlier.errors import InvalidArgumentError

    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    if not isinstance(frame, pa.Table):
        try:
            frame = pa.Table.from_pandas(frame, preserve_index=False)
        except (TypeError, AttributeError, pa.ArrowInvalid) as exc:
            raise InvalidArgumentError(
                f"log_training_profile needs a pandas DataFrame or an Arrow table, got {type(frame).__name__}: {exc}"
            ) from None
    roles = dict.fromkeys(frame.column_names, FEATURE)
    if predictions is not None:
        from airflow_provider_somlier.output import prediction_columns

        for name, values in prediction_columns(predictions, frame.num_rows).items():
            frame = frame.append_column(name, values)
            roles[name] = PREDICTION
    return profile_table(frame, roles)


def log_training_profile(frame: Any, *, predictions: Any = None, run_id: str | None = None,
                         tracking_uri: str | None = None) -> dict[str, Any]:
    """Profile ``frame`` and log it as an artifact of ``run_id`` (default: the active MLflow run).

    Returns what was logged. Call it on the frame the model was fitted on, with the
    model's predictions on it if the gate should also compare prediction columns.
    """
    data = training_profile(frame, predictions).to_dict()
    if run_id is None:
        import mlflow

        from airflow_provider_somlier.errors import InvalidArgumentError

        if mlflow.active_run() is None:
            raise InvalidArgumentError(
                "log_training_profile found no active MLflow run: call it inside mlflow.start_run(), or pass run_id"
            )
        mlflow.log_dict(data, TRAINING_PROFILE_PATH)
    else:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=tracking_uri).log_dict(run_id, data, TRAINING_PROFILE_PATH)
    return data


def read_training_file(path: str) -> Any:
    """A training frame from a Parquet or CSV file, as an Arrow table (``somlier register --training_data``)."""
    from pathlib import Path

    from airflow_provider_somlier.errors import InvalidArgumentError

    suffix = Path(path).suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidArgumentError(f"--training_data {path!r} must be a .parquet or .csv file")
    if not Path(path).is_file():
        raise InvalidArgumentError(f"--training_data {path!r} does not exist")
    try:
        if suffix == ".csv":
            import pyarrow.csv

            table = pyarrow.csv.read_csv(path)
        else:
            import pyarrow.parquet

            table = pyarrow.parquet.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise InvalidArgumentError(f"--training_data {path!r} could not be read: {exc}") from None
    if table.num_rows == 0:  # a baseline of nothing would skip every drift check it was meant to make
        raise InvalidArgumentError(f"--training_data {path!r} holds no rows (columns: {', '.join(table.column_names)})")
    return table


def log_profile_with_run(client: Any, run_id: str, frame: Any) -> str:
    """Log ``frame``'s profile with the run that made a model (what ``baseline='training'`` reads);
    return its ``runs:/`` URI. Used by ``somlier register`` and ``register_v2 --training_data``.

    A run holding the very same profile is left as it is (registering it again with the same
    file is harmless); one holding another profile is refused, see :func:`refuse_other_profile`.
    """
    from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH

    data = training_profile(frame).to_dict()
    if refuse_other_profile(client, run_id, data) is None:
        client.log_dict(run_id, data, TRAINING_PROFILE_PATH)
    return f"runs:/{run_id}/{TRAINING_PROFILE_PATH}"


def _canonical(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True)


def logged_profile(client: Any, run_id: str) -> dict[str, Any] | None:
    """The training profile ``run_id`` holds, or None when it holds none."""
    import json
    import tempfile
    from pathlib import Path

    from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH

    folder, _, _ = TRAINING_PROFILE_PATH.rpartition("/")
    if not any(entry.path == TRAINING_PROFILE_PATH for entry in client.list_artifacts(run_id, folder)):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, TRAINING_PROFILE_PATH, tmp)
        return json.loads(Path(path).read_text())


def refuse_other_profile(client: Any, run_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse to log profile ``data`` on a run that holds a different one: the versions registered
    from that run already judge their days by it, and a new file would change their baseline unseen.

    Returns the profile the run holds when it is the same as ``data`` (nothing to log), else None.
    """
    from airflow_provider_somlier.errors import InvalidArgumentError
    from airflow_provider_somlier.quality.day_gate import TRAINING_PROFILE_PATH

    held = logged_profile(client, run_id)
    if held is None:
        return None
    if _canonical(held) != _canonical(data):
        columns = ", ".join(str(column.get("name")) for column in held.get("columns", []))
        raise InvalidArgumentError(
            f"run {run_id} already holds another training profile (runs:/{run_id}/{TRAINING_PROFILE_PATH}: "
            f"{held.get('rows')} rows of {columns}), the baseline of the versions registered from it; "
            "register with the same --training_data file, or without --training_data to keep it"
        )
    return held


def refuse_missing_inputs(inputs: list[str], columns: list[str]) -> None:
    """Refuse a training file whose ``columns`` lack some of the model's ``inputs``, before anything is
    registered: its profile could not be their baseline, and the gap would only show later as a
    ProfileMismatchError when a scored day is compared with it."""
    from airflow_provider_somlier.errors import InvalidArgumentError

    missing = [name for name in inputs if name not in columns]
    if missing:
        raise InvalidArgumentError(
            f"--training_data has no column {', '.join(map(repr, missing))} of the model's inputs "
            f"({', '.join(inputs)}; it has {', '.join(columns)}): its profile could not be their baseline; "
            "nothing was registered"
        )
