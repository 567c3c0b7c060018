"""Selective runs: run only the parts of a flow needed to (re)compute some tasks.

A plan maps each flow to the edges allowed to fire and, per edge, the destinations to start:
``{"task_names": [...], "edges": {flow: {edge_id: [names]}}}``. It is plain JSON, so it travels in
the flow state and to sub-flows.
"""

from __future__ import annotations

from typing import Any, Sequence

from selflow.errors import SelectiveNoPathError, UnknownFlowError
from selflow.tables import SystemTables

Plan = dict[str, Any]


def compute_plan(tables: SystemTables, flow_name: str, task_names: Sequence[str], *,
                 follow_subflows: bool = False, run_subsequent: bool | Sequence[str] = False) -> Plan:
    """The edges of ``flow_name`` (and sub-flows, when followed) on every path to ``task_names``."""
    if flow_name not in tables.flows:
        raise UnknownFlowError(f"unknown flow '{flow_name}'")
    edges: dict[str, dict[str, set[str]]] = {}
    for task in task_names:
        if not _reach(tables, flow_name, task, edges, follow_subflows, set()):
            raise SelectiveNoPathError(f"no path to node '{task}' in flow '{flow_name}'"
                                       + ("" if follow_subflows else " (try follow_subflows)"))
    if run_subsequent:
        flows = [flow_name] if run_subsequent is True else list(run_subsequent)
        for name in flows:
            _add_subsequent(tables, name, set(task_names), edges)
    return {
        "task_names": sorted(set(task_names)),
        "edges": {flow: {edge: sorted(names) for edge, names in sorted(plan.items())}
                  for flow, plan in sorted(edges.items())},
    }


def _reach(tables: SystemTables, flow_name: str, target: str, edges: dict[str, dict[str, set[str]]],
           follow_subflows: bool, seen_flows: set[str]) -> bool:
    """Walk back from ``target`` to the starting edges, recording every edge on the way."""
    flow = tables.flows[flow_name]
    seen_flows = seen_flows | {flow_name}
    targets = {target} if target in _nodes(flow) else set()
    if follow_subflows:
        for name in sorted(_nodes(flow)):
            if name in tables.flows and name not in seen_flows and \
                    _reach(tables, name, target, edges, follow_subflows, seen_flows):
                targets.add(name)
    if not targets:
        return False
    plan = edges.setdefault(flow_name, {})
    frontier, visited = list(targets), set(targets)
    while frontier:
        node = frontier.pop()
        for edge in flow.edges:
            if node in edge.to_nodes:
                plan.setdefault(edge.id, set()).add(node)
                for source in edge.from_nodes:
                    if source not in visited:
                        visited.add(source)
                        frontier.append(source)
    return True


def _add_subsequent(tables: SystemTables, flow_name: str, reached: set[str],
                    edges: dict[str, dict[str, set[str]]]) -> None:
    """Also run everything that follows the requested tasks, to a fixed point."""
    flow = tables.flows[flow_name]
    plan = edges.setdefault(flow_name, {})
    changed = True
    while changed:
        changed = False
        for edge in flow.edges:
            if edge.from_nodes and set(edge.from_nodes) <= reached and not set(edge.to_nodes) <= plan.get(edge.id,
                                                                                                            set()):
                plan.setdefault(edge.id, set()).update(edge.to_nodes)
                reached.update(edge.to_nodes)
                changed = True


def _nodes(flow: Any) -> set[str]:
    return {n for e in flow.edges for n in (*e.from_nodes, *e.to_nodes)}
