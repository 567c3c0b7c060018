"""The runtime core shared by the embedded run and Celery workers.

It runs the two kinds of work selflow has: a **node** (the task envelope: run the user task, keep
its result, report to the flow) and a **dispatcher step** (feed a flow's new events to the engine
and carry out its actions). A finished node drives its flow's step inline when it can take the
flow's lock; when another worker holds it, that worker sees the new event before it lets go, so no
wake-up message is needed and none is lost.

Round trips to the store per chain step (a node that finishes and starts the next one): the
revocation check before the task runs, then ``report`` (revocation check, result, event, lock,
state and inbox at once), then ``commit_and_continue`` (state, inbox, lock, and the events that
came meanwhile, stepped next on the state in memory). ``RedisStore`` makes each one round trip.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

from selflow.dispatcher.engine import StepContext, step
from selflow.dispatcher.records import (
    RUNNING,
    Action,
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
from selflow.errors import FatalTaskError, StorageError, UnknownFlowError
from selflow.codegen.issues import suggestion
from selflow.refs import resolve
from selflow.runtime.admission import Admission, concurrency_backoff
from selflow.runtime.publisher import Publisher
from selflow.runtime.store import NOTHING, Claim, FlowStore
from selflow.tables import SystemTables
from selflow.task import Retry, SelflowTask
from selflow.trace.dispatch import emit

if TYPE_CHECKING:
    from selflow.storages.pool import StoragePool

log = logging.getLogger("selflow.runtime")

Tracer = Callable[[str, dict[str, Any]], None]

#: a safety tick that finds its flow's lock taken sends itself again after this many seconds, so a
#: chain of ticks never ends on a busy lock (the holder handles the events it finds)
BUSY_TICK_S = 1.0
#: how long a node or a Dispatcher step waits before it is tried again when the state store fails,
#: in seconds (the Celery layer retries them; ``RESULT_BACKEND_ISSUE`` says so)
STORE_RETRY_S = 2.0


@dataclass(frozen=True)
class NodeOutcome:
    """What the envelope did: ``succeeded``, ``failed``, ``retry`` (after ``countdown``), ``skipped``."""

    kind: str
    countdown: float = 0
    counted: bool = True
    error: str = ""


class StoreResults:
    """The engine's view of node results, read from the store once per step.

    ``known`` maps node ids to the JSON text of results this process has just written (the envelope
    that drives the step): those are decoded here instead of read back from the store.
    """

    def __init__(self, store: FlowStore, known: dict[str, str] | None = None):
        self._store = store
        self._known = known
        self._cache: dict[str, Any] = {}

    def result(self, node_id: str) -> Any:
        if node_id not in self._cache:
            known = self._known.get(node_id) if self._known else None
            self._cache[node_id] = json.loads(known) if known is not None else self._store.load_result(node_id)
        return self._cache[node_id]


class Runtime:
    def __init__(self, tables: SystemTables, store: FlowStore, publisher: Publisher, *,
                 tracers: tuple[Tracer, ...] = (), storages: "StoragePool | None" = None,
                 admission: Admission | None = None):
        self.tables = tables
        self.store = store
        self.publisher = publisher
        self.tracers = tracers
        #: the YAML's storages: a task with one keeps its result (and errors) there too
        self.storages = storages
        #: throttling, keyed rate limits and concurrency limits; None applies none
        self.admission = admission

    # --- starting flows -----------------------------------------------------------------

    def start_flow(self, name: str, node_args: Any = None, *, flow_id: str | None = None,
                   parent: dict[str, Any] | None = None, selective: dict[str, Any] | None = None,
                   parent_flow_id: str | None = None, countdown: float | None = None) -> str:
        """Create a flow's state and send its first Dispatcher message; returns the flow id."""
        if name not in self.tables.flows:
            raise UnknownFlowError(f"unknown flow '{name}'{suggestion(name, self.tables.flows)}")
        flow_id = flow_id or uuid.uuid4().hex
        state = FlowState.new(flow_id, name, node_args, parent=parent, selective=selective,
                              parent_flow_id=parent_flow_id)
        self.store.create_flow(state)
        if self.tracers:
            self.trace("FLOW_SCHEDULE", flow_name=name, dispatcher_id=flow_id, node_args=node_args, parent=parent)
        self.publisher.dispatch(flow_id, queue=self.tables.flows[name].queue, countdown=countdown,
                                tick=state.tick_seq)
        return flow_id

    # --- dispatcher steps ---------------------------------------------------------------

    def dispatcher_tick(self, flow_id: str, tick: int | None = None) -> float | None:
        """Body of the Dispatcher task: one step; returns the countdown to the next safety tick.

        ``tick`` is the chain number the Dispatcher message carries (``FlowState.tick_seq`` when it
        was sent; ``None`` skips the check). Only the flow's current chain re-schedules itself: its
        tick moves ``tick_seq`` on by one, so the chain's next message carries ``tick + 1``. A message
        of an older chain (from before a flow retry) or a duplicate is only a wake-up: it steps any
        pending events and returns None. A tick that finds the flow locked sends itself again after
        ``BUSY_TICK_S`` and returns None.
        """
        if self.tracers:
            self.trace("DISPATCHER_WAKEUP", dispatcher_id=flow_id)
        try:
            return self.drive(flow_id, tick=True, tick_seq=tick)
        except StorageError as exc:
            if self.tracers:  # the caller (the Celery Dispatcher task) runs the step again
                what = _describe(exc)
                self.trace("RESULT_BACKEND_ISSUE", dispatcher_id=flow_id, countdown=STORE_RETRY_S, what=what)
                self.trace("DISPATCHER_RETRY", dispatcher_id=flow_id, countdown=STORE_RETRY_S, what=what)
            raise
        except Exception as exc:
            if self.tracers:
                self.trace("DISPATCHER_FAILURE", dispatcher_id=flow_id, what=_describe(exc))
            raise

    def drive(self, flow_id: str, *, tick: bool = False, tick_seq: int | None = None, token: str | None = None,
              claim: Claim | None = None, known_results: dict[str, str] | None = None) -> float | None:
        """Step the flow while it has events, if its lock is free; otherwise leave it to the holder.

        ``claim`` is the flow's lock already taken with ``token`` (by ``FlowStore.report``), with
        the state and inbox it loaded; ``known_results`` the JSON text of results the caller has
        just kept (see ``StoreResults``).
        """
        token = token or uuid.uuid4().hex
        next_tick: float | None = None
        while True:
            if claim is None:
                claim = self.store.lock_and_load(flow_id, token)
                if claim is None:
                    if tick and tick_seq is not None:
                        self._tick_again_later(flow_id, tick_seq)
                    elif self.tracers:
                        self.trace("WAKEUP_DEFERRED", dispatcher_id=flow_id, tick=tick)
                    return next_tick
            state, events = claim.state, claim.events
            claim = None
            committed = False
            try:
                if state is None:
                    log.warning("no state for flow %s; dropping its wake-up", flow_id)
                    return None
                was_running = state.status == RUNNING
                if was_running and tick and not state.started and not self._may_start(state):
                    return None  # unlocked below; the flow waits for a free slot
                if tick and tick_seq is not None and was_running:
                    if tick_seq == state.tick_seq:
                        state.tick_seq += 1
                    else:
                        tick = False  # a stale chain or a duplicate message: a plain wake-up
                # a flow that has not (re)started yet only starts on its dispatcher message, never on a
                # late event of an earlier attempt, so a flow retry waits its retry_countdown
                if was_running and (tick or (events and state.started)):
                    chain = state.tick_seq
                    results = StoreResults(self.store, known_results)
                    state, actions = step(self.tables, state, events, StepContext(results=results))
                    state.tick_seq = chain  # the engine restarts a retried flow from a fresh state
                    next_tick = self._carry_out(state, actions, tick=tick)
                # an ended flow's result is kept with its final state, so whoever sees one sees both
                ended = was_running and state.status != RUNNING
                claim = self.store.commit_and_continue(state, len(events), token,
                                                       result=state.result() if ended else NOTHING)
                committed = True
            finally:
                if not committed:
                    self.store.unlock(flow_id, token)
            if state.status != RUNNING:
                if was_running:
                    self._flow_ended(state)
                return None
            tick = False
            known_results = None
            if claim is None:
                return next_tick

    def _carry_out(self, state: FlowState, actions: list[Action], *, tick: bool) -> float | None:
        batch = getattr(self.publisher, "batch", None)
        if batch is None or sum(isinstance(action, (StartTask, StartFlow)) for action in actions) < 2:
            return self._carry_out_actions(state, actions, tick=tick)
        with batch():
            return self._carry_out_actions(state, actions, tick=tick)

    def _carry_out_actions(self, state: FlowState, actions: list[Action], *, tick: bool) -> float | None:
        next_tick = None
        tracing = bool(self.tracers)
        for action in actions:
            if isinstance(action, StartTask):
                spec = self.tables.tasks[action.name]
                if tracing:
                    self.trace("TASK_SCHEDULE", flow_name=action.flow_name, dispatcher_id=action.flow_id,
                               task_name=action.name, task_id=action.node_id, parent=action.parent,
                               queue=spec.queue)
                self.publisher.start_task(action, queue=spec.queue, countdown=self._task_countdown(spec, action))
            elif isinstance(action, StartFlow):
                if tracing:
                    self.trace("SUBFLOW_SCHEDULE", flow_name=state.flow_name, dispatcher_id=state.flow_id,
                               child_flow_name=action.name, child_dispatcher_id=action.node_id)
                countdown = self.admission.flow_countdown(self.tables.flows[action.name]) if self.admission else 0
                if countdown > 0 and tracing:
                    self.trace("THROTTLED", flow_name=state.flow_name, dispatcher_id=state.flow_id,
                               node_name=action.name, node_id=action.node_id, countdown=countdown)
                self.start_flow(action.name, action.node_args, flow_id=action.node_id, parent=action.parent,
                                selective=action.selective, parent_flow_id=action.parent_flow_id,
                                countdown=countdown or None)
            elif isinstance(action, Revoke):
                # the engine revokes when the flow fails: for good, or to start again (a flow retry)
                self._revoke(list(action.node_ids), flow_name=state.flow_name, flow_id=state.flow_id,
                             reason="the flow is retried" if state.status == RUNNING else "the flow failed")
            elif isinstance(action, ScheduleTick):
                if action.restart:
                    state.tick_seq += 1  # a new chain; the current one stops at its next tick
                    self.publisher.dispatch(state.flow_id, queue=self.tables.flows[state.flow_name].queue,
                                            countdown=action.countdown, tick=state.tick_seq)
                elif tick:
                    next_tick = action.countdown
                    if tracing:
                        self.trace("SAFETY_TICK", flow_name=state.flow_name, dispatcher_id=state.flow_id,
                                   countdown=action.countdown)
            elif isinstance(action, Note):
                if tracing:
                    self.trace(action.event, **action.details)
            elif isinstance(action, (FlowSucceeded, FlowFailed)):
                pass  # handled once the state is committed (_flow_ended)
        return next_tick

    def _task_countdown(self, spec: Any, action: StartTask) -> float | None:
        """Hold a task back for its throttling or keyed rate limit, if it has one."""
        if self.admission is None or (not spec.throttling and spec.keyed_rate_limit is None):
            return None
        countdown, held = self.admission.task_countdown(spec, action.node_args)
        if countdown > 0 and self.tracers:
            if held.get("rate_limited", 0) >= held.get("throttled", 0):
                self.trace("RATE_LIMITED", flow_name=action.flow_name, dispatcher_id=action.flow_id,
                           task_name=action.name, task_id=action.node_id, countdown=countdown, key=held.get("key"))
            else:
                self.trace("THROTTLED", flow_name=action.flow_name, dispatcher_id=action.flow_id, node_name=action.name,
                           node_id=action.node_id, countdown=countdown)
        return countdown or None

    def _may_start(self, state: FlowState) -> bool:
        """A flow at its concurrency limit waits before its first step; False sends it back."""
        flow = self.tables.flows[state.flow_name]
        if self.admission is None or flow.concurrency is None or self.admission.enter_flow(flow, state.flow_id):
            return True
        countdown = concurrency_backoff()
        if self.tracers:
            self.trace("CONCURRENCY_WAIT", flow_name=state.flow_name, dispatcher_id=state.flow_id,
                       limit=flow.concurrency, countdown=countdown)
        self.publisher.dispatch(state.flow_id, queue=flow.queue, countdown=countdown, tick=state.tick_seq)
        return False

    def _tick_again_later(self, flow_id: str, tick_seq: int) -> None:
        state = self.store.load_state(flow_id)
        if state is not None and state.status == RUNNING:
            if self.tracers:
                self.trace("WAKEUP_DEFERRED", flow_name=state.flow_name, dispatcher_id=flow_id, tick=True,
                           countdown=BUSY_TICK_S)
            self.publisher.dispatch(flow_id, queue=self.tables.flows[state.flow_name].queue, countdown=BUSY_TICK_S,
                                    tick=tick_seq)

    def _revoke(self, node_ids: list[str], *, flow_name: str, flow_id: str, reason: str) -> None:
        if self.tracers:
            self.trace("NODE_REVOKE", flow_name=flow_name, dispatcher_id=flow_id, node_ids=node_ids, reason=reason)
        self.store.revoke(node_ids)
        self.publisher.revoke(node_ids)
        for node_id in node_ids:
            child = self.store.load_state(node_id)
            if child is not None and child.status == RUNNING:
                self.cancel_flow(node_id, reason="revoked by its parent flow")

    def cancel_flow(self, flow_id: str, *, reason: str) -> None:
        """Stop a running flow and everything it runs (a revoked sub-flow, a user's cancel)."""
        token = uuid.uuid4().hex
        for _ in range(200):
            if self.store.try_lock(flow_id, token):
                break
            time.sleep(0.01)
        else:
            log.warning("could not lock flow %s to cancel it", flow_id)
            return
        try:
            state = self.store.load_state(flow_id)
            if state is None or state.status != RUNNING:
                return
            active = sorted(state.active)
            state.active.clear()
            state.status = "failure"
            self.store.commit(state, 0)
        finally:
            self.store.unlock(flow_id, token)
        self.trace("FLOW_FAILURE", flow_name=state.flow_name, dispatcher_id=flow_id, reason=reason)
        if self.admission is not None:
            self.admission.leave_flow(self.tables.flows[state.flow_name], flow_id)
        if active:
            self._revoke(active, flow_name=state.flow_name, flow_id=flow_id, reason=reason)
        self.store.save_result(flow_id, state.result())
        self.store.announce_end(flow_id)

    def _flow_ended(self, state: FlowState) -> None:
        """Report a finished flow to its parent flow, if any.

        Its result is already kept and its waiters woken: ``commit_and_continue`` of the ended state
        did both.
        """
        if self.admission is not None:
            self.admission.leave_flow(self.tables.flows[state.flow_name], state.flow_id)
        if state.parent_flow_id is None:
            return
        error = None
        if state.status == "success":
            event: NodeSucceeded | NodeFailed = NodeSucceeded(state.flow_id)
        else:
            error = {"type": "FlowError", "message": f"flow {state.flow_name} failed", "traceback": "",
                     "result": state.result()}
            event = NodeFailed(state.flow_id, f"flow {state.flow_name} failed")
        token = uuid.uuid4().hex
        report = self.store.report(state.parent_flow_id, event, token, error=error, check_revoked=False)
        self._step_inline(state.parent_flow_id, state.flow_id, token, report.claim)

    def _step_inline(self, flow_id: str, node_id: str, token: str, claim: Claim | None,
                     known_results: dict[str, str] | None = None) -> None:
        """Step the flow a node has just reported to, when the report took the flow's lock; when
        another worker holds it, that worker handles the node's event before it lets go."""
        if claim is None:
            if self.tracers:
                self.trace("WAKEUP_DEFERRED", dispatcher_id=flow_id, task_id=node_id, tick=False)
            return
        if self.tracers:
            self.trace("DISPATCHER_INLINE_STEP", flow_name=claim.state.flow_name if claim.state else None,
                       dispatcher_id=flow_id, task_id=node_id, events=len(claim.events))
        try:
            self.drive(flow_id, token=token, claim=claim, known_results=known_results)
        except StorageError:
            raise  # the node's envelope reports it (RESULT_BACKEND_ISSUE) and runs again
        except Exception as exc:
            if self.tracers:
                self.trace("DISPATCHER_FAILURE", flow_name=claim.state.flow_name if claim.state else None,
                           dispatcher_id=flow_id, what=_describe(exc))
            raise

    # --- the task envelope --------------------------------------------------------------

    def run_node(self, message: StartTask, *, retried_count: int = 0) -> NodeOutcome:
        """Run one task and report it to its flow; retries are left to the caller (Celery or embedded)."""
        spec = self.tables.tasks[message.name]
        tracing = bool(self.tracers)
        details = dict(flow_name=message.flow_name, dispatcher_id=message.flow_id, task_name=message.name,
                       task_id=message.node_id)
        try:
            if self.store.is_revoked(message.node_id):
                if tracing:
                    self.trace("TASK_SKIPPED", **details)
                return NodeOutcome("skipped")
            if self.admission is not None and not self.admission.enter_task(spec, message.node_id):
                countdown = concurrency_backoff()
                if tracing:
                    self.trace("CONCURRENCY_WAIT", limit=spec.concurrency, countdown=countdown, **details)
                return NodeOutcome("retry", countdown=countdown, counted=False)
            try:
                return self._run_admitted(message, spec, details, retried_count)
            finally:
                if self.admission is not None:
                    self.admission.leave_task(spec, message.node_id)
        except StorageError as exc:
            if tracing:  # the caller (the Celery node task) runs the node again
                self.trace("RESULT_BACKEND_ISSUE", countdown=STORE_RETRY_S, what=_describe(exc), **details)
            raise

    def _run_admitted(self, message: StartTask, spec: Any, details: dict[str, Any],
                      retried_count: int) -> NodeOutcome:
        tracing = bool(self.tracers)
        if tracing:
            self.trace("TASK_START", parent=message.parent, node_args=message.node_args, retried_count=retried_count,
                       **details)
        stored: dict[str, Any] = {}
        try:
            result = self._call_task(message)
            text = _check_json(result, message.name)
            if spec.storage is not None or spec.output_schema is not None:
                record_id = self._keep_in_storage(message, result)
                if record_id is not None:
                    stored = {"storage_name": spec.storage, "record_id": record_id}
        except Retry as retry:
            self.trace("TASK_RETRY", countdown=retry.countdown, user_retry=True, **details)
            return NodeOutcome("retry", countdown=retry.countdown, counted=False)
        except Exception as exc:  # noqa: BLE001 - a task may raise anything; it is its failure
            if not isinstance(exc, FatalTaskError) and retried_count < spec.max_retry:
                self.trace("TASK_RETRY", countdown=spec.retry_countdown, retried_count=retried_count,
                           max_retry=spec.max_retry, what=_describe(exc), **details)
                return NodeOutcome("retry", countdown=spec.retry_countdown)
            return self._report_failure(message, exc, details)
        token = uuid.uuid4().hex
        report = self.store.report(message.flow_id, NodeSucceeded(message.node_id), token, result=result)
        if report.revoked:
            if tracing:
                self.trace("TASK_DISCARD_RESULT", reason="its node was revoked while it ran", **details)
            return NodeOutcome("skipped")
        if tracing:
            self.trace("TASK_END", **details, **stored)
        self._step_inline(message.flow_id, message.node_id, token, report.claim, {message.node_id: text})
        return NodeOutcome("succeeded")

    def fail_node(self, message: StartTask, error: str) -> NodeOutcome:
        """Report a node that failed outside the task's own code (killed, timed out)."""
        return self._report_failure(message, None, dict(flow_name=message.flow_name, dispatcher_id=message.flow_id,
                                                        task_name=message.name, task_id=message.node_id),
                                    error=error)

    def _keep_in_storage(self, message: StartTask, result: Any) -> Any:
        """Check the result against its schema and store it in the task's storage (may raise);
        returns the record id, or None when nothing was stored."""
        if self.storages is None:
            from selflow.storages.pool import StoragePool

            self.storages = StoragePool(self.tables)
        return self.storages.store(message.name, message.flow_name, message.node_id, message.node_args, result)

    def _report_failure(self, message: StartTask, exc: BaseException | None, details: dict[str, Any], *,
                        error: str = "") -> NodeOutcome:
        text = _describe(exc) if exc is not None else error
        info = {
            "type": type(exc).__name__ if exc is not None else "NodeError",
            "message": str(exc) if exc is not None else error,
            "traceback": "".join(traceback.format_exception(exc)) if exc is not None else "",
        }
        if self.storages is not None and self.tables.tasks[message.name].storage is not None:
            try:
                self.storages.store_error(message.name, message.flow_name, message.node_id, message.node_args, info)
            except Exception:  # noqa: BLE001 - the task's own error is what the flow must see
                log.warning("could not store the error of %s (%s)", message.name, message.node_id, exc_info=True)
        token = uuid.uuid4().hex
        report = self.store.report(message.flow_id, NodeFailed(message.node_id, text), token, error=info)
        if report.revoked:
            if self.tracers:
                self.trace("TASK_DISCARD_RESULT", reason=f"its node was revoked while it ran; its error is dropped: "
                                                         f"{text}", **details)
            return NodeOutcome("skipped")
        self.trace("TASK_FAILURE", what=text, **details)
        self._step_inline(message.flow_id, message.node_id, token, report.claim)
        return NodeOutcome("failed", error=text)

    def _call_task(self, message: StartTask) -> Any:
        target = resolve(self.tables.tasks[message.name].ref)
        if inspect.isclass(target):
            instance = target(flow_name=message.flow_name, task_name=message.name, parent=message.parent,
                              task_id=message.node_id, dispatcher_id=message.flow_id, store=self.store,
                              storage_pool=self.storages)
            return instance.run(message.node_args)
        if _accepts(target, "task"):
            context = SelflowTask(flow_name=message.flow_name, task_name=message.name, parent=message.parent,
                                  task_id=message.node_id, dispatcher_id=message.flow_id, store=self.store,
                                  storage_pool=self.storages)
            return target(message.node_args, task=context)
        return target(message.node_args)

    # --- tracing ------------------------------------------------------------------------

    def trace(self, event: str, **details: Any) -> None:
        """Hand ``event`` to every tracer; callers on the hot path skip building ``details`` when
        there are no tracers (``if self.tracers``)."""
        emit(self.tracers, event, details)  # JSON-safe payloads; a broken tracer never breaks a flow


def _accepts(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` takes a parameter ``name``; remembered per function (signatures are slow)."""
    try:
        return _accepts_cached(func, name)
    except TypeError:  # an unhashable callable
        return _signature_has(func, name)


@functools.lru_cache(maxsize=1024)
def _accepts_cached(func: Callable[..., Any], name: str) -> bool:
    return _signature_has(func, name)


def _signature_has(func: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_json(result: Any, task: str) -> str:
    """``result`` as JSON text; a ``TypeError`` naming the task when it is not JSON-serialisable."""
    try:
        return json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {task} returned a result that is not JSON-serialisable: {exc}") from exc


def message_to_kwargs(message: StartTask) -> dict[str, Any]:
    return asdict(message)


def message_from_kwargs(kwargs: dict[str, Any]) -> StartTask:
    return StartTask(**{k: kwargs[k] for k in StartTask.__dataclass_fields__})
