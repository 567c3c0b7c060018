"""Validation of the flow listing and the flow definitions: edges, failures and flow options."""

from __future__ import annotations

import dataclasses
from typing import Any

from selflow.codegen.issues import NODE_NAME, Issues, first_at, join_path, suggestion, type_name
from selflow.codegen.model import (
    PROPAGATE_FLAGS,
    EdgeSpec,
    FailureSpec,
    FlowSpec,
    ForeachSpec,
    GlobalSpec,
    SelectiveSpec,
    StorageSpec,
    TaskSpec,
    edge_id,
)
from selflow.codegen.validate_conditions import ConditionReader, PredicateCatalog
from selflow.codegen.validate_limits import FLOW_LIMIT_KEYS, read_flow_limits
from selflow.codegen.validate_nodes import read_cache, read_ref, read_sampling, read_throttling
from selflow.codegen.yamlsource import Mark, YList, YMap

FLOW_KEYS = ("name", "edges", "queue", "failures", "nowait", "eager_failures", "max_retry", "retry_countdown",
             "node_args_from_first", "sampling", "throttling", "cache") + PROPAGATE_FLAGS + FLOW_LIMIT_KEYS
EDGE_KEYS = ("from", "to", "condition", "foreach", "selective")
FAILURE_KEYS = ("nodes", "fallback", "condition", "propagate_failure")


def read_flow_listing(issues: Issues, items: list[tuple[Any, Mark]], tasks: dict[str, TaskSpec]) -> dict[str, Mark]:
    listed: dict[str, Mark] = {}
    for index, (name, mark) in enumerate(items):
        path = f"flows[{index}]"
        if not isinstance(name, str):
            issues.error(mark, path, f"must be a flow name (a string), not {type_name(name)}")
        elif not NODE_NAME.match(name):
            issues.error(mark, path, f"invalid node name '{name}': use letters, digits and '_', "
                                     "not starting with a digit")
        elif name in listed:
            issues.error(mark, path, f"flow '{name}' is listed twice")
        elif name in tasks:
            issues.error(mark, path, f"'{name}' names both a task and a flow; tasks and flows share one namespace")
        else:
            listed[name] = mark
    return listed


