"""The runtime's tracers count as "on" only while some backend would take an event."""

from __future__ import annotations

from celery import Celery

from selflow.runtime.services import ActiveTracers
from selflow.trace.celery_events import CeleryEventsTracer


def test_a_celery_events_tracer_that_sends_nothing_does_not_switch_tracing_on() -> None:
    # Given an app that does not send events (Celery's default)
    app = Celery("t", broker="memory://")
    events = CeleryEventsTracer(app)
    # Then tracers holding only that backend are off, so no payload is built for nobody
    assert not ActiveTracers((events,))
    # And they are on once the app sends events, or when another backend is there
    app.conf.worker_send_task_events = True
    assert ActiveTracers((events,))
    app.conf.worker_send_task_events = False
    assert ActiveTracers((events, lambda event, details: None))
    assert not ActiveTracers(())
