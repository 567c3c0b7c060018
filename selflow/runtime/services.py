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
from selflow.trace.dispatch import Tracer


@dataclass
class Services:
    storages: StoragePool
    admission: Admission
    tracers: tuple[Tracer, ...]


def build_services(tables: SystemTables, *, limiter: Limiter, celery_app: Any = None,
                   extra_tracers: tuple[Tracer, ...] = ()) -> Services:
    """Storages connect lazily, on first use; the pool traces through the same backends as the flows."""
    tracers: list[Tracer] = []
    pool = StoragePool(tables, tracer=lambda event, details: emit(tracers, event, details))
    tracers.extend(build_tracers(tables.trace, storage_pool=pool, celery_app=celery_app))
    tracers.extend(extra_tracers)
    return Services(storages=pool, admission=Admission(tables, limiter), tracers=tuple(tracers))
