"""SoMLier: batch-first ML model serving on Apache Airflow."""

from __future__ import annotations

# Airflow imports this package in every process that reads its configuration (provider
# discovery calls get_provider_info), the DAG processor's manager included, which then
# forks one process per DAG file. The operators package defines nothing up front and
# imports nothing from Airflow (its operators load on first use), so importing it here
# is safe mid-configuration and spares every DAG file's parse one module import.
from airflow_provider_somlier import operators  # noqa: F401,E402

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """What ``airflow providers list`` and the connection form learn about this package."""
    from airflow_provider_somlier.hooks.mlflow_form import CONNECTION_TYPE as MLFLOW_CONNECTION_TYPE

    return {
        "package-name": "airflow-provider-somlier",
        "name": "SoMLier",
        "description": "Batch-first ML model serving: MLflow registry models over BigQuery date windows.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "SoMLier", "external-doc-url": "https://pypi.org/project/airflow-provider-somlier/"},
            {"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/docs/latest/model-registry.html"},
        ],
        "operators": [
            {"integration-name": "SoMLier", "python-modules": ["airflow_provider_somlier.operators.offline"]},
        ],
        "extra-links": [
            "airflow_provider_somlier.links.MLflowModelVersionLink",
            "airflow_provider_somlier.links.BigQueryTableLink",
        ],
        "hooks": [
            {"integration-name": "MLflow", "python-modules": ["airflow_provider_somlier.hooks.mlflow"]},
            {"integration-name": "SoMLier", "python-modules": ["airflow_provider_somlier.hooks.bigquery"]},
        ],
        "connection-types": [MLFLOW_CONNECTION_TYPE],
        # No "plugins" here: the Predictions plugin (ui/plugin.py) registers through the
        # ``airflow.plugins`` entry point, which Airflow always reads. Provider-listed plugins are
        # loaded only with ``lazy_discover_providers = False``, and then a second time under the
        # same name, which Airflow reports as a plugin import error.
    }
