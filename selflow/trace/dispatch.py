"""Sending trace events to tracers: ``emit`` (payload, isolation) and ``build_tracers`` (from the YAML).

A tracer is any callable ``tracer(event: str, details: dict) -> None``. ``emit`` hands every
tracer the same kind of payload: the emitter's details, made JSON-safe, plus ``event`` (the name)
and ``time`` (ISO 8601, UTC). A tracer that raises is logged and skipped: tracing never breaks a
flow.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from selflow.errors import SelflowError
from selflow.trace.events import TraceEvent

__all__ = ["Tracer", "TraceBackendError", "StoragePool", "emit", "make_payload", "json_safe", "build_tracers"]

#: not under "selflow.trace" (the trace lines themselves), so tracer failures reach the usual handlers
log = logging.getLogger("selflow.tracing")

#: a tracer: called with the event's name and its payload
Tracer = Callable[[str, dict[str, Any]], None]

#: containers nested deeper than this are shown by repr (a guard against self-referencing values)
MAX_DEPTH = 32


class TraceBackendError(SelflowError):
    """A ``global.trace`` entry cannot be set up (a missing package, no storage pool, a bad function)."""


class StoragePool(Protocol):
    """What the storage backend needs from a storage pool."""

    def adapter_for_storage(self, name: str) -> Any: ...


class _TraceSpec(Protocol):
    kind: str
    options: tuple[tuple[str, Any], ...]


# --- emitting ------------------------------------------------------------------------------


def emit(tracers: Sequence[Tracer], event: TraceEvent | str,
         details: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Send ``event`` to every tracer; returns the payload they got (None when there is no tracer).

    ``details`` are made JSON-safe; ``event`` and ``time`` are added (and win over details of the
    same names). A tracer that raises is logged with its traceback and the others still run.
    """
    if not tracers:
        return None
    payload = make_payload(event, details)
    name = payload["event"]
    for tracer in tracers:
        try:
            tracer(name, dict(payload))
        except Exception:  # noqa: BLE001 - a broken tracer must never break a flow
            log.warning("trace backend %r failed on %s", tracer, name, exc_info=True)
    return payload


def make_payload(event: TraceEvent | str, details: Mapping[str, Any] | None = None, *,
                 now: datetime | None = None) -> dict[str, Any]:
    """``details`` made JSON-safe, with ``event`` and ``time`` added."""
    payload: dict[str, Any] = {
        "event": _event_name(event),
        "time": (now or datetime.now(timezone.utc)).isoformat(timespec="microseconds"),
    }
    for key, value in json_safe(dict(details or {})).items():
        payload.setdefault(key, value)  # `event` and `time` are reserved
    return payload


def _event_name(event: TraceEvent | str) -> str:
    if isinstance(event, TraceEvent):
        return event.value
    name = str(event)
    if name not in TraceEvent.__members__:
        _warn_unknown(name)
    return name


@lru_cache(maxsize=None)
def _warn_unknown(name: str) -> None:
    log.warning("trace event %s is not a TraceEvent member (undocumented); sending it anyway", name)


def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` with only JSON types: tuples and sets become lists, keys strings, anything else its repr.

    Non-finite floats become their repr too (``'nan'``, ``'inf'``): they are not JSON.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth >= MAX_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {_key(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [json_safe(item, _depth + 1) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, _depth + 1)
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break tracing either
        return f"<unrepresentable {type(value).__name__}>"


def _key(key: Any) -> str:
    """A mapping key as JSON would write it (``1`` -> ``"1"``, ``None`` -> ``"null"``); others by repr."""
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int)) or (isinstance(key, float) and math.isfinite(key)):
        return json.dumps(key)
    return repr(key)


# --- building tracers from the configuration ------------------------------------------------


def build_tracers(trace_specs: Iterable[_TraceSpec], *, storage_pool: StoragePool | None = None,
                  celery_app: Any = None) -> tuple[Tracer, ...]:
    """The tracers of ``global.trace`` (``SystemTables.trace``), in order; repeated entries count once.

    Parameters:
        trace_specs: the compiled ``TraceSpec`` entries (kind logging, json, function, storage, sentry).
        storage_pool: where ``storage`` entries get their adapter (``adapter_for_storage(name)``),
            on their first event.
        celery_app: on Celery workers and clients: adds a tracer that sends every event as a Celery
            custom event, while the app has events enabled (``worker_send_task_events``).

    Raises:
        TraceBackendError: an entry cannot be set up: sentry-sdk is missing, a ``storage`` entry
            has no storage pool, a ``function`` entry does not import or is not callable.
    """
    tracers: list[Tracer] = []
    seen: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
    for spec in trace_specs:
        key = (spec.kind, tuple(spec.options))
        if key in seen:
            continue
        seen.add(key)
        tracers.append(_build_one(spec.kind, dict(spec.options), storage_pool))
    if celery_app is not None:
        from selflow.trace.celery_events import CeleryEventsTracer

        tracers.append(CeleryEventsTracer(celery_app))
    return tuple(tracers)


def _build_one(kind: str, options: dict[str, Any], storage_pool: StoragePool | None) -> Tracer:
    if kind == "logging":
        from selflow.trace.logging import LoggingTracer

        return LoggingTracer()
    if kind == "json":
        from selflow.trace.jsonlines import JsonLinesTracer

        return JsonLinesTracer()
    if kind == "function":
        from selflow.trace.function import FunctionTracer

        return FunctionTracer.from_options(options)
    if kind == "storage":
        from selflow.trace.storage import StorageTracer

        if storage_pool is None:
            raise TraceBackendError(f"trace storage '{options.get('name')}' needs a storage pool, and none was "
                                    f"given to build_tracers(storage_pool=...)")
        return StorageTracer(storage_pool, options["name"], method=options.get("method", "trace"))
    if kind == "sentry":
        from selflow.trace.sentry import SentryTracer

        return SentryTracer(options["dsn"])
    raise TraceBackendError(f"unknown trace backend '{kind}' (known: logging, json, function, storage, sentry)")
