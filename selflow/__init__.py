"""selflow: a dataflow dispatcher on top of Celery, configured in Selinon-format YAML."""

from __future__ import annotations

from typing import Any

from selflow.errors import FatalTaskError, SelflowError
from selflow.task import Retry, SelflowTask, SelinonTask

__version__ = "0.1.0"

__all__ = [
    # tasks
    "SelflowTask", "SelinonTask", "FatalTaskError", "Retry",
    # running flows on Celery (selflow.api; imported on first use, so `import selflow` needs no Celery)
    "init", "run_flow", "run_flow_selective", "FlowHandle",
    # errors
    "SelflowError",
]

_API = frozenset({"init", "run_flow", "run_flow_selective", "FlowHandle", "get_runtime", "set_runtime"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from selflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'selflow' has no attribute {name!r}")
