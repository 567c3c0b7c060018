"""The dispatcher engine: a pure state machine that walks one flow.

``step(tables, state, events, context)`` takes a flow's state and the node events that arrived
since the last step, and returns the new state and the actions to carry out (start tasks and
sub-flows, revoke, finish, fail, schedule a safety tick). It does no I/O of its own: results of
finished nodes come through ``context.results``, ids from ``context.new_id``.

Cost per event is bounded by the edges leaving the node that reported (``edges_by_source``), never
by the size of the flow. A multi-source edge fires once per new combination of finished source
instances: the reporting node's instance with every finished instance of the other sources.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from selflow.codegen.model import ImportRef
from selflow.dispatcher.records import (
    FAILURE,
    RUNNING,
    SUCCESS,
    Action,
    Event,
    FlowFailed,
    FlowState,
    FlowSucceeded,
    NodeFailed,
    NodeSucceeded,
    Note,
    Revoke,
    ScheduleTick,
    StartFlow,
    StartTask,
)
from selflow.errors import SelflowError, StorageError
from selflow.refs import resolve
from selflow.tables import EdgeTable, FallbackTable, FlowTable, SystemTables


class ResultReader(Protocol):
    """Reads the result of a finished node: a task's return value or a sub-flow's flow result."""

    def result(self, node_id: str) -> Any: ...


class UserCodeError(SelflowError):
    """A condition, foreach function, strategy or selective function raised, or an edge's
    selective run found no path in its sub-flow."""


@dataclass
class StepContext:
    results: ResultReader
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    resolve: Callable[[ImportRef], Any] = resolve


class ParentResults:
    """What a condition or foreach function sees: ``get(name)`` is that parent's result."""

    __slots__ = ("_reader", "_ids")

    def __init__(self, reader: ResultReader, ids: Mapping[str, Any]):
        self._reader = reader
        self._ids = ids

    def get(self, name: str, default: Any = None) -> Any:
        node_id = self._ids.get(name)
        if not isinstance(node_id, str):
            return default
        return self._reader.result(node_id)

    def __contains__(self, name: str) -> bool:
        return isinstance(self._ids.get(name), str)


def step(tables: SystemTables, state: FlowState, events: Sequence[Event],
         context: StepContext) -> tuple[FlowState, list[Action]]:
    """Advance one flow; ``state`` is updated in place and returned."""
    return _Step(tables, state, context).run(events)


