"""SoMLier operators, each imported only when a DAG file asks for it.

Airflow 3's DAG processor parses every DAG file in a fresh process, and only
``airflow.*`` modules are imported before the fork: whatever this package imports
is paid again for every file, every parse. So nothing is imported here up front;
``from airflow_provider_somlier.operators import MLOpsOfflineOperator`` loads the one
module that defines it (PEP 562 ``__getattr__``), and an operator added later costs
nothing to the DAG files that do not use it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_somlier.operators.offline import MLOpsOfflineOperator

_DEFINED_IN = {"MLOpsOfflineOperator": "airflow_provider_somlier.operators.offline"}

__all__ = ["MLOpsOfflineOperator"]


def __getattr__(name: str) -> Any:
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_DEFINED_IN[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_DEFINED_IN])
