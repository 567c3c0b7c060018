"""``StoragePool``: the one place that builds, connects, caches, traces and guards storage adapters.

A pool is built from the tables (or plain specs) and owns one adapter per storage. Nothing is
imported, built or connected until a task first needs its storage. What the pool adds around
the adapters, so that no adapter has to:

* **Lazy, thread-safe set-up.** The first use of a storage imports its class, expands its
  ``configuration`` (typed ``{VAR}`` expansion, see ``selflow.storages.config``), builds the
  adapter and connects it, under a lock of that storage, checked twice. After that no lock is
  taken around reads or writes: adapters must be safe to call from several threads at once (the
  bundled ones are).
* **Names.** ``storage_task_name`` is the name a task's records are kept under, for ``store``,
  ``store_error``, ``retrieve`` and ``delete`` alike.
* **Read-only tasks.** A ``storage_readonly`` task can use its adapter (``adapter_for_task``) and
  read, but ``store`` and ``store_error`` keep nothing for it.
* **Output schemas.** ``store`` (and ``validate_result``) check a result against the task's
  ``output_schema`` with a validator built once per task; a mismatch raises ``OutputSchemaError``.
* **Result cache.** ``retrieve`` asks the storage's cache first and adds what it reads. A cache
  that fails is reported (``TASK_RESULT_CACHE_ISSUE``) and bypassed.
* **Errors.** A miss is ``RecordNotFound`` (with the storage name filled in). Any other adapter
  failure is reported (``STORAGE_ISSUE``) and raised as ``StorageOperationError``, which names the
  storage and keeps the adapter's exception as ``cause``. selflow's own errors (a missing
  optional library, a bad configuration, an import that fails) pass through as they are.
* **Tracing.** ``tracer(event_name, details)`` is called for each event below; a tracer that
  raises is logged and never breaks the operation.

Events, with their details (every storage event has ``storage_name``; task events also have
``flow_name``, ``task_name``, ``task_id`` and ``storage_task_name``):

=============================  ==========================================================
``STORAGE_CONNECT``            an adapter connected (traced once its lock is released, so
                               a tracer may use the pool, e.g. a ``storage`` trace backend)
``STORAGE_DISCONNECT``         ``close()`` disconnected an adapter
``STORAGE_RETRIEVE``           before the adapter is asked for a result (a cache miss)
``STORAGE_RETRIEVED``          the adapter returned it
``STORAGE_STORE``              before a result is written
``STORAGE_STORED``             it was written; ``record_id``
``STORAGE_STORE_ERROR``        a task's error was written; ``record_id``, ``what``
``STORAGE_OMIT_STORE_ERROR``   the adapter does not store errors (``NotImplementedError``)
``STORAGE_DELETE``             before the adapter deletes a record
``STORAGE_DELETED``            it was deleted
``STORAGE_ISSUE``              an adapter failed; ``operation``, ``what`` (the traceback)
``TASK_RESULT_CACHE_GET``      before the cache is asked; then ``_HIT`` or ``_MISS``
``TASK_RESULT_CACHE_ADD``      before a result read from the adapter is added to the cache
``TASK_RESULT_CACHE_ISSUE``    the cache raised; ``operation``, ``what``
=============================  ==========================================================
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable, Iterable, Mapping

from selflow.codegen.model import StorageSpec, TaskSpec
from selflow.errors import SelflowError, StorageError
from selflow.refs import resolve
from selflow.storages.base import RecordNotFound, StorageOperationError
from selflow.storages.config import constructor_arguments

__all__ = ["OutputSchemaError", "StoragePool", "Tracer"]

log = logging.getLogger(__name__)

#: ``tracer(event_name, details)``; what it returns is ignored.
Tracer = Callable[[str, dict[str, Any]], Any]


class OutputSchemaError(SelflowError):
    """A task's result does not match its ``output_schema``.

    ``path`` is the JSON path of the first failing value (``$`` for the whole result),
    ``reason`` what is wrong with it, and ``validator`` the schema keyword that failed.
    """

    def __init__(self, task_name: str, path: str, reason: str, validator: str | None = None):
        self.task_name = task_name
        self.path = path
        self.reason = reason
        self.validator = validator
        super().__init__(f"result of task '{task_name}' does not match its output_schema at {path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_name, self.path, self.reason, self.validator))


def compile_schema(schema: Any) -> Any:
    """A jsonschema validator for ``schema`` (the draft its ``$schema`` names, else the latest)."""
    import jsonschema

    return jsonschema.validators.validator_for(schema)(schema)


class _Slot:
    """One storage: its spec, and the adapter and cache once they are built."""

    __slots__ = ("spec", "lock", "adapter", "cache")

    def __init__(self, spec: StorageSpec):
        self.spec = spec
        self.lock = threading.Lock()
        self.adapter: Any = None
        self.cache: Any = None


class StoragePool:
    """The storages of one configuration, built and connected on first use.

    Parameters:
        tables: ``SystemTables`` or ``SystemSpec`` (anything with ``storages`` and ``tasks``), or
            the storage specs alone (a mapping by name or an iterable), with ``tasks`` given apart.
        tasks: the task specs (a mapping by name or an iterable), when ``tables`` has none.
        tracer: ``tracer(event_name, details)``, called for every storage event.

    Raises:
        StorageError: a task names a storage that is not among the storages.
    """

    def __init__(self, tables: Any, *, tasks: Mapping[str, TaskSpec] | Iterable[TaskSpec] | None = None,
                 tracer: Tracer | None = None):
        storage_specs, task_specs = _split_specs(tables, tasks)
        self._slots: dict[str, _Slot] = {spec.name: _Slot(spec) for spec in storage_specs}
        self._tasks: dict[str, TaskSpec] = {spec.name: spec for spec in task_specs}
        for task in self._tasks.values():
            if task.storage is not None and task.storage not in self._slots:
                raise StorageError(f"task '{task.name}' uses storage '{task.storage}', which is not defined "
                                   f"(storages: {', '.join(sorted(self._slots)) or 'none'})")
        self._tracer = tracer
        self._validators: dict[str, Any] = {}
        self._validators_lock = threading.Lock()

    # --- what tasks have -------------------------------------------------------------------

    def storage_name(self, task_name: str) -> str | None:
        """The storage ``task_name`` uses, or None."""
        task = self._tasks.get(task_name)
        return task.storage if task is not None else None

    def stores_result(self, task_name: str) -> bool:
        """Whether ``store`` keeps the results of ``task_name`` (it has a storage, not read-only)."""
        task = self._tasks.get(task_name)
        return task is not None and task.storage is not None and not task.storage_readonly

    def adapter_for_task(self, task_name: str) -> Any:
        """The connected adapter of the storage ``task_name`` uses (for ``SelflowTask.storage``), or None."""
        name = self.storage_name(task_name)
        return self.adapter_for_storage(name) if name is not None else None

    def adapter_for_storage(self, storage_name: str) -> Any:
        """The adapter of ``storage_name``, built and connected if it is not yet."""
        try:
            slot = self._slots[storage_name]
        except KeyError:
            raise StorageError(f"no storage named '{storage_name}' "
                               f"(storages: {', '.join(sorted(self._slots)) or 'none'})") from None
        return self._connected(slot)

    # --- operations ------------------------------------------------------------------------

    def validate_result(self, task_name: str, result: Any) -> None:
        """Check ``result`` against the ``output_schema`` of ``task_name``, if it has one.

        Raises:
            OutputSchemaError: the result does not match; names the task and the failing path.
        """
        task = self._tasks.get(task_name)
        if task is None or task.output_schema is None:
            return
        validator = self._validators.get(task_name)
        if validator is None:
            with self._validators_lock:
                validator = self._validators.get(task_name)
                if validator is None:
                    validator = self._validators[task_name] = compile_schema(task.output_schema)
        import jsonschema

        error = jsonschema.exceptions.best_match(validator.iter_errors(result))
        if error is not None:
            raise OutputSchemaError(task_name, error.json_path, error.message, str(error.validator))

    def store(self, task_name: str, flow_name: str, task_id: str, node_args: Any, result: Any) -> Any:
        """Check ``result`` against the output schema, then store it; return the record id.

        Returns None, storing nothing, when the task has no storage or a read-only one.

        Raises:
            OutputSchemaError: the result does not match the task's output schema.
            StorageOperationError: the adapter failed.
        """
        self.validate_result(task_name, result)
        if not self.stores_result(task_name):
            return None
        slot, details = self._task_slot(task_name, flow_name, task_id)
        adapter = self._connected(slot)
        self._trace("STORAGE_STORE", details)
        record_id = self._call(slot, "store", details, adapter.store, node_args, flow_name,
                               details["storage_task_name"], task_id, result)
        self._forget(slot, details)  # a re-delivered task replaced its record
        self._trace("STORAGE_STORED", {**details, "record_id": record_id})
        return record_id

    def store_error(self, task_name: str, flow_name: str, task_id: str, node_args: Any,
                    exc_info: dict[str, str]) -> Any:
        """Store a task failure (``exc_info`` = ``{"type", "message", "traceback"}``); return the record id.

        Returns None when the task has no storage or a read-only one, and when the adapter does
        not store errors (then ``STORAGE_OMIT_STORE_ERROR`` is traced).
        """
        if not self.stores_result(task_name):
            return None
        slot, details = self._task_slot(task_name, flow_name, task_id)
        adapter = self._connected(slot)
        try:
            record_id = self._call(slot, "store error", details, adapter.store_error, node_args, flow_name,
                                   details["storage_task_name"], task_id, exc_info)
        except _Omitted:
            self._trace("STORAGE_OMIT_STORE_ERROR", {**details, "what": _error_text(exc_info)})
            return None
        self._trace("STORAGE_STORE_ERROR", {**details, "record_id": record_id, "what": _error_text(exc_info)})
        return record_id

    def retrieve(self, task_name: str, flow_name: str, task_id: str) -> Any:
        """The stored result of ``task_id``, from the storage's cache or the adapter.

        Raises:
            RecordNotFound: nothing is stored for it.
            StorageError: the task has no storage, or the adapter failed.
        """
        slot, details = self._task_slot(task_name, flow_name, task_id)
        stored_name = details["storage_task_name"]
        cache = self._cache(slot)
        self._trace("TASK_RESULT_CACHE_GET", details)
        try:
            result = cache.get(task_id, stored_name, flow_name)
        except Exception as exc:  # noqa: BLE001 - any cache failure is a miss
            if not _is_cache_miss(exc):
                self._trace("TASK_RESULT_CACHE_ISSUE", {**details, "operation": "get", "what": _what(exc)})
            self._trace("TASK_RESULT_CACHE_MISS", details)
        else:
            self._trace("TASK_RESULT_CACHE_HIT", details)
            return result
        adapter = self._connected(slot)
        self._trace("STORAGE_RETRIEVE", details)
        result = self._call(slot, "retrieve", details, adapter.retrieve, flow_name, stored_name, task_id)
        self._trace("STORAGE_RETRIEVED", details)
        self._trace("TASK_RESULT_CACHE_ADD", details)
        try:
            cache.add(task_id, result, stored_name, flow_name)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the read
            self._trace("TASK_RESULT_CACHE_ISSUE", {**details, "operation": "add", "what": _what(exc)})
        return result

    def delete(self, task_name: str, flow_name: str, task_id: str) -> None:
        """Delete the stored result of ``task_id`` (and forget it in the cache).

        Raises:
            RecordNotFound: nothing is stored for it.
            StorageError: the task has no storage, or the adapter failed or cannot delete.
        """
        slot, details = self._task_slot(task_name, flow_name, task_id)
        adapter = self._connected(slot)
        self._trace("STORAGE_DELETE", details)
        try:
            self._call(slot, "delete", details, adapter.delete, flow_name, details["storage_task_name"], task_id)
        except _Omitted as omitted:
            raise StorageOperationError(slot.spec.name, "delete", omitted.cause,
                                        task_name=task_name) from omitted.cause
        finally:
            self._forget(slot, details)
        self._trace("STORAGE_DELETED", details)

    def close(self) -> None:
        """Disconnect every connected adapter; a later use connects again. Failures are logged."""
        for slot in self._slots.values():
            details = {"storage_name": slot.spec.name}
            with slot.lock:
                adapter = slot.adapter
                try:
                    disconnected = adapter is not None and adapter.is_connected()
                    if disconnected:
                        adapter.disconnect()
                except Exception as exc:  # noqa: BLE001 - closing the others matters more
                    log.warning("storage %r failed to disconnect: %s", slot.spec.name, exc)
                    event = ("STORAGE_ISSUE", {**details, "operation": "disconnect", "what": _what(exc)})
                else:
                    event = ("STORAGE_DISCONNECT", details) if disconnected else None
            if event is not None:
                self._trace(*event)

    def __enter__(self) -> StoragePool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------

    def _task_slot(self, task_name: str, flow_name: str, task_id: str) -> tuple[_Slot, dict[str, Any]]:
        task = self._tasks.get(task_name)
        if task is None or task.storage is None:
            raise StorageError(f"task '{task_name}' has no storage")
        details = {"storage_name": task.storage, "flow_name": flow_name, "task_name": task_name,
                   "task_id": task_id, "storage_task_name": task.storage_task_name or task_name}
        return self._slots[task.storage], details

    def _forget(self, slot: _Slot, details: dict[str, Any]) -> None:
        """Drop a record from the storage's cache, if the cache can (``remove``; Selinon's cannot)."""
        remove = getattr(self._cache(slot), "remove", None)
        if remove is None:
            return
        try:
            remove(details["task_id"], details["storage_task_name"], details["flow_name"])
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail the operation
            self._trace("TASK_RESULT_CACHE_ISSUE", {**details, "operation": "remove", "what": _what(exc)})

    def _connected(self, slot: _Slot) -> Any:
        adapter = slot.adapter
        if adapter is not None and adapter.is_connected():
            return adapter
        details = {"storage_name": slot.spec.name}
        events: list[tuple[str, dict[str, Any]]] = []  # traced once the lock is released
        try:
            with slot.lock:
                if slot.adapter is None:
                    slot.adapter = self._call(slot, "build the adapter", details, self._build, slot.spec,
                                              events=events)
                adapter = slot.adapter
                if not adapter.is_connected():
                    self._call(slot, "connect", details, adapter.connect, events=events)
                    events.append(("STORAGE_CONNECT", details))
        finally:
            for event, event_details in events:
                self._trace(event, event_details)
        return adapter

    def _build(self, spec: StorageSpec) -> Any:
        cls = resolve(spec.ref)
        args, kwargs = constructor_arguments(spec.configuration, cls, storage_name=spec.name)
        return cls(*args, **kwargs)

    def _cache(self, slot: _Slot) -> Any:
        cache = slot.cache
        if cache is None:
            events: list[tuple[str, dict[str, Any]]] = []
            try:
                with slot.lock:
                    if slot.cache is None:
                        spec = slot.spec.cache
                        slot.cache = self._call(slot, f"build its cache {spec.ref}", {"storage_name": slot.spec.name},
                                                lambda: resolve(spec.ref)(**dict(spec.options)), events=events)
                    cache = slot.cache
            finally:
                for event, event_details in events:
                    self._trace(event, event_details)
        return cache

    def _call(self, slot: _Slot, operation: str, details: dict[str, Any], function: Callable[..., Any],
              *args: Any, events: list[tuple[str, dict[str, Any]]] | None = None) -> Any:
        """Run one adapter call, turning its failures into selflow errors (and ``STORAGE_ISSUE``).

        With ``events``, the issue is appended there instead of traced (the caller holds a lock
        and traces after releasing it, so a tracer may use the pool).
        """
        try:
            return function(*args)
        except RecordNotFound as exc:
            if exc.storage_name is None:
                exc.storage_name = slot.spec.name
            raise
        except NotImplementedError as exc:
            if operation in ("store error", "delete"):
                raise _Omitted(exc) from exc
            issue: BaseException = exc
            wrapped: BaseException | None = StorageOperationError(slot.spec.name, operation, exc,
                                                                  task_name=details.get("task_name"))
        except SelflowError as exc:
            issue, wrapped = exc, None
        except Exception as exc:
            issue = exc
            wrapped = StorageOperationError(slot.spec.name, operation, exc, task_name=details.get("task_name"))
        event = ("STORAGE_ISSUE", {**details, "operation": operation, "what": _what(issue)})
        if events is None:
            self._trace(*event)
        else:
            events.append(event)
        if wrapped is None:
            raise issue
        raise wrapped from issue

    def _trace(self, event: str, details: dict[str, Any]) -> None:
        if self._tracer is None:
            return
        try:
            self._tracer(event, details)
        except Exception:  # noqa: BLE001 - a broken tracer must never break storage
            log.exception("tracer %r failed on %s", self._tracer, event)


class _Omitted(Exception):
    """An optional adapter method (store_error, delete) is not implemented."""

    def __init__(self, cause: NotImplementedError):
        super().__init__(str(cause))
        self.cause = cause


def _is_cache_miss(exc: BaseException) -> bool:
    # Selinon-style caches raise their own CacheMissError: accept any class of that name
    return any(cls.__name__ == "CacheMissError" for cls in type(exc).__mro__)


def _error_text(exc_info: Any) -> str:
    if isinstance(exc_info, dict):
        return str(exc_info.get("traceback") or f"{exc_info.get('type', '')}: {exc_info.get('message', '')}")
    return str(exc_info)


def _what(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _values(specs: Any) -> list[Any]:
    if specs is None:
        return []
    if isinstance(specs, Mapping):
        return list(specs.values())
    return list(specs)


def _split_specs(tables: Any, tasks: Any) -> tuple[list[StorageSpec], list[TaskSpec]]:
    if hasattr(tables, "storages") and not isinstance(tables, (Mapping, list, tuple)):
        storages = _values(tables.storages)
        task_list = _values(tasks if tasks is not None else getattr(tables, "tasks", None))
    else:
        storages, task_list = _values(tables), _values(tasks)
    for spec in storages:
        if not isinstance(spec, StorageSpec):
            raise TypeError(f"expected StorageSpec, got {type(spec).__name__}")
    return storages, task_list