class _Step:
    def __init__(self, tables: SystemTables, state: FlowState, context: StepContext):
        self.tables = tables
        self.flow: FlowTable = tables.flows[state.flow_name]
        self.state = state
        self.context = context
        self.actions: list[Action] = []
        self.new_started: list[str] = []
        self.new_fallbacks: list[str] = []
        #: reused results (selective runs) waiting to be handled like nodes that just finished
        self.reused: deque[tuple[str, str]] = deque()
        #: plans of edge-level selective runs, computed once per step and edge
        self.child_plans: dict[str, dict[str, Any]] = {}

    # --- driver -------------------------------------------------------------------------

    def run(self, events: Sequence[Event]) -> tuple[FlowState, list[Action]]:
        state = self.state
        if state.status != RUNNING:
            return state, []
        try:
            if not state.started:
                self._first_run()
            for event in events:
                if state.status != RUNNING or not state.started:
                    break
                if isinstance(event, NodeSucceeded):
                    self._succeeded(event.node_id)
                    self._finish_reused()
                elif isinstance(event, NodeFailed):
                    self._failed(event)
            if state.status == RUNNING and state.started:
                self._finish_if_done()
        except UserCodeError as exc:
            self._fail(str(exc))
        if state.status == RUNNING and state.started:
            self._safety_tick()
        return state, self.actions

    def _first_run(self) -> None:
        state = self.state
        state.started = True
        self.note("FLOW_START", node_args=state.node_args, parent=state.parent, retried_count=state.retried_count)
        view = ParentResults(self.context.results, _task_ids(self.tables, state.parent))
        for edge in self.flow.starting_edges:
            if self._in_plan(edge) and self._condition(edge, view):
                self._fire(edge, dict(state.parent), view)
        self._finish_reused()

    # --- events -------------------------------------------------------------------------

    def _succeeded(self, node_id: str) -> None:
        state = self.state
        name = state.active.pop(node_id, None)
        if name is None:
            return  # a duplicate report, or a node of an earlier attempt: nothing to do
        self.note("NODE_SUCCESSFUL", node_name=name, node_id=node_id)
        self._node_finished(name, node_id)

    def _finish_reused(self) -> None:
        """Handle reused results like nodes that finished right after the one that led to them.

        A queue rather than recursion: the node that led to a reuse is recorded as finished
        first, so a join of both fires, and a long chain of reused tasks needs no deep stack.
        """
        while self.reused:
            self._node_finished(*self.reused.popleft())

    def _node_finished(self, name: str, node_id: str) -> None:
        state = self.state
        if self.flow.node_args_from_first and not state.node_args_replaced and not state.finished:
            state.node_args = self.context.results.result(node_id)
            state.node_args_replaced = True
        try:
            for edge in self.flow.edges_by_source.get(name, ()):
                if not self._in_plan(edge):
                    continue
                slots = [[node_id] if source == name else self.state.finished.get(source, [])
                         for source in edge.from_nodes]
                for combination in itertools.product(*slots):
                    ids = dict(zip(edge.from_nodes, combination))
                    view = ParentResults(self.context.results,
                                         {s: i for s, i in ids.items() if self.tables.is_task(s)})
                    if self._condition(edge, view):
                        self._fire(edge, self._parent_of(ids), view)
        finally:
            # after its own edges, so two nodes finishing in one step pair up exactly once; and
            # even when user code raised, so the failed flow's result still lists the node
            self.state.finished.setdefault(name, []).append(node_id)

    def _failed(self, event: NodeFailed) -> None:
        state = self.state
        name = state.active.pop(event.node_id, None)
        if name is None:
            return
        state.failed.setdefault(name, []).append(event.node_id)
        self.note("NODE_FAILURE", node_name=name, node_id=event.node_id, what=event.error)
        if name in self.flow.eager_failures:
            self.note("EAGER_FAILURE", node_name=name, node_id=event.node_id)
            self._fail(f"node '{name}' failed and is an eager failure of flow '{self.flow.name}'")

    # --- firing edges -------------------------------------------------------------------

    def _condition(self, edge: EdgeTable, view: ParentResults) -> bool:
        try:
            result = bool(edge.condition(view, self.state.node_args))
        except StorageError:
            raise  # the runtime retries the step; nothing was committed
        except Exception as exc:  # noqa: BLE001 - user predicates may raise anything
            raise UserCodeError(f"condition {edge.condition_str} of edge {edge.id} in flow "
                                f"'{self.flow.name}' raised {type(exc).__name__}: {exc}") from exc
        if result:
            triggered = self.state.triggered_edges
            triggered[edge.id] = triggered.get(edge.id, 0) + 1
        else:
            self.note("EDGE_COND_FALSE", edge=edge.id, condition_str=edge.condition_str)
        return result

    def _fire(self, edge: EdgeTable, parent: dict[str, Any], view: ParentResults) -> None:
        destinations = self._planned_destinations(edge)
        if edge.foreach is None:
            for name in destinations:
                self._start(name, parent, edge=edge, view=view)
            return
        try:
            items = self.context.resolve(edge.foreach.ref)(view, self.state.node_args)
            items = list(items) if items is not None else []
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UserCodeError(f"foreach function {edge.foreach.ref} of edge {edge.id} in flow "
                                f"'{self.flow.name}' raised {type(exc).__name__}: {exc}") from exc
        self.note("FOREACH_RESULT", edge=edge.id, foreach_str=str(edge.foreach.ref), count=len(items))
        for item in items:
            for name in destinations:
                if edge.foreach.propagate_result:
                    self._start(name, parent, edge=edge, node_args=item, force_node_args=True, view=view)
                else:
                    self._start(name, parent, edge=edge, view=view)

    def _start(self, name: str, parent: dict[str, Any], *, edge: EdgeTable | None = None, node_args: Any = None,
               force_node_args: bool = False, fallback: bool = False, view: ParentResults | None = None) -> None:
        state, flow = self.state, self.flow
        reused = None if fallback else self._reusable_result(name, view)
        if reused is not None:
            self.note("SELECTIVE_TASK_REUSE", node_name=name, node_id=reused)
            self.reused.append((name, reused))
            return
        node_id = self.context.new_id()
        if self.tables.is_task(name):
            self.actions.append(StartTask(node_id=node_id, name=name, flow_id=state.flow_id, flow_name=flow.name,
                                          node_args=state.node_args, parent=parent))
        else:
            propagate_parent = flow.propagate_parent_failures if fallback else flow.propagate_parent
            if force_node_args:
                child_args = node_args
            else:
                child_args = state.node_args if name in flow.propagate_node_args else None
            self.actions.append(StartFlow(
                node_id=node_id, name=name, parent_flow_id=state.flow_id, node_args=child_args,
                parent=parent if name in propagate_parent else {},
                selective=self._child_plan(name, edge)))
        if name in flow.nowait:
            return
        state.active[node_id] = name
        (self.new_fallbacks if fallback else self.new_started).append(name)

    def _parent_of(self, ids: Mapping[str, str]) -> dict[str, Any]:
        """The parent mapping a node sees: task ids, plus finished nodes of propagating sub-flows."""
        flow = self.flow
        return self._parent_entries(ids.items(), "finished_nodes", flow.propagate_finished,
                                    flow.propagate_compound_finished)

    def _parent_entries(self, sources: Iterable[tuple[str, str]], which: str, nested: frozenset[str],
                        compound: frozenset[str]) -> dict[str, Any]:
        """Task parents by id; sub-flow parents by their ``which`` nodes when a propagate flag covers them."""
        parent: dict[str, Any] = {}
        for name, node_id in sources:
            if self.tables.is_task(name):
                parent[name] = node_id
            elif name in nested or name in compound:
                parent[name] = self._subflow_nodes(node_id, which, compound=name in compound and name not in nested)
        return parent

    def _subflow_nodes(self, flow_id: str, which: str, *, compound: bool) -> dict[str, Any]:
        """A sub-flow's finished (or failed) nodes, nested by sub-flow, or flattened when compound.

        Nested sub-flows contribute their own ``which`` nodes; instances of one sub-flow are merged
        at every level.
        """
        result = self.context.results.result(flow_id) or {}
        nodes: dict[str, Any] = {}
        for name, ids in sorted(result.get(which, {}).items()):
            if not self.tables.is_flow(name):
                nodes.setdefault(name, []).extend(ids)
                continue
            for child_id in ids:
                child = self._subflow_nodes(child_id, which, compound=compound)
                _merge_nodes(nodes if compound else nodes.setdefault(name, {}), child)
        return nodes

    # --- selective runs -----------------------------------------------------------------

    def _in_plan(self, edge: EdgeTable) -> bool:
        plan = self.state.selective
        if plan is None:
            return True
        if edge.id in plan.get("edges", {}).get(self.flow.name, {}):
            return True
        self.note("SELECTIVE_OMIT_EDGE", edge=edge.id)
        return False

    def _planned_destinations(self, edge: EdgeTable) -> tuple[str, ...]:
        plan = self.state.selective
        if plan is None:
            return edge.to_nodes
        wanted = set(plan["edges"][self.flow.name][edge.id])
        kept = tuple(name for name in edge.to_nodes if name in wanted)
        for name in edge.to_nodes:
            if name not in wanted:
                self.note("SELECTIVE_OMIT_NODE", edge=edge.id, node_name=name)
        return kept

    def _reusable_result(self, name: str, view: ParentResults | None) -> str | None:
        plan = self.state.selective
        if plan is None or not self.tables.is_task(name) or name in plan.get("task_names", ()):
            return None
        task = self.tables.tasks[name]
        try:
            func = self.context.resolve(task.selective_run_function)
            found = func(self.flow.name, name, self.state.node_args, list(plan.get("task_names", ())),
                         view if view is not None else ParentResults(self.context.results, {}))
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UserCodeError(f"selective run function {task.selective_run_function} of task '{name}' raised "
                                f"{type(exc).__name__}: {exc}") from exc
        reused = found if isinstance(found, str) and found else None
        self.note("SELECTIVE_RUN_FUNC", node_name=name, function=str(task.selective_run_function), node_id=reused)
        return reused

    def _child_plan(self, name: str, edge: EdgeTable | None) -> dict[str, Any] | None:
        if edge is not None and edge.selective is not None:
            if edge.id not in self.child_plans:
                from selflow.dispatcher.selective import compute_plan

                spec = edge.selective
                try:
                    self.child_plans[edge.id] = compute_plan(
                        self.tables, name, spec.tasks, follow_subflows=spec.follow_subflows,
                        run_subsequent=spec.run_subsequent)
                except SelflowError as exc:  # the compiler cannot see every path: fail the flow, do not crash
                    raise UserCodeError(f"selective run of sub-flow '{name}' on edge {edge.id} in flow "
                                        f"'{self.flow.name}': {exc}") from exc
            return self.child_plans[edge.id]
        plan = self.state.selective
        # a sub-flow the plan does not reach into runs whole (Selinon failed with a KeyError here)
        return plan if plan is not None and name in plan.get("edges", {}) else None

    # --- endings ------------------------------------------------------------------------

    def _finish_if_done(self) -> None:
        state = self.state
        if state.active:
            return
        if any(state.failed.values()):
            self._run_fallbacks()
            if state.active:
                return
        unhandled = sorted(name for name, ids in [*state.failed.items(), *state.propagated.items()] if ids)
        if unhandled:
            self._fail(f"node(s) {', '.join(unhandled)} failed in flow '{self.flow.name}'")
            return
        state.status = SUCCESS
        self.note("FLOW_END", result=state.result())
        self.actions.append(FlowSucceeded(state.result()))

    def _run_fallbacks(self) -> None:
        """Greedy: the largest failed sets first, ties by name; one fallback run per failed instance."""
        state, flow = self.state, self.flow
        candidates = sorted(flow.fallbacks_by_nodes.items(), key=lambda item: (-len(item[0]), sorted(item[0])))
        for nodes, entries in candidates:
            while all(state.failed.get(name) for name in nodes):
                handled = propagate = False
                for entry in entries:
                    if not self._fallback_condition(entry):
                        continue
                    handled = True
                    propagate = propagate or entry.propagate_failure
                    self.note("FALLBACK_START", nodes=sorted(nodes), fallback=list(entry.fallback or [True]))
                    parent = self._fallback_parent(nodes)
                    for name in entry.fallback or ():
                        self._start(name, parent, fallback=True)
                if not handled:
                    break
                # with propagate_failure the fallback runs, but the failure still fails the flow
                kept = state.propagated if propagate else state.handled
                for name in sorted(nodes):
                    kept.setdefault(name, []).append(state.failed[name].pop(0))

    def _fallback_condition(self, entry: FallbackTable) -> bool:
        try:
            result = bool(entry.condition(ParentResults(self.context.results, {}), self.state.node_args))
        except Exception as exc:  # noqa: BLE001
            raise UserCodeError(f"fallback condition {entry.condition_str} in flow '{self.flow.name}' raised "
                                f"{type(exc).__name__}: {exc}") from exc
        self.note("FALLBACK_COND_TRUE" if result else "FALLBACK_COND_FALSE", condition_str=entry.condition_str,
                  nodes=list(entry.nodes))
        return result

    def _fallback_parent(self, nodes: Iterable[str]) -> dict[str, Any]:
        """Fallbacks see which nodes failed (Selinon gave them no parent at all)."""
        failed = [(name, self.state.failed[name][0]) for name in sorted(nodes)]
        return self._parent_entries(failed, "failed_nodes", self.flow.propagate_failures,
                                    self.flow.propagate_compound_failures)

    def _fail(self, reason: str) -> None:
        state, flow = self.state, self.flow
        if state.active:
            self.actions.append(Revoke(tuple(sorted(state.active))))
        if state.retried_count < flow.max_retry:
            self.note("FLOW_RETRY", reason=reason, retried_count=state.retried_count, max_retry=flow.max_retry)
            restarted = FlowState.new(state.flow_id, state.flow_name, state.initial_node_args, parent=state.parent,
                                      selective=state.selective, parent_flow_id=state.parent_flow_id)
            restarted.retried_count = state.retried_count + 1
            self.state.__dict__.update(restarted.__dict__)
            self.actions.append(ScheduleTick(flow.retry_countdown, restart=True))
            return
        state.active.clear()
        state.status = FAILURE
        self.note("FLOW_FAILURE", reason=reason, result=state.result())
        self.actions.append(FlowFailed(state.result(), reason))

    def _safety_tick(self) -> None:
        """Ask the flow's sampling strategy when to look again if no node reports in the meantime."""
        state, flow = self.state, self.flow
        status = _StrategyStatus({
            "previous_retry": lambda: state.previous_tick,
            "active_nodes": lambda: _ActiveNames(state.active),
            "failed_nodes": lambda: {n: list(i) for n, i in state.failed.items() if i},
            "new_started_nodes": lambda: self.new_started,
            "new_fallback_nodes": lambda: self.new_fallbacks,
            "finished_nodes": lambda: {n: list(i) for n, i in state.finished.items()},
        })
        try:
            countdown = self.context.resolve(flow.sampling.ref)(status, **dict(flow.sampling.args))
        except Exception as exc:  # noqa: BLE001
            self._fail(f"sampling strategy {flow.sampling.ref} raised {type(exc).__name__}: {exc}")
            return
        if countdown is not None:
            state.previous_tick = countdown
            self.actions.append(ScheduleTick(float(countdown)))

    def note(self, event: str, **details: Any) -> None:
        self.actions.append(Note(event, {"flow_name": self.flow.name, "dispatcher_id": self.state.flow_id,
                                         **details}))


