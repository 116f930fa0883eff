"""What the Predictions pages need to know about the deployment, from Airflow's configuration.

Read from the ``[somlier]`` section (``AIRFLOW__SOMLIER__…`` environment variables), so a
deployment configures the pages like the rest of Airflow and the app factory can be given
other values in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

# A page may show at most this many days: a year and a leap day. Longer ranges are refused
# (a 100-year range would be 36,500 days of rows for one page).
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 90


@dataclass(frozen=True)
class UISettings:
    """Connections and limits of the Predictions pages.

    ``gcp_conn_id`` is the connection the API server reads the profile tables with (the
    DAGs' own ``gcp_conn_id`` is not part of what Airflow stores about a task); it needs
    read access to every destination's dataset. ``mlflow_conn_id`` turns a model version
    into a link to the registry's page when its tracking URI is an MLflow server;
    ``mlflow_ui_url`` names an MLflow UI to link to when the registry is a database
    (``sqlite:``, ``postgresql:``) that a separate ``mlflow server`` serves.
    """

    gcp_conn_id: str = "google_cloud_default"
    location: str | None = None
    mlflow_conn_id: str = "mlflow_default"
    mlflow_ui_url: str = ""
    query_deadline_seconds: float = 30.0
    catalog_seconds: float = 5.0  # how long the list of destinations is reused before it is read again

    @classmethod
    def from_airflow(cls) -> UISettings:
        """The settings of the running Airflow (``[somlier]`` section, defaults above)."""
        from airflow.configuration import conf

        def get(name: str, default: str) -> str:
            return conf.get("somlier", name, fallback=default) or default

        return cls(
            gcp_conn_id=get("ui_gcp_conn_id", cls.gcp_conn_id),
            location=conf.get("somlier", "ui_location", fallback=None) or None,
            mlflow_conn_id=get("ui_mlflow_conn_id", cls.mlflow_conn_id),
            mlflow_ui_url=conf.get("somlier", "mlflow_ui_url", fallback="") or "",
            query_deadline_seconds=float(get("ui_query_deadline_seconds", str(cls.query_deadline_seconds))),
            catalog_seconds=float(get("ui_catalog_seconds", str(cls.catalog_seconds))),
        )
