"""Trace events as Celery custom events, for ``celery events`` and Flower.

Each event goes out through the app's event dispatcher as type ``selflow-<event>``: the name in
lower case with dashes (``FLOW_START`` -> ``selflow-flow-start``), the payload as the event's
fields. Celery routes it on the ``celeryev`` exchange like a worker's own events, so
``celery -A APP events --dump`` prints it and Flower receives it (Flower counts events per worker
and type; its task pages show only ``task-*`` events). Payload fields that Celery keeps for itself
(``hostname``, ``timestamp``, ``pid``, ...) are sent as ``selflow_<field>``.

Events are sent only while the app has events enabled (``worker_send_task_events``, which
``celery worker -E`` sets) unless ``enabled`` says otherwise. Inside a running task the event
carries the worker's node name as ``hostname``, so Flower files it under that worker.

Celery is imported only by this module, and only when a tracer is made.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["CeleryEventsTracer", "celery_event_type", "RESERVED_FIELDS"]

#: the event type's prefix (Celery's "group" of the event)
GROUP = "selflow"
#: fields of every Celery event, set by Celery; a payload field of the same name is renamed
RESERVED_FIELDS = frozenset({"type", "hostname", "timestamp", "utcoffset", "pid", "clock", "local_received"})


def celery_event_type(event: str) -> str:
    """``FLOW_START`` -> ``selflow-flow-start``."""
    return f"{GROUP}-{event.lower().replace('_', '-')}"


class CeleryEventsTracer:
    """Send each trace event as a Celery custom event through ``app``'s event dispatcher.

    Parameters:
        app: the Celery app.
        enabled: ``None`` (default): send while ``app.conf.worker_send_task_events`` is true;
            ``True``/``False``: always/never; or a callable asked at each event.
        hostname: the ``hostname`` of the events; default: the worker running the current task,
            else Celery's default (``gen<pid>@<host>``).
    """

    def __init__(self, app: Any, *, enabled: bool | Callable[[], bool] | None = None, hostname: str | None = None):
        import importlib

        importlib.import_module("celery")  # fail here, with an ImportError, when Celery is missing

        self.app = app
        self._enabled = enabled
        self.hostname = hostname

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            return bool(self.app.conf.worker_send_task_events)
        if callable(self._enabled):
            return bool(self._enabled())
        return bool(self._enabled)

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        if not self.enabled:
            return
        fields = {(f"selflow_{key}" if key in RESERVED_FIELDS else key): value for key, value in details.items()}
        with self.app.events.default_dispatcher(hostname=self._hostname()) as dispatcher:
            dispatcher.send(celery_event_type(event), **fields)

    def _hostname(self) -> str | None:
        if self.hostname is not None:
            return self.hostname
        task = self.app.current_worker_task
        return getattr(task.request, "hostname", None) if task is not None else None

    def __repr__(self) -> str:
        return f"CeleryEventsTracer({self.app.main or 'app'})"