class _StrategyStatus(Mapping[str, Any]):
    """What a sampling strategy sees: a mapping whose entries are built on first read.

    The strategy runs on every step, and copying the finished nodes for it would make each event
    cost as much as the flow is big; strategies that do not read an entry do not pay for it.
    """

    __slots__ = ("_makers", "_values")

    def __init__(self, makers: dict[str, Callable[[], Any]]):
        self._makers = makers
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            self._values[key] = self._makers[key]()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


class _ActiveNames(Sequence[str]):
    """The sorted names of the active nodes; knows its length at once and sorts only when read
    (the built-in strategies only ask whether it is empty)."""

    __slots__ = ("_active", "_names")

    def __init__(self, active: Mapping[str, str]):
        self._active = active
        self._names: list[str] | None = None

    def _sorted(self) -> list[str]:
        if self._names is None:
            self._names = sorted(self._active.values())
        return self._names

    def __len__(self) -> int:
        return len(self._active)

    def __getitem__(self, index: Any) -> Any:
        return self._sorted()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sorted())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and not isinstance(other, str) and self._sorted() == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._sorted())


def _merge_nodes(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Merge ``{task: [ids], flow: {...}}`` mappings: id lists are joined, nested flows merged."""
    for key, value in more.items():
        if isinstance(value, list):
            into.setdefault(key, []).extend(value)
        else:
            _merge_nodes(into.setdefault(key, {}), value)


def _task_ids(tables: SystemTables, parent: Mapping[str, Any]) -> dict[str, str]:
    return {name: node_id for name, node_id in parent.items() if isinstance(node_id, str) and tables.is_task(name)}
