"""selflow on a Celery app: the Dispatcher task, the node task (the envelope) and their publisher.

``install(app, tables, store)`` registers two tasks:

* ``selflow.dispatcher`` (kwargs ``flow_id``, ``tick``), task id = the flow id: one step of the
  flow (``Runtime.dispatcher_tick``). While the flow runs it re-schedules itself with
  ``self.retry(countdown=...)`` as the flow's safety tick, keeping its task id. ``tick`` numbers
  the chain: only the flow's current chain re-schedules itself, so a duplicated message or the
  chain of an attempt before a flow retry dies out at its next tick.
* ``selflow.node`` (kwargs = the ``StartTask`` fields and ``user_retries``), task id = the node id:
  runs the user's task through ``Runtime.run_node``, which keeps the result in the store and
  steps the flow inline. Retries are Celery retries (``self.retry``); ``user_retries`` counts
  those that do not use up the task's ``max_retry`` (``SelflowTask.retry`` and store outages).

Both are ``acks_late`` with ``reject_on_worker_lost``: a worker killed mid-task loses nothing; the
broker hands the message to another worker, so a node may run more than once (at least once).
Celery results are ignored: the outcome of a flow is read from the store (``wait_for_end``).

Revoking nodes (flow retries, eager failures) marks them revoked in the store, so a node that is
still running never reports, and asks the workers to terminate them
(``control.revoke(terminate=True)``). Sub-flow ids are left to ``Runtime.cancel_flow``: terminating
their Dispatcher mid-step would leave the flow locked.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from celery import Celery, Task
from celery.exceptions import TimeLimitExceeded

from selflow.dispatcher.records import StartTask
from selflow.errors import StorageError
from selflow.runtime.runtime import STORE_RETRY_S, Runtime, Tracer, message_from_kwargs, message_to_kwargs
from selflow.runtime.limits import Limiter, MemoryLimiter, RedisLimiter
from selflow.runtime.services import build_services
from selflow.runtime.store import FlowStore
from selflow.tables import SystemTables, TaskSpec

__all__ = ["CeleryPublisher", "CeleryRuntime", "DISPATCHER_TASK", "NODE_TASK", "install", "queues_of"]

log = logging.getLogger("selflow.celery")

NODE_TASK = "selflow.node"
DISPATCHER_TASK = "selflow.dispatcher"

# shared=False: each app gets its own tasks, bound to the runtime installed on it (a shared task
# would be added to every app created later, with the first app's runtime)
_TASK_OPTIONS: dict[str, Any] = dict(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
                                     max_retries=None, typing=False, shared=False)


def queues_of(tables: SystemTables) -> tuple[str, ...]:
    """Every queue a worker must consume to run all of ``tables``: task and dispatcher queues."""
    names = {spec.queue for spec in tables.tasks.values()} | {flow.queue for flow in tables.flows.values()}
    return tuple(sorted(names))


class CeleryPublisher:
    """The ``Publisher`` of distributed runs: Celery messages by task name.

    ``batch()`` sends every message of a dispatcher step through one producer, grouped into one
    write where the transport can (kombu's ``Producer.batch``: one Redis pipeline for a fan-out of
    n tasks instead of n round trips, each on a new client).
    """

    def __init__(self, app: Celery, store: FlowStore, tables: SystemTables):
        self.app = app
        self.store = store
        self.tables = tables
        self._local = threading.local()  # the producer of the current batch, per thread (threads pool)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Messages sent inside go out together when it ends (or as they are sent, on transports
        that cannot batch); on an exception, those not yet written are dropped."""
        if getattr(self._local, "producer", None) is not None:
            yield  # nested: the outer batch sends them
            return
        with self.app.producer_or_acquire() as producer:
            batch = getattr(producer, "batch", None)  # kombu >= 5.7
            self._local.producer = producer
            try:
                if batch is None or not getattr(producer, "supports_batch_publish", False):
                    yield
                else:
                    with batch():
                        yield
            finally:
                self._local.producer = None

    def _send(self, name: str, kwargs: dict[str, Any], task_id: str, queue: str, countdown: float | None,
              kwargsrepr: str, **options: Any) -> None:
        # argsrepr/kwargsrepr (what monitors show) given here spare Celery a saferepr of every message
        self.app.send_task(name, kwargs=kwargs, task_id=task_id, queue=queue, countdown=countdown,
                           producer=getattr(self._local, "producer", None), argsrepr="()", kwargsrepr=kwargsrepr,
                           **options)

    def start_task(self, message: StartTask, *, queue: str, countdown: float | None = None) -> None:
        spec = self.tables.tasks[message.name]
        options = {key: value for key, value in (("priority", spec.priority), ("soft_time_limit", spec.soft_time_limit),
                                                 ("time_limit", spec.time_limit)) if value is not None}
        self._send(node_task_name(spec), message_to_kwargs(message), message.node_id, queue, countdown,
                   f"{{'name': {message.name!r}, 'flow_name': {message.flow_name!r}, 'flow_id': {message.flow_id!r}}}",
                   **options)

    def dispatch(self, flow_id: str, *, queue: str, countdown: float | None = None, tick: int = 0) -> None:
        self._send(DISPATCHER_TASK, {"flow_id": flow_id, "tick": tick}, flow_id, queue, countdown,
                   f"{{'flow_id': {flow_id!r}, 'tick': {tick!r}}}")

    def revoke(self, node_ids: list[str]) -> None:
        # Task nodes only: the runtime cancels sub-flows through their state. Revoking a node that
        # has already finished only adds its id to the workers' revoked sets.
        tasks = [node_id for node_id in node_ids if self.store.load_state(node_id) is None]
        if tasks:
            self.app.control.revoke(tasks, terminate=True)


