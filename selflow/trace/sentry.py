"""The ``sentry: {dsn}`` trace backend: warning and error events become Sentry messages.

Every event is added as a breadcrumb (category ``selflow``), so a message, or an exception a
task reports to Sentry itself, shows the flow's recent events. Warning and error events are also
sent as messages, tagged with the flow (``selflow.flow_id``, ``selflow.flow_name``) and the event,
with the payload as the ``selflow`` context, and grouped by event, flow and node rather than by
error text.

``sentry_sdk.init(dsn)`` runs once: not again when Sentry is already set up with this DSN, and
not at all when the application set Sentry up itself with another DSN (then that setup is used,
and a warning says so). sentry-sdk is the ``sentry`` extra: ``pip install 'selflow[sentry]'``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from selflow.trace.dispatch import TraceBackendError
from selflow.trace.events import Severity, severity_of

__all__ = ["SentryTracer", "INSTALL_HINT"]

log = logging.getLogger("selflow.tracing.sentry")

INSTALL_HINT = "the sentry trace backend needs sentry-sdk: pip install 'selflow[sentry]'"

#: payload fields that name the node an event is about, in the order they are looked for
_NODE_FIELDS = ("task_name", "node_name", "child_flow_name", "storage_name")


class SentryTracer:
    """Report events to Sentry (see the module docstring).

    Parameters:
        dsn: the project's DSN.
        init_options: more keyword arguments for ``sentry_sdk.init`` (e.g. ``environment``).
    """

    def __init__(self, dsn: str, *, init_options: Mapping[str, Any] | None = None):
        try:
            import sentry_sdk
        except ImportError as exc:
            raise TraceBackendError(INSTALL_HINT) from exc
        if not hasattr(sentry_sdk, "new_scope"):  # sentry-sdk 1.x
            raise TraceBackendError(f"the sentry trace backend needs sentry-sdk 2 or newer "
                                    f"(found {sentry_sdk.VERSION}): pip install -U 'selflow[sentry]'")
        self.sdk = sentry_sdk
        self.dsn = dsn
        client = sentry_sdk.get_client()
        current = client.options.get("dsn") if client.is_active() else None
        if current is None:
            sentry_sdk.init(dsn=dsn, **dict(init_options or {}))
        elif current != dsn:
            log.warning("Sentry is already set up with another DSN; selflow's trace events go there")

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        severity = severity_of(event)
        sdk = self.sdk
        sdk.add_breadcrumb(category="selflow", message=event, level=severity.value, data=details)
        if severity is Severity.INFO:
            return
        with sdk.new_scope() as scope:
            node = next((str(details[f]) for f in _NODE_FIELDS if details.get(f) is not None), "")
            flow_name = details.get("flow_name")
            scope.set_tag("selflow.event", event)
            if details.get("dispatcher_id") is not None:
                scope.set_tag("selflow.flow_id", str(details["dispatcher_id"]))
            if flow_name is not None:
                scope.set_tag("selflow.flow_name", str(flow_name))
            if node:
                scope.set_tag("selflow.node", node)
            scope.set_context("selflow", details)
            scope.fingerprint = ["selflow", event, str(flow_name or ""), node]
            sdk.capture_message(_message(event, details, node), level=severity.value)

    def __repr__(self) -> str:
        return "SentryTracer()"


def _message(event: str, details: Mapping[str, Any], node: str) -> str:
    where = " ".join(part for part in (
        f"flow {details['flow_name']}" if details.get("flow_name") is not None else "",
        f"node {node}" if node else "",
    ) if part)
    why = details.get("what") or details.get("reason")
    text = f"selflow {event}"
    if where:
        text += f" in {where}"
    if why:
        text += f": {why}"
    return text
