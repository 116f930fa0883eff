"""The Airflow plugin: the Predictions app under the API server, a nav entry, a task-instance view.

Registered by installing the provider (the ``airflow.plugins`` entry point in ``setup.cfg``):
no file to copy into a plugins folder. Airflow imports this module in every component that
loads plugins, DAG processor included, so it imports nothing but Airflow's plugin base; the
FastAPI app is built by :class:`LazyApp` on the API server's first request to ``/somlier``.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/somlier"


class LazyApp:
    """An ASGI app that builds the Predictions app (``app.create_app``) when first called."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_provider_somlier.ui.app import create_app

                    self._app = create_app()
        await self._app(scope, receive, send)


class SomlierPlugin(AirflowPlugin):
    """SoMLier's pages in the Airflow UI (Airflow 3.1+)."""

    name = "somlier"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "SoMLier predictions"}]
    external_views = [
        {
            "name": "SoMLier",
            "href": "somlier/",
            "destination": "nav",
            "category": "browse",
            "url_route": "somlier",
        },
        {
            "name": "Predictions",
            "href": "somlier/task/{DAG_ID}/{RUN_ID}/{TASK_ID}?map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "somlier-task",
        },
    ]
