"""A trace function for docs/examples/tracing.yml: keeps the failures it is told about."""

FAILURES = []


def record_event(event, details):
    """Called with every event's name and payload; here only failures are kept."""
    if event in ("TASK_FAILURE", "FLOW_FAILURE"):
        FAILURES.append((details["flow_name"], details.get("task_name"), details.get("what") or details.get("reason")))
