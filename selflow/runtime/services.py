"""What a runtime needs beside the engine and the store, built once per process from the tables:
the storage pool, the admission limits, and the trace backends of ``global.trace``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selflow.runtime.admission import Admission
from selflow.runtime.limits import Limiter
from selflow.storages.pool import StoragePool
from selflow.tables import SystemTables
from selflow.trace import build_tracers, emit
from selflow.trace.celery_events import CeleryEventsTracer
from selflow.trace.dispatch import Tracer


class ActiveTracers(tuple):  # type: ignore[type-arg]
    """The tracers; false while none of them would take an event.

    The runtime builds an event's details, and ``emit`` its JSON-safe payload, only when its
    tracers are true. On Celery the events tracer is always there, and it drops every event while
    the app does not send events (Celery's default): counting it only while it is enabled keeps the
    hot path free of payloads nobody receives (about 5 % of a worker's CPU per task otherwise).
    """

    def __bool__(self) -> bool:
        return any(not isinstance(tracer, CeleryEventsTracer) or tracer.enabled for tracer in self)


@dataclass
class Services:
    storages: StoragePool
    admission: Admission
    tracers: tuple[Tracer, ...]


def build_services(tables: SystemTables, *, limiter: Limiter, celery_app: Any = None,
                   extra_tracers: tuple[Tracer, ...] = ()) -> Services:
    """Storages connect lazily, on first use; the pool traces through the same backends as the flows."""
    tracers = ActiveTracers()
    pool = StoragePool(tables, tracer=lambda event, details: emit(tracers, event, details))
    tracers = ActiveTracers((*build_tracers(tables.trace, storage_pool=pool, celery_app=celery_app), *extra_tracers))
    return Services(storages=pool, admission=Admission(tables, limiter), tracers=tracers)
