"""Checks made before a flow is submitted, so that mistakes fail fast with a clear message."""

from __future__ import annotations

from selflow.codegen.issues import suggestion
from selflow.errors import UnknownFlowError
from selflow.refs import resolve
from selflow.tables import SystemTables


def flows_reached(tables: SystemTables, flow_name: str) -> list[str]:
    """``flow_name`` and every sub-flow it can start, transitively."""
    seen = [flow_name]
    for name in seen:
        for node in sorted(tables.flows[name].nodes_started()):
            if tables.is_flow(node) and node not in seen:
                seen.append(node)
    return seen


def check_flow_runnable(tables: SystemTables, flow_name: str) -> None:
    """The flow exists and every task it (or a sub-flow) may run imports.

    Raises ``UnknownFlowError`` (with a suggestion) or ``ImportRefError`` naming the task.
    """
    if flow_name not in tables.flows:
        raise UnknownFlowError(f"unknown flow '{flow_name}'{suggestion(flow_name, tables.flows)}; "
                               f"flows: {', '.join(sorted(tables.flows))}")
    for name in flows_reached(tables, flow_name):
        for node in sorted(tables.flows[name].nodes_started()):
            if tables.is_task(node):
                resolve(tables.tasks[node].ref)
