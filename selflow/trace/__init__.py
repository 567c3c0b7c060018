"""Tracing: what happens in flows, sent to logging, JSON lines, your functions, storages, Sentry or Celery.

``TraceEvent`` names the events and ``EVENTS`` documents each one (severity and payload fields);
``emit`` sends an event to tracers (adding ``event`` and ``time``, making the payload JSON-safe,
isolating tracer failures); ``build_tracers`` makes the tracers of ``global.trace``. The backends
live in their own modules and import their optional packages (sentry-sdk, Celery) only when used.
"""

from __future__ import annotations

from selflow.trace.dispatch import StoragePool, TraceBackendError, Tracer, build_tracers, emit, json_safe, make_payload
from selflow.trace.events import EVENTS, FIELDS, EventInfo, Severity, TraceEvent, event_info, severity_of

__all__ = [
    # events
    "TraceEvent", "Severity", "EventInfo", "EVENTS", "FIELDS", "event_info", "severity_of",
    # sending
    "Tracer", "emit", "make_payload", "json_safe", "build_tracers", "StoragePool", "TraceBackendError",
]
