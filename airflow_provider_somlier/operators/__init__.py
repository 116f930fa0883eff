"""SoMLier operators. Imports stay light: DAG files import this at parse time."""

from airflow_provider_somlier.operators.offline import MLOpsOfflineOperator

__all__ = ["MLOpsOfflineOperator"]
