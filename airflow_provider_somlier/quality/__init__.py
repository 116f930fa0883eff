"""Prediction quality: a profile of every scored day, drift against a baseline, a gate before the commit.

``profile`` accumulates and merges a day's profile, ``drift`` compares it with a baseline,
``gate`` turns settings and drift into a verdict, ``store`` writes and reads the profile
table, ``training`` logs a training frame's profile with a model. Nothing heavy is
imported here: DAG files import the operator, which imports this package's settings.
"""

from __future__ import annotations

from typing import Any


def log_training_profile(frame: Any, *, predictions: Any = None, run_id: str | None = None,
                         tracking_uri: str | None = None) -> dict[str, Any]:
    """Log the profile of a training frame as an artifact of an MLflow run (see ``training.py``)."""
    from airflow_provider_somlier.quality.training import log_training_profile as log

    return log(frame, predictions=predictions, run_id=run_id, tracking_uri=tracking_uri)
