"""The task API users write against: Selinon's names, so existing task classes run unchanged.

A task is a class with ``run(self, node_args)`` (subclass ``SelflowTask``; ``SelinonTask`` is an
alias) or a plain function ``f(node_args)``. Whatever it returns is its result: children read it
with ``parent_task_result`` and edge conditions test it, with or without a storage configured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from selflow.errors import FatalTaskError, NoParentNodeError, RequestError, SelflowError

if TYPE_CHECKING:
    from selflow.runtime.store import FlowStore

__all__ = ["FatalTaskError", "Retry", "SelflowTask", "SelinonTask"]


class Retry(SelflowError):
    """Raised by ``SelflowTask.retry``: run the task again after ``countdown`` seconds.

    These retries are not counted against ``max_retry``, as in Selinon.
    """

    def __init__(self, countdown: float = 0):
        super().__init__(f"retry in {countdown} s")
        self.countdown = countdown


class SelflowTask:
    """Base class for tasks; override ``run``."""

    def __init__(self, *, flow_name: str, task_name: str, parent: dict[str, Any] | None, task_id: str,
                 dispatcher_id: str, store: "FlowStore | None" = None, storage: Any = None,
                 storage_pool: Any = None):
        self.flow_name = flow_name
        self.task_name = task_name
        self.parent = parent or {}
        self.task_id = task_id
        self.dispatcher_id = dispatcher_id
        self.log = logging.getLogger(f"selflow.task.{task_name}")
        self._store = store
        self._storage = storage
        self._storage_pool = storage_pool

    def run(self, node_args: Any) -> Any:
        raise NotImplementedError(f"task {self.task_name} must implement run(node_args)")

    @property
    def storage(self) -> Any:
        """The storage adapter configured for this task (connected on first use), or None."""
        if self._storage is None and self._storage_pool is not None:
            self._storage = self._storage_pool.adapter_for_task(self.task_name)
        return self._storage

    def retry(self, countdown: float = 0) -> None:
        """Run this task again after ``countdown`` seconds (does not use up ``max_retry``)."""
        raise Retry(countdown)

    # --- parents ------------------------------------------------------------------------

    def parent_task_result(self, name: str) -> Any:
        """The result of the direct parent task ``name``."""
        node_id = self.parent.get(name)
        if not isinstance(node_id, str):
            raise NoParentNodeError(f"task {self.task_name} has no parent task '{name}' "
                                    f"(parents: {', '.join(sorted(self.parent)) or 'none'})")
        return self._require_store().load_result(node_id)

    def parent_flow_result(self, flow_names: str | Sequence[str], task_name: str, index: int = -1) -> Any:
        """The result of ``task_name`` inside a parent sub-flow (a path of names for nested ones).

        The sub-flow must propagate its finished nodes (``propagate_finished``) to this task.
        """
        return self._require_store().load_result(self._flow_node_id(flow_names, task_name, index))

    def parent_task_exception(self, name: str) -> dict[str, Any]:
        """The error of a failed parent task (fallbacks see the nodes whose failure they handle)."""
        node_id = self.parent.get(name)
        if not isinstance(node_id, str):
            raise NoParentNodeError(f"task {self.task_name} has no parent task '{name}'")
        return self._error_of(node_id, name)

    def parent_flow_exception(self, flow_names: str | Sequence[str], task_name: str,
                              index: int = -1) -> dict[str, Any]:
        return self._error_of(self._flow_node_id(flow_names, task_name, index), task_name)

    def _error_of(self, node_id: str, name: str) -> dict[str, Any]:
        error = self._require_store().load_error(node_id)
        if error is None:
            raise RequestError(f"parent '{name}' ({node_id}) did not fail")
        return error

    def _flow_node_id(self, flow_names: str | Sequence[str], task_name: str, index: int) -> str:
        path = [flow_names] if isinstance(flow_names, str) else list(flow_names)
        node: Any = self.parent
        for flow in path:
            if not isinstance(node, dict) or not isinstance(node.get(flow), dict):
                raise NoParentNodeError(f"no parent sub-flow {'/'.join(path)} for task {self.task_name}")
            node = node[flow]
        ids = node.get(task_name)
        if not isinstance(ids, list) or not ids:
            raise NoParentNodeError(f"sub-flow {'/'.join(path)} has no finished task '{task_name}'")
        try:
            return ids[index]
        except IndexError:
            raise NoParentNodeError(f"sub-flow {'/'.join(path)} ran '{task_name}' {len(ids)} time(s); "
                                    f"no index {index}") from None

    def _require_store(self) -> "FlowStore":
        if self._store is None:
            raise RequestError("this task runs outside a flow; no parent results are available")
        return self._store


#: Selinon's name, so ``from selflow import SelinonTask`` ports code by changing one import.
SelinonTask = SelflowTask
