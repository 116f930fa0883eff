"""Import once, in the Airflow worker, what every SoMLier task would otherwise import itself.

Why: a task's registry lookup and model load are mostly imports — MLflow, scikit-learn,
skops, pyarrow, the BigQuery clients — seconds of every task. Airflow starts each task
process by forking (the LocalExecutor from its worker processes, the CeleryExecutor from
its pool), so modules the parent has imported cost a task nothing. Every Airflow process
imports ``airflow_local_settings.py`` at start, so one line there moves the imports from
every task to the worker's start:

.. code-block:: python

    # $AIRFLOW_HOME/config/airflow_local_settings.py (or anywhere on PYTHONPATH)
    from airflow_provider_somlier.preload import preload_for_tasks

    preload_for_tasks()

The price: every Airflow process that reads the settings (scheduler, API server, DAG
processor too) holds these modules (~250 MB of resident memory measured, shared copy-on-write
with the tasks it forks) and starts a few seconds later. Opt in on workers that run
SoMLier tasks, e.g. by setting ``SOMLIER_PRELOAD=1`` only in the workers' environment:
``preload_for_tasks()`` does nothing without it unless ``force=True``.
"""

from __future__ import annotations

import os
import warnings


def preload_for_tasks(*, force: bool = False) -> bool:
    """Import what a SoMLier task uses; returns whether it did (``SOMLIER_PRELOAD=1`` or ``force``)."""
    if not force and os.environ.get("SOMLIER_PRELOAD", "").strip().lower() not in ("1", "true", "yes"):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import google.cloud.bigquery  # noqa: F401
        import google.cloud.bigquery_storage_v1  # noqa: F401
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
        # A registry on a database URI (sqlite://, postgresql://): importing its store is most
        # of a lookup's time (SQLAlchemy models, Alembic) -- seconds of every task otherwise.
        import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import sklearn.linear_model  # noqa: F401

        from airflow_provider_somlier.skops_import import import_skops_io

        import_skops_io()
        import airflow_provider_somlier.hooks.bigquery  # noqa: F401
        import airflow_provider_somlier.hooks.mlflow  # noqa: F401
        import airflow_provider_somlier.offline_run  # noqa: F401
        import airflow_provider_somlier.scoring  # noqa: F401

        _first_chunk_imports()
    return True


def _first_chunk_imports() -> None:
    """What a task's first chunk imports on first use: Arrow's pandas conversion, and the
    DataFrame handling behind scikit-learn's feature-name check (narwhals) -- ~20-50 ms of the
    first chunk otherwise. A two-row round trip through the public APIs pulls them in."""
    import pyarrow as pa
    from sklearn.linear_model import Ridge

    frame = pa.table({"x": [0.0, 1.0]}).to_pandas()
    Ridge().fit(frame, [0.0, 1.0]).predict(frame)
