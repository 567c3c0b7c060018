"""The Sentry backend, against the real sentry-sdk with a transport that keeps envelopes in memory.

No network: the transport is the SDK's only way out, and it only collects. Without sentry-sdk the
tests are skipped, unless ``CI`` is set (CI installs the ``test`` extra): then they fail.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import pytest

from selflow.trace import TraceBackendError, TraceEvent, emit

try:
    import sentry_sdk
    from sentry_sdk.transport import Transport
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CI"):
        raise
    pytest.skip("sentry-sdk is not installed (pip install 'selflow[sentry]')", allow_module_level=True)

from selflow.trace.sentry import INSTALL_HINT, SentryTracer  # noqa: E402

DSN = "https://public@sentry.shop.test/1"


class MemoryTransport(Transport):
    """Keeps every envelope; sends nothing."""

    envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        type(self).envelopes.append(envelope)


def _events() -> list[dict[str, Any]]:
    sentry_sdk.flush()
    return [item.payload.json for envelope in MemoryTransport.envelopes for item in envelope.items
            if item.type == "event"]


@pytest.fixture
def no_sentry() -> Iterator[None]:
    """No Sentry client before the test, and none left after it."""
    sentry_sdk.get_global_scope().set_client(None)
    MemoryTransport.envelopes = []
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def test_warning_events_become_messages_tagged_with_the_flow(no_sentry: None) -> None:
    # Given a Sentry tracer (which sets Sentry up)
    tracer = SentryTracer(DSN, init_options={"transport": MemoryTransport, "default_integrations": False})
    assert sentry_sdk.get_client().is_active() and sentry_sdk.get_client().options["dsn"] == DSN
    flow = {"flow_name": "order", "dispatcher_id": "flow-123"}
    # When a flow starts a task (info) and the task then fails (warning)
    with sentry_sdk.isolation_scope():
        emit([tracer], TraceEvent.TASK_START, {**flow, "task_name": "ChargeCard", "task_id": "t1"})
        emit([tracer], TraceEvent.TASK_FAILURE, {**flow, "task_name": "ChargeCard", "task_id": "t1",
                                                 "what": "ValueError: card expired"})
    # Then exactly one Sentry event was sent: the failure, tagged with the flow id
    [event] = _events()
    assert event["level"] == "warning"
    message = event.get("message") or event["logentry"]["message"]
    assert message == "selflow TASK_FAILURE in flow order node ChargeCard: ValueError: card expired"
    assert event["tags"]["selflow.flow_id"] == "flow-123"
    assert event["tags"]["selflow.flow_name"] == "order"
    assert event["tags"]["selflow.event"] == "TASK_FAILURE"
    assert event["contexts"]["selflow"]["task_id"] == "t1"
    assert event["fingerprint"] == ["selflow", "TASK_FAILURE", "order", "ChargeCard"]
    # with the earlier info event as a breadcrumb
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "selflow"]
    assert crumbs == ["TASK_START", "TASK_FAILURE"]


def test_error_events_are_errors(no_sentry: None) -> None:
    tracer = SentryTracer(DSN, init_options={"transport": MemoryTransport, "default_integrations": False})
    emit([tracer], TraceEvent.DISPATCHER_FAILURE, {"flow_name": "order", "dispatcher_id": "f", "what": "bug"})
    [event] = _events()
    assert event["level"] == "error"


def test_sentry_is_set_up_once(no_sentry: None) -> None:
    SentryTracer(DSN, init_options={"transport": MemoryTransport, "default_integrations": False})
    client = sentry_sdk.get_client()
    SentryTracer(DSN)  # building the tracers again (another install) keeps the client
    assert sentry_sdk.get_client() is client


def test_an_application_sentry_setup_is_kept(no_sentry: None, caplog: pytest.LogCaptureFixture) -> None:
    sentry_sdk.init(dsn="https://other@sentry.shop.test/2", transport=MemoryTransport, default_integrations=False)
    client = sentry_sdk.get_client()
    SentryTracer(DSN)
    assert sentry_sdk.get_client() is client
    assert any("another DSN" in r.getMessage() for r in caplog.records)


def test_missing_sentry_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # import sentry_sdk now raises ImportError
    with pytest.raises(TraceBackendError) as caught:
        SentryTracer(DSN)
    assert str(caught.value) == INSTALL_HINT
    assert "pip install 'selflow[sentry]'" in INSTALL_HINT
