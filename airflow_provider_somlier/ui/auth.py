"""Who is asking, and which destinations they may see: Airflow's auth manager decides.

The plugin's endpoints are not behind Airflow's authentication by themselves (plugin
apps are mounted as they are), so every route depends on :func:`airflow_user`, which is
Airflow's own ``get_user``: the JWT from the ``Authorization: Bearer`` header or the UI's
``_token`` cookie, 401 without one, 403 for a forged or foreign one. What a user may
see is what the configured auth manager (simple, FAB, Keycloak …) says they may read:
a destination is shown only when the user may read every DAG that wrote it, since its
profile holds what each of those DAGs' runs scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_somlier.ui.catalog import Destination


def airflow_user_dependency() -> Any:
    """Airflow's ``get_user`` dependency (imported here: only the API server needs it)."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def readable_dag_ids(user: Any) -> set[str]:
    """The DAG ids ``user`` may read, as Airflow's auth manager answers for its own DAG list."""
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


def visible(destinations: Mapping[str, Destination], readable: set[str]) -> dict[str, Destination]:
    """The destinations all of whose writer DAGs the user may read."""
    return {key: d for key, d in destinations.items() if d.dag_ids and d.dag_ids <= readable}
