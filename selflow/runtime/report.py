"""A finished (or running) flow as one JSON-friendly report, sub-flows included."""

from __future__ import annotations

from typing import Any

from selflow.runtime.store import FlowStore
from selflow.tables import SystemTables


def flow_report(store: FlowStore, tables: SystemTables, flow_id: str) -> dict[str, Any]:
    """``flow_id``, ``flow``, ``status``, Selinon's ``finished_nodes``/``failed_nodes``, and ``nodes``.

    ``nodes`` lists every node of the flow and of its sub-flows, depth first, each with the flow it
    ran in, its status and its result (or error).
    """
    state = store.load_state(flow_id)
    if state is None:
        return {"flow_id": flow_id, "flow": None, "status": "unknown", "finished_nodes": {}, "failed_nodes": {},
                "nodes": []}
    result = state.result()
    nodes: list[dict[str, Any]] = []
    _collect(store, tables, flow_id, state.flow_name, _in_run_order(state.to_dict()), nodes, depth=0)
    return {"flow_id": flow_id, "flow": state.flow_name, "status": state.status, **result, "nodes": nodes}


def _collect(store: FlowStore, tables: SystemTables, flow_id: str, flow_name: str, result: dict[str, Any],
             nodes: list[dict[str, Any]], depth: int) -> None:
    for status, key in (("success", "finished_nodes"), ("failure", "failed_nodes")):
        for name, ids in result.get(key, {}).items():
            for node_id in ids:
                entry: dict[str, Any] = {"id": node_id, "name": name, "kind": "flow" if tables.is_flow(name) else "task",
                                         "flow": flow_name, "flow_id": flow_id, "status": status, "depth": depth}
                if status == "success" and not tables.is_flow(name):
                    entry["result"] = store.load_result(node_id)
                elif status == "failure":
                    error = store.load_error(node_id) or {}
                    entry["error"] = error.get("message", "")
                nodes.append(entry)
                if tables.is_flow(name):
                    child = store.load_state(node_id)
                    if child is not None:
                        _collect(store, tables, node_id, name, _in_run_order(child.to_dict()), nodes, depth + 1)


def _in_run_order(state: dict[str, Any]) -> dict[str, Any]:
    """Finished and failed nodes in the order the flow first saw each name (not sorted by name)."""
    failed: dict[str, list[str]] = {}
    for key in ("failed", "handled", "propagated"):
        for name, ids in state.get(key, {}).items():
            failed.setdefault(name, []).extend(ids)
    return {"finished_nodes": state.get("finished", {}), "failed_nodes": failed}