@dataclass
class CeleryRuntime:
    """What ``install`` set up on one Celery app."""

    app: Celery
    tables: SystemTables
    store: FlowStore
    runtime: Runtime
    publisher: CeleryPublisher

    @property
    def queues(self) -> tuple[str, ...]:
        return queues_of(self.tables)


class _Installed:
    """The runtime the tasks registered on one app use; ``install`` again replaces it."""

    def __init__(self) -> None:
        self.current: CeleryRuntime | None = None

    def get(self) -> CeleryRuntime:
        if self.current is None:  # pragma: no cover - the tasks are registered by install
            raise RuntimeError("selflow is not installed on this Celery app")
        return self.current


def install(app: Celery, tables: SystemTables, store: FlowStore, *, tracers: tuple[Tracer, ...] = (),
            add_queues: bool = True) -> CeleryRuntime:
    """Register selflow's tasks on ``app`` and return the runtime they use.

    With ``add_queues`` the configuration's queues join the app's queue list, so a worker started
    without ``-Q`` consumes them too.
    """
    publisher = CeleryPublisher(app, store, tables)
    services = build_services(tables, limiter=_limiter_for(store), celery_app=app, extra_tracers=tracers)
    core = Runtime(tables, store, publisher, tracers=services.tracers, storages=services.storages,
                   admission=services.admission)
    runtime = CeleryRuntime(app, tables, store, core, publisher)
    installed: _Installed | None = getattr(app, "_selflow_installed", None)
    if installed is None:
        installed = _Installed()
        app._selflow_installed = installed  # type: ignore[attr-defined]
        _register(app, installed)
    installed.current = runtime
    for spec in tables.tasks.values():
        name = node_task_name(spec)
        if name != NODE_TASK and name not in app.tasks:
            _register_node(app, installed, name, acks_late=spec.acks_late, rate_limit=spec.rate_limit)
    if add_queues:
        known = app.amqp.queues
        for name in runtime.queues:
            if name not in known.consume_from:
                known.select_add(name)  # consumed by default; an explicit -Q still decides
    return runtime


def _limiter_for(store: FlowStore) -> Limiter:
    """Limits live where the flow state lives: in Redis for every worker, else in this process."""
    client = getattr(store, "client", None)
    if client is not None:
        return RedisLimiter(client, prefix=getattr(store, "prefix", "selflow"))
    return MemoryLimiter()


def _register(app: Celery, installed: _Installed) -> None:
    @app.task(name=DISPATCHER_TASK, **_TASK_OPTIONS)
    def dispatcher(self: Any, flow_id: str, tick: int = 0) -> None:
        runtime = installed.get().runtime
        try:
            countdown = runtime.dispatcher_tick(flow_id, tick)
        except StorageError as exc:
            log.warning("flow %s: the state store failed (%s); stepping again in %s s", flow_id, exc, STORE_RETRY_S)
            raise self.retry(kwargs={"flow_id": flow_id, "tick": tick}, countdown=STORE_RETRY_S, max_retries=None)
        if countdown is not None:
            raise self.retry(kwargs={"flow_id": flow_id, "tick": tick + 1}, countdown=countdown, max_retries=None)

    _register_node(app, installed, NODE_TASK)


def node_task_name(spec: TaskSpec) -> str:
    """The Celery task a selflow task runs as: its own when it needs Celery options of its own.

    Celery applies ``rate_limit`` and ``acks_late`` per Celery task, so a selflow task with a rate
    limit, or without late acks, gets a Celery task of its own (``selflow.node.<name>``).
    """
    return f"{NODE_TASK}.{spec.name}" if spec.rate_limit is not None or not spec.acks_late else NODE_TASK


class _NodeTask(Task):  # type: ignore[misc]
    """The envelope's Celery task; a hard time limit kills the process running it, so the worker's
    main process reports the node as failed here (fallbacks then apply)."""

    installed: "_Installed | None" = None

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if not isinstance(exc, TimeLimitExceeded) or self.installed is None:
            return
        runtime = self.installed.get().runtime
        message = message_from_kwargs({k: v for k, v in kwargs.items() if k != "user_retries"})
        if runtime.admission is not None:
            runtime.admission.leave_task(runtime.tables.tasks[message.name], message.node_id)
        runtime.fail_node(message, f"TimeLimitExceeded: hard time limit ({exc.args[0] if exc.args else '?'} s) "
                                   f"exceeded; the task was killed")


def _register_node(app: Celery, installed: _Installed, name: str, **options: Any) -> None:
    base = type("SelflowNodeTask", (_NodeTask,), {"installed": installed})

    @app.task(name=name, base=base, **{**_TASK_OPTIONS, **options})
    def node(self: Any, **kwargs: Any) -> None:
        runtime = installed.get().runtime
        user_retries = int(kwargs.pop("user_retries", 0))
        message = message_from_kwargs(kwargs)
        try:
            outcome = runtime.run_node(message, retried_count=self.request.retries - user_retries)
        except StorageError as exc:
            log.warning("node %s (%s): the state store failed (%s); running it again in %s s", message.node_id,
                        message.name, exc, STORE_RETRY_S)
            raise self.retry(kwargs={**kwargs, "user_retries": user_retries + 1}, countdown=STORE_RETRY_S,
                             max_retries=None)
        if outcome.kind == "retry":
            free = 0 if outcome.counted else 1
            raise self.retry(kwargs={**kwargs, "user_retries": user_retries + free}, countdown=outcome.countdown,
                             max_retries=None)