class FlowReader:
    """Reads every flow definition against the tasks, storages and listed flows."""

    def __init__(self, issues: Issues, tasks: dict[str, TaskSpec], storages: dict[str, StorageSpec],
                 listed: dict[str, Mark], global_spec: GlobalSpec, catalog: PredicateCatalog):
        self.issues = issues
        self.tasks = tasks
        self.storages = storages
        self.listed = listed
        self.global_spec = global_spec
        self.catalog = catalog
        self.nodes = set(tasks) | set(listed)

    def read_all(self, items: list[tuple[Any, Mark]]) -> dict[str, FlowSpec]:
        flows: dict[str, FlowSpec] = {}
        defined: dict[str, Mark] = {}
        for index, (item, mark) in enumerate(items):
            data = self.issues.mapping(item, mark, f"flow-definitions[{index}]", "a flow definition")
            if data is None:
                continue
            name = data.get("name")
            if not isinstance(name, str) or not name:
                self.issues.error(data.mark_of("name"), f"flow-definitions[{index}].name",
                                  "missing or empty flow name")
                continue
            path = f"flows.{name}"
            if name in defined:
                self.issues.error(data.mark_of("name"), join_path(path, "name"),
                                  f"flow '{name}' is defined twice (first at {first_at(defined[name], data.mark)})")
                continue
            defined[name] = data.mark_of("name")
            if name not in self.listed:
                self.issues.error(data.mark_of("name"), join_path(path, "name"),
                                  f"flow '{name}' is not in the 'flows' list of the nodes file"
                                  f"{suggestion(name, set(self.listed) - set(defined))}")
                continue
            flow = self.read_flow(data, name, path)
            if flow is not None:
                flows[name] = flow
        for name, mark in self.listed.items():
            if name not in defined:
                self.issues.error(mark, "flows", f"flow '{name}' is listed but never defined in a flow file")
        return flows

    # --- one flow -----------------------------------------------------------------------

    def read_flow(self, data: YMap, name: str, path: str) -> FlowSpec | None:
        issues = self.issues
        issues.keys(data, path, FLOW_KEYS, required=("name", "edges"))
        edges_value = data.get("edges")
        if "edges" in data and (not isinstance(edges_value, YList) or not edges_value):
            issues.error(data.mark_of("edges"), join_path(path, "edges"),
                         "a flow needs at least one edge" if edges_value in (None, [])
                         else f"must be a list of edges, not {type_name(edges_value)}")
        edges: list[EdgeSpec] = []
        if isinstance(edges_value, YList):
            for index, edge in enumerate(edges_value):
                spec = self._edge(edge, edges_value.mark_of(index), name, f"{path}.edges[{index}]")
                if spec is not None:
                    # an identical edge (Selinon starts its nodes once more) gets an id of its own
                    twins = sum(1 for e in edges if e.id.split("_")[0] == spec.id)
                    edges.append(dataclasses.replace(spec, id=f"{spec.id}_{twins + 1}") if twins else spec)
        failures = self._failures(data, path)
        started = {n for e in edges for n in e.to_nodes} | {n for f in failures for n in f.fallback or ()}
        sources = {n for e in edges for n in e.from_nodes} | {n for f in failures for n in f.nodes}
        flow_nodes = started | sources
        nowait = self._nowait(data, path, started, sources)
        eager = self._eager(data, path, started, flow_nodes, nowait, failures)
        propagate = self._propagate(data, path, started, sources, failures)
        self._check_foreach_node_args(data, path, edges, dict(propagate).get("propagate_node_args", frozenset()))
        queue = issues.string(data, "queue", path)
        queue = (issues.expand_env(queue, data.mark_of("queue"), join_path(path, "queue")) if queue
                 else self.global_spec.default_dispatcher_queue)
        node_args_from_first = issues.boolean(data, "node_args_from_first", path)
        flow = FlowSpec(
            name=name, edges=tuple(edges), queue=queue, failures=tuple(failures), nowait=frozenset(nowait),
            eager_failures=frozenset(eager), max_retry=issues.count(data, "max_retry", path),
            retry_countdown=issues.seconds(data, "retry_countdown", path),
            node_args_from_first=node_args_from_first, propagate=propagate,
            sampling=read_sampling(issues, data, path), throttling=read_throttling(issues, data, "throttling", path),
            cache=read_cache(issues, data, path), mark=data.mark, **read_flow_limits(issues, data, path))
        if isinstance(edges_value, YList) and edges_value and len(edges) == len(edges_value):
            self._graph_checks(flow, edges_value, data, path)
        return flow

    def _node_names(self, data: YMap, key: str, path: str) -> list[str]:
        names = []
        for node, mark in self.issues.names(data, key, path):
            if node in self.nodes:
                names.append(node)
            else:
                self.issues.error(mark, join_path(path, key), f"unknown node '{node}'{suggestion(node, self.nodes)}")
        return names

    def _edge(self, value: Any, mark: Mark, flow: str, path: str) -> EdgeSpec | None:
        issues = self.issues
        data = issues.mapping(value, mark, path, "an edge")
        if data is None:
            return None
        issues.keys(data, path, EDGE_KEYS, required=("to",))
        if "from" not in data:
            issues.error(data.mark, path, "missing required key 'from' (write 'from:' with no value for a "
                                          "starting edge)")
        if "from" not in data or "to" not in data:
            return None
        count = len(issues.found)
        from_nodes = self._node_names(data, "from", path)
        to_nodes = self._node_names(data, "to", path)
        if data["to"] is None or data["to"] == []:
            issues.error(data.mark_of("to"), join_path(path, "to"), "an edge needs at least one node in 'to'")
        duplicates = sorted({n for n in from_nodes if from_nodes.count(n) > 1})
        if duplicates:
            issues.error(data.mark_of("from"), join_path(path, "from"),
                         f"lists {', '.join(duplicates)} more than once")
        condition = None
        if data.get("condition") is not None:
            reader = ConditionReader(issues, self.catalog, sources=tuple(dict.fromkeys(from_nodes)),
                                     flows=set(self.listed), allow_results=True)
            condition = reader.read(data["condition"], data.mark_of("condition"), join_path(path, "condition"))
        foreach = self._foreach(data, path, to_nodes)
        selective = self._selective(data, path, to_nodes)
        if len(issues.found) != count:
            return None
        return EdgeSpec(id=edge_id(flow, tuple(from_nodes), tuple(to_nodes), condition, foreach, selective),
                        from_nodes=tuple(from_nodes), to_nodes=tuple(to_nodes), condition=condition,
                        foreach=foreach, selective=selective, mark=data.mark)

    def _check_foreach_node_args(self, data: YMap, path: str, edges: list[EdgeSpec],
                                 node_args_flows: frozenset[str]) -> None:
        """A sub-flow fed foreach items as node_args cannot also take the flow's node_args."""
        edges_value = data.get("edges")
        for edge in edges:
            if edge.foreach is None or not edge.foreach.propagate_result:
                continue
            both = sorted(set(edge.to_nodes) & node_args_flows)
            if both and isinstance(edges_value, YList):
                index = edges_value.item_marks.index(edge.mark)
                foreach = edges_value[index]["foreach"]
                self.issues.error(foreach.mark_of("propagate_result"), f"{path}.edges[{index}].foreach.propagate_result",
                                  f"{', '.join(both)} would get both a foreach item and this flow's node_args "
                                  "(propagate_node_args); drop one")

    def _foreach(self, data: YMap, path: str, to_nodes: list[str]) -> ForeachSpec | None:
        if data.get("foreach") is None:
            return None
        issues = self.issues
        key_path = join_path(path, "foreach")
        spec = issues.mapping(data["foreach"], data.mark_of("foreach"), key_path, "foreach")
        if spec is None:
            return None
        issues.keys(spec, key_path, ("function", "import", "propagate_result"), required=("function", "import"))
        ref = read_ref(issues, spec, key_path, name_key="function", default_name=None, default_module=None)
        propagate = issues.boolean(spec, "propagate_result", key_path)
        if propagate:
            tasks = [n for n in to_nodes if n in self.tasks]
            if tasks:
                issues.error(spec.mark_of("propagate_result"), join_path(key_path, "propagate_result"),
                             f"passes each item as a sub-flow's node_args, but {', '.join(tasks)} "
                             "is a task; every destination must be a flow")
        return ForeachSpec(ref, propagate) if ref else None

    def _selective(self, data: YMap, path: str, to_nodes: list[str]) -> SelectiveSpec | None:
        if data.get("selective") is None:
            return None
        issues = self.issues
        key_path = join_path(path, "selective")
        spec = issues.mapping(data["selective"], data.mark_of("selective"), key_path, "selective")
        if spec is None:
            return None
        issues.keys(spec, key_path, ("tasks", "follow_subflows", "run_subsequent"), required=("tasks",))
        if len(to_nodes) != 1 or to_nodes[0] not in self.listed:
            issues.error(spec.mark, key_path, "selective runs need exactly one destination, and it must be a flow")
        if "tasks" in spec and not isinstance(spec["tasks"], YList):
            issues.error(spec.mark_of("tasks"), join_path(key_path, "tasks"),
                         f"must be a list of task names, not {type_name(spec['tasks'])}")
        task_names = []
        for task, mark in issues.names(spec, "tasks", key_path):
            if task in self.tasks:
                task_names.append(task)
            else:
                issues.error(mark, join_path(key_path, "tasks"),
                             f"unknown task '{task}'{suggestion(task, self.tasks)}")
        follow = issues.boolean(spec, "follow_subflows", key_path)
        subsequent: bool | tuple[str, ...] = False
        if isinstance(spec.get("run_subsequent"), bool):
            subsequent = spec["run_subsequent"]
        elif spec.get("run_subsequent") is not None:
            flows = []
            for flow, mark in issues.names(spec, "run_subsequent", key_path):
                if flow in self.listed:
                    flows.append(flow)
                else:
                    issues.error(mark, join_path(key_path, "run_subsequent"),
                                 f"unknown flow '{flow}'{suggestion(flow, self.listed)}")
            subsequent = tuple(flows)
        return SelectiveSpec(tuple(task_names), follow, subsequent)

    def _failures(self, data: YMap, path: str) -> list[FailureSpec]:
        issues = self.issues
        if data.get("failures") is None:
            return []
        value = data["failures"]
        if not isinstance(value, YList):
            issues.error(data.mark_of("failures"), join_path(path, "failures"),
                         f"must be a list of failure entries, not {type_name(value)}")
            return []
        failures = []
        for index, item in enumerate(value):
            key_path = f"{path}.failures[{index}]"
            entry = issues.mapping(item, value.mark_of(index), key_path, "a failure entry")
            if entry is None:
                continue
            issues.keys(entry, key_path, FAILURE_KEYS, required=("nodes", "fallback"))
            if "nodes" in entry and entry["nodes"] is None:
                issues.error(entry.mark_of("nodes"), join_path(key_path, "nodes"), "must name at least one node")
            nodes = self._node_names(entry, "nodes", key_path)
            if len(set(nodes)) != len(nodes):
                issues.error(entry.mark_of("nodes"), join_path(key_path, "nodes"), "lists a node more than once")
            fallback: tuple[str, ...] | None = ()
            raw = entry.get("fallback")
            if raw is True:
                fallback = None
            elif raw is False or raw is None:
                if "fallback" in entry:
                    issues.error(entry.mark_of("fallback"), join_path(key_path, "fallback"),
                                 "must name fallback node(s), or be true to mark the failure handled")
            else:
                fallback = tuple(self._node_names(entry, "fallback", key_path))
                if len(nodes) == 1 and fallback == (nodes[0],):
                    issues.error(entry.mark_of("fallback"), join_path(key_path, "fallback"),
                                 f"'{nodes[0]}' is its own fallback (a cyclic fallback dependency)")
            propagate = issues.boolean(entry, "propagate_failure", key_path)
            if propagate and fallback is None:
                issues.error(entry.mark_of("propagate_failure"), join_path(key_path, "propagate_failure"),
                             "cannot be combined with 'fallback: true'")
            condition = None
            if entry.get("condition") is not None:
                reader = ConditionReader(issues, self.catalog, sources=(), flows=set(self.listed),
                                         allow_results=False)
                condition = reader.read(entry["condition"], entry.mark_of("condition"),
                                        join_path(key_path, "condition"))
            if nodes:
                failures.append(FailureSpec(tuple(sorted(nodes)), fallback, condition, propagate, entry.mark))
        return failures

    def _nowait(self, data: YMap, path: str, started: set[str], sources: set[str]) -> set[str]:
        nowait = set()
        for node, mark in self.issues.names(data, "nowait", path):
            key_path = join_path(path, "nowait")
            if node not in self.nodes:
                self.issues.error(mark, key_path, f"unknown node '{node}'{suggestion(node, self.nodes)}")
            elif node not in started:
                self.issues.error(mark, key_path, f"'{node}' is never started in this flow")
            elif node in sources:
                self.issues.error(mark, key_path, f"'{node}' is not waited for, so it cannot be the source of an "
                                                  "edge or a failure")
            else:
                nowait.add(node)
        return nowait

    def _eager(self, data: YMap, path: str, started: set[str], flow_nodes: set[str], nowait: set[str],
               failures: list[FailureSpec]) -> set[str]:
        key_path = join_path(path, "eager_failures")
        with_fallback = {n for f in failures for n in f.nodes}
        if data.get("eager_failures") is True:  # Selinon documents `true` but cannot parse it
            if failures:
                self.issues.error(data.mark_of("eager_failures"), key_path,
                                  "'true' fails the flow on any failure, so the 'failures' of this flow "
                                  "could never run; list the eager nodes instead")
            return started - nowait
        if data.get("eager_failures") is False:
            return set()
        eager = set()
        for node, mark in self.issues.names(data, "eager_failures", path):
            if node not in flow_nodes:
                self.issues.error(mark, key_path, f"'{node}' is not a node of this flow"
                                                  f"{suggestion(node, flow_nodes)}")
            elif node in nowait:
                self.issues.error(mark, key_path, f"'{node}' is a nowait node; its failures are never seen")
            elif node in with_fallback:
                self.issues.error(mark, key_path, f"'{node}' has a fallback; an eager failure would skip it")
            else:
                eager.add(node)
        return eager

    def _propagate(self, data: YMap, path: str, started: set[str], sources: set[str],
                   failures: list[FailureSpec]) -> tuple[tuple[str, frozenset[str]], ...]:
        """Each propagate_* flag as the explicit set of sub-flows it covers (``true`` expanded)."""
        subflows = set(self.listed)
        with_fallback = {n for f in failures for n in f.nodes}
        # where a sub-flow must sit in this flow for each flag to mean anything
        allowed = {
            "propagate_node_args": (started, "started by this flow"),
            "propagate_parent": (started, "a destination in this flow"),
            "propagate_parent_failures": (started, "a destination in this flow"),
            "propagate_finished": (sources, "a source node in this flow"),
            "propagate_compound_finished": (sources, "a source node in this flow"),
            "propagate_failures": (sources & with_fallback, "a source node with a fallback in this flow"),
            "propagate_compound_failures": (sources & with_fallback, "a source node with a fallback in this flow"),
        }
        result = []
        for flag in PROPAGATE_FLAGS:
            value = data.get(flag, False)
            where, description = allowed[flag]
            if value is True:
                result.append((flag, frozenset(where & subflows)))
                continue
            if value is False or value is None:
                continue
            covered = set()
            for node, mark in self.issues.names(data, flag, path):
                key_path = join_path(path, flag)
                if node in self.tasks:
                    self.issues.error(mark, key_path, f"'{node}' is a task; only sub-flows can be listed here")
                elif node not in subflows:
                    self.issues.error(mark, key_path, f"unknown flow '{node}'{suggestion(node, subflows)}")
                elif node not in where:
                    self.issues.error(mark, key_path, f"'{node}' must be {description}")
                else:
                    covered.add(node)
            result.append((flag, frozenset(covered)))
        self._propagate_conflicts(data, path, dict(result))
        return tuple(result)

    def _propagate_conflicts(self, data: YMap, path: str, flags: dict[str, frozenset[str]]) -> None:
        for plain, compound in (("propagate_finished", "propagate_compound_finished"),
                                ("propagate_failures", "propagate_compound_failures")):
            both = flags.get(plain, frozenset()) & flags.get(compound, frozenset())
            if both or (data.get(plain) is True and compound in data and data[compound] not in (False, None)) \
                    or (data.get(compound) is True and plain in data and data[plain] not in (False, None)):
                names = f" ({', '.join(sorted(both))})" if both else ""
                self.issues.error(data.mark_of(compound), join_path(path, compound),
                                  f"'{plain}' and '{compound}' cannot both cover the same sub-flow{names}")

    def _graph_checks(self, flow: FlowSpec, edges_value: YList, data: YMap, path: str) -> None:
        """Checks on the whole graph; run only when every edge is valid."""
        issues = self.issues
        starting = [e for e in flow.edges if not e.from_nodes]
        if not starting:
            issues.error(data.mark_of("edges"), join_path(path, "edges"),
                         "no starting edge: add an edge with an empty 'from' (from: null)")
        if flow.node_args_from_first:
            mark, key_path = data.mark_of("node_args_from_first"), join_path(path, "node_args_from_first")
            if len(starting) != 1 or len(starting[0].to_nodes) != 1:
                issues.error(mark, key_path, "needs exactly one starting edge with exactly one destination")
            elif starting[0].to_nodes[0] not in self.tasks:
                issues.error(mark, key_path, f"the first node '{starting[0].to_nodes[0]}' is a sub-flow; "
                                             "node_args can only come from a task's result")
        started = {n for e in flow.edges for n in e.to_nodes} | {n for f in flow.failures for n in f.fallback or ()}
        never_started: set[str] = set()
        for index, edge in enumerate(flow.edges):
            for node in edge.from_nodes:
                if node not in started:
                    never_started.add(node)
                    issues.error(_name_mark(edges_value[index], "from", node), f"{path}.edges[{index}].from",
                                 f"'{node}' is never started in flow '{flow.name}', so this edge can never fire")
        failures_value = data.get("failures")
        entries = {item.mark: (index, item) for index, item in enumerate(failures_value)
                   if isinstance(item, YMap)} if isinstance(failures_value, YList) else {}
        for failure in flow.failures:
            index, entry = entries[failure.mark]
            for node in failure.nodes:
                if node not in started:
                    issues.error(_name_mark(entry, "nodes", node), f"{path}.failures[{index}].nodes",
                                 f"'{node}' is never started in flow '{flow.name}', so this fallback can never run")
        if not starting:
            return  # nothing is reachable; "no starting edge" says it all
        reachable = _reachable(flow)
        for index, edge in enumerate(flow.edges):
            blocked = [n for n in edge.from_nodes if n not in reachable and n not in never_started]
            if blocked:
                issues.error(_name_mark(edges_value[index], "from", blocked[0]), f"{path}.edges[{index}].from",
                             f"unreachable: {', '.join(blocked)} only starts after this edge has fired, "
                             "so this edge can never fire")


def _name_mark(data: YMap, key: str, name: str) -> Mark:
    """Where ``name`` is written in the name-or-list value of ``key``."""
    value = data.get(key)
    if isinstance(value, YList) and name in value:
        return value.mark_of(value.index(name))
    return data.mark_of(key)


def _reachable(flow: FlowSpec) -> set[str]:
    """Nodes that some run of the flow can start, following edges and fallbacks to a fixed point."""
    reachable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for edge in flow.edges:
            if all(n in reachable for n in edge.from_nodes) and not set(edge.to_nodes) <= reachable:
                reachable.update(edge.to_nodes)
                changed = True
        for failure in flow.failures:
            targets = set(failure.fallback or ())
            if all(n in reachable for n in failure.nodes) and not targets <= reachable:
                reachable.update(targets)
                changed = True
    return reachable

