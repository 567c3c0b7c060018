"""The ``storage: {name, method}`` trace backend: ``<adapter>.<method>(event, details)`` on a storage.

The adapter comes from the storage pool (``pool.adapter_for_storage(name)``) on the first event,
not when the tracers are built: a storage connects on its first use, as it does for task results.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from selflow.trace.dispatch import StoragePool, TraceBackendError

__all__ = ["StorageTracer"]


class StorageTracer:
    """Call ``method`` of storage ``name``'s adapter for each event (default method: ``trace``)."""

    def __init__(self, pool: StoragePool, name: str, *, method: str = "trace"):
        self.pool = pool
        self.name = name
        self.method = method
        self._bound: Callable[[str, dict[str, Any]], Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        bound = self._bound
        if bound is None:
            bound = self._bind()
        bound(event, details)

    def _bind(self) -> Callable[[str, dict[str, Any]], Any]:
        with self._lock:
            if self._bound is None:
                adapter = self.pool.adapter_for_storage(self.name)
                method = getattr(adapter, self.method, None)
                if not callable(method):
                    raise TraceBackendError(f"storage '{self.name}' ({type(adapter).__name__}) has no method "
                                            f"'{self.method}' to trace with")
                self._bound = method
            return self._bound

    def __repr__(self) -> str:
        return f"StorageTracer({self.name}.{self.method})"
