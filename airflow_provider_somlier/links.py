"""Extra links from a SoMLier task instance to the model version it used and the table it wrote.

Airflow 3 resolves a link once, in the worker, right after the task succeeds, and stores
the URL as an XCom that the UI reads. Both links are built from the task's own summary
(its ``return_value``), so they name the version actually resolved (``@champion`` may
have moved since) and the fully qualified destination. A link that has no web page to
point to is empty, and the UI shows no button: the MLflow link when the tracking URI is
not a server (``sqlite:``, ``file:``), the BigQuery link when the connection points at
an emulator (``api_endpoint`` set) rather than Google's console.

Not imported when a DAG file is parsed: the operator makes its links on first access
(``_LinksOnFirstUse``), which Airflow does when it serializes the DAG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import BaseOperator

BIGQUERY_CONSOLE = "https://console.cloud.google.com"


_NOT_AN_OFFLINE_TASK = object()


def _summary(operator: BaseOperator, ti_key: TaskInstanceKey) -> dict[str, Any] | None:
    """The day's summary: from the run that just finished in this process (where Airflow resolves
    links), else from the task's ``return_value``. A task that failed, or a step that writes no day
    (a shard's plan or score), has none, and no XCom is asked for (Airflow would log "XCom not found")."""
    run = getattr(operator, "_run", _NOT_AN_OFFLINE_TASK)
    if run is not _NOT_AN_OFFLINE_TASK:
        summary = getattr(run, "summary", None)
        return summary if isinstance(summary, dict) else None
    from airflow.sdk.execution_time.xcom import XCom

    summary = XCom.get_value(ti_key=ti_key, key="return_value")
    return summary if isinstance(summary, dict) else None


def model_version_url(tracking_uri: str, model_name: str, model_version: str) -> str:
    """The MLflow UI page of one registered model version, or ``""`` when the registry is no server."""
    if not tracking_uri.startswith(("http://", "https://")):
        return ""
    return f"{tracking_uri.rstrip('/')}/#/models/{quote(model_name, safe='')}/versions/{quote(str(model_version), safe='')}"


def table_console_url(table_id: str, api_endpoint: str | None) -> str:
    """The BigQuery console page of ``project.dataset.table``, or ``""`` for an emulator."""
    if api_endpoint:
        return ""
    from airflow.providers.google.cloud.links.bigquery import BIGQUERY_TABLE_LINK

    project, dataset, table = table_id.split(".")
    return BIGQUERY_CONSOLE + BIGQUERY_TABLE_LINK.format(project_id=project, dataset_id=dataset, table_id=table)


class MLflowModelVersionLink(BaseOperatorLink):
    """The registry page of the model version the task scored with."""

    name = "MLflow model version"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        summary = _summary(operator, ti_key)
        if not summary:
            return ""
        from airflow_provider_somlier.hooks.mlflow import MLflowHook

        tracking_uri = MLflowHook(mlflow_conn_id=operator.mlflow_conn_id).tracking_uri
        return model_version_url(tracking_uri, summary["model_name"], summary["model_version"])


class BigQueryTableLink(BaseOperatorLink):
    """The destination table in the BigQuery console."""

    name = "BigQuery table"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        summary = _summary(operator, ti_key)
        if not summary:
            return ""
        from airflow_provider_somlier.hooks.bigquery import SomlierBigQueryHook

        hook = SomlierBigQueryHook(gcp_conn_id=operator.gcp_conn_id)
        return table_console_url(summary["destination"], hook._get_field("api_endpoint", None))
