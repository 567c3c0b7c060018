"""The storage adapter interface, its errors, and helpers the bundled adapters share.

An adapter keeps task results somewhere (memory, files, Redis, S3, PostgreSQL, MongoDB). The
method names and argument orders are Selinon's, so a Selinon ``DataStorage`` subclass works
unchanged: the ``StoragePool`` calls adapters by these names and never checks their class.

Contract every bundled adapter keeps (and ``tests/storages/test_storage_contract.py`` checks):

* A record is found by ``task_id``; ``flow_name`` and ``task_name`` must be the ones it was
  stored with, otherwise it is not found.
* ``store`` of an id that is already stored replaces the record (a re-delivered task may run twice).
* A miss raises ``RecordNotFound``, from ``retrieve`` and from ``delete`` alike.
* Results are JSON data (dicts, lists, strings, numbers, booleans, None) unless an adapter says
  otherwise.
* Nothing connects in ``__init__``; ``connect()`` does, and the pool calls it on first use.
"""

from __future__ import annotations

import importlib
import json
import pickle
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

from selflow.errors import SelflowError, StorageError

__all__ = ["DataStorage", "MissingDependencyError", "RecordNotFound", "StorageOperationError"]


class RecordNotFound(StorageError):
    """No record is stored for this task id (under this flow and task name)."""

    def __init__(self, flow_name: str, task_name: str, task_id: str, *, storage_name: str | None = None):
        self.flow_name = flow_name
        self.task_name = task_name
        self.task_id = task_id
        self.storage_name = storage_name
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" in storage '{self.storage_name}'" if self.storage_name else ""
        return f"no record{where} for task '{self.task_name}' of flow '{self.flow_name}' with id '{self.task_id}'"

    def __str__(self) -> str:  # the pool names the storage after the adapter raised
        return self._text()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_not_found, (self.flow_name, self.task_name, self.task_id, self.storage_name))


class StorageOperationError(StorageError):
    """An adapter failed while building, connecting, reading, writing or deleting.

    ``cause`` is the adapter's own exception (also chained as ``__cause__``).
    """

    def __init__(self, storage_name: str, operation: str, cause: BaseException, *, task_name: str | None = None):
        self.storage_name = storage_name
        self.operation = operation
        self.cause = cause
        self.task_name = task_name
        about = f" for task '{task_name}'" if task_name else ""
        super().__init__(f"storage '{storage_name}' failed to {operation}{about}: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable even when the cause is not
        try:
            pickle.dumps(self.cause)
            cause: BaseException | None = self.cause
        except Exception:  # noqa: BLE001 - the message keeps what the cause said
            cause = None
        return (_rebuild_operation_error, (self.storage_name, self.operation, cause, self.task_name, str(self)))


def _rebuild_not_found(flow_name: str, task_name: str, task_id: str, storage_name: str | None) -> RecordNotFound:
    return RecordNotFound(flow_name, task_name, task_id, storage_name=storage_name)


def _rebuild_operation_error(storage_name: str, operation: str, cause: BaseException | None, task_name: str | None,
                             message: str) -> StorageOperationError:
    error = StorageOperationError.__new__(StorageOperationError)
    StorageError.__init__(error, message)
    error.storage_name, error.operation, error.task_name = storage_name, operation, task_name
    error.cause = cause if cause is not None else RuntimeError(message)
    return error


class MissingDependencyError(SelflowError):
    """An optional library an adapter needs is not installed; the message says what to install."""


def require(module: str, adapter: str, install: str) -> ModuleType:
    """Import ``module`` for ``adapter``, or raise ``MissingDependencyError`` saying ``install``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{adapter} needs {module.split('.')[0]}: {install}") from exc


class DataStorage(ABC):
    """Base class for storage adapters (Selinon's ``DataStorage`` interface).

    The YAML ``configuration`` reaches ``__init__``: a mapping as keyword arguments, anything
    else as one positional argument. ``__init__`` must not connect.
    """

    @abstractmethod
    def connect(self) -> None:
        """Open connections or clients; called by the pool before first use."""

    @abstractmethod
    def is_connected(self) -> bool:
        """Whether ``connect`` has been called and ``disconnect`` has not (cheap: no round trip)."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close what ``connect`` opened; calling it when not connected does nothing."""

    @abstractmethod
    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        """Return the result stored for ``task_id``.

        Raises:
            RecordNotFound: nothing is stored for ``task_id`` under this flow and task name.
        """

    @abstractmethod
    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> Any:
        """Store ``result``, replacing any earlier one for ``task_id``; return the record id."""

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> Any:
        """Store a failure (``exc_info`` = ``{"type", "message", "traceback"}``); return the record id.

        Optional: the default raises ``NotImplementedError``, which the pool reports as an omitted
        store (``STORAGE_OMIT_STORE_ERROR``) and otherwise ignores.
        """
        raise NotImplementedError(f"{type(self).__name__} does not store errors")

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        """Delete the record of ``task_id``.

        Optional: the default raises ``NotImplementedError``.

        Raises:
            RecordNotFound: nothing is stored for ``task_id`` under this flow and task name.
        """
        raise NotImplementedError(f"{type(self).__name__} does not delete records")


# --- helpers shared by the bundled adapters ----------------------------------------------


def make_record(node_args: Any, flow_name: str, task_name: str, task_id: str, **fields: Any) -> dict[str, Any]:
    """The JSON record the Redis, memory and MongoDB adapters keep per task id."""
    return {"node_args": node_args, "flow_name": flow_name, "task_name": task_name, "task_id": task_id, **fields}


def record_matches(record: Any, flow_name: str, task_name: str) -> bool:
    return isinstance(record, dict) and record.get("flow_name") == flow_name and record.get("task_name") == task_name


def to_json(value: Any) -> str:
    """JSON text of ``value``; a result that is not JSON data fails here, with a clear TypeError."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_exc_info(exc_info: Any) -> dict[str, str]:
    if not isinstance(exc_info, dict):
        raise TypeError(f"exc_info must be a dict with type, message and traceback, not {type(exc_info).__name__}")
    return {key: str(exc_info.get(key, "")) for key in ("type", "message", "traceback")}
