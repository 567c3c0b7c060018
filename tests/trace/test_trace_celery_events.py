"""The Celery-events backend, against a real Celery event receiver on the real Redis broker.

Redis on 127.0.0.1:6379, database 11 (used by no other test). Without Redis the broker tests are
skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
import uuid
from typing import Any, Iterator

import pytest

from selflow.codegen.model import TraceSpec
from selflow.trace import TraceEvent, build_tracers, emit

celery = pytest.importorskip("celery")

from selflow.trace.celery_events import RESERVED_FIELDS, CeleryEventsTracer, celery_event_type  # noqa: E402

HOST, PORT, DB = "127.0.0.1", 6379, 11
BROKER = f"redis://{HOST}:{PORT}/{DB}"


def _require_redis() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        message = f"Redis is not running at {BROKER}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def app() -> Iterator[Any]:
    app = celery.Celery(f"selflow-trace-{uuid.uuid4().hex[:6]}", broker=BROKER, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    yield app
    app.close()


class Receiver:
    """An ``app.events.Receiver`` capturing every event in a thread, into a queue."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.receiver: Any = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.put})
            self.ready.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> Receiver:
        self.thread.start()
        assert self.ready.wait(10), "the event receiver did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.receiver.should_stop = True
        self.thread.join(10)

    def wait_for(self, send: Any, match: Any, *, timeout: float = 15.0) -> dict[str, Any]:
        """Call ``send()`` until an event matching ``match`` arrives (the receiver subscribes asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            send()
            try:
                while True:
                    event = self.events.get(timeout=0.3)
                    if match(event):
                        return event
            except queue.Empty:
                continue
        raise AssertionError(f"no matching Celery event within {timeout} s")


def test_event_type_names() -> None:
    assert celery_event_type("FLOW_START") == "selflow-flow-start"
    assert celery_event_type("DISPATCHER_INLINE_STEP") == "selflow-dispatcher-inline-step"
    types = [celery_event_type(e.value) for e in TraceEvent]
    assert len(set(types)) == len(types)


def test_a_trace_event_arrives_as_a_celery_custom_event(app: Any) -> None:
    _require_redis()
    # Given an app with events enabled (as `celery worker -E` sets) and a receiver on the broker
    app.conf.worker_send_task_events = True
    [tracer] = build_tracers((), celery_app=app)
    assert isinstance(tracer, CeleryEventsTracer)
    flow_id = uuid.uuid4().hex
    details = {"flow_name": "order", "dispatcher_id": flow_id, "node_args": {"order": 7, "items": ["a", "b"]},
               "parent": {}, "pid": 42, "hostname": "someone"}
    # When a FLOW_START event is emitted
    with Receiver(app) as receiver:
        event = receiver.wait_for(lambda: emit([tracer], TraceEvent.FLOW_START, details),
                                  lambda e: e.get("dispatcher_id") == flow_id)
    # Then the receiver got it as selflow-flow-start, with the payload as fields
    assert event["type"] == "selflow-flow-start"
    assert event["event"] == "FLOW_START"
    assert event["flow_name"] == "order"
    assert event["node_args"] == {"order": 7, "items": ["a", "b"]}
    assert event["parent"] == {}
    assert "time" in event and "timestamp" in event
    # and fields Celery keeps for itself were renamed, not lost
    assert event["selflow_pid"] == 42 and event["selflow_hostname"] == "someone"
    assert event["pid"] == os.getpid()


def test_warning_events_arrive_too(app: Any) -> None:
    _require_redis()
    tracer = CeleryEventsTracer(app, enabled=True, hostname="celery@trace-test")
    flow_id = uuid.uuid4().hex
    with Receiver(app) as receiver:
        event = receiver.wait_for(
            lambda: emit([tracer], TraceEvent.TASK_FAILURE, {"dispatcher_id": flow_id, "what": "ValueError: x"}),
            lambda e: e.get("dispatcher_id") == flow_id)
    assert event["type"] == "selflow-task-failure" and event["what"] == "ValueError: x"
    assert event["hostname"] == "celery@trace-test"


def test_nothing_is_sent_while_events_are_disabled(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an app without events: no connection may even be opened
    def no_dispatcher(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an event was sent while events are disabled")

    monkeypatch.setattr(app.events, "default_dispatcher", no_dispatcher)
    app.conf.worker_send_task_events = False
    tracer = CeleryEventsTracer(app)
    assert not tracer.enabled
    tracer("FLOW_START", {"dispatcher_id": "d"})
    assert not CeleryEventsTracer(app, enabled=False).enabled
    assert not CeleryEventsTracer(app, enabled=lambda: False).enabled
    assert CeleryEventsTracer(app, enabled=lambda: True).enabled


def test_reserved_fields_are_celerys() -> None:
    assert {"type", "hostname", "timestamp", "pid", "clock"} <= RESERVED_FIELDS


def test_build_tracers_adds_the_celery_tracer_last(app: Any) -> None:
    tracers = build_tracers([TraceSpec("json")], celery_app=app)
    assert isinstance(tracers[-1], CeleryEventsTracer) and len(tracers) == 2
