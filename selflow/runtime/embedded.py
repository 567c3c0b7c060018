"""The embedded run: a whole flow in one process, with no broker and no server.

It drives the same ``Runtime`` (engine, task envelope, store protocol) as Celery workers do, with
a ``MemoryStore`` and a local time-ordered queue in place of the broker. Messages due later (task
retries with a countdown, flow restarts) wait in the queue until they are due.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any

from selflow.dispatcher.records import RUNNING, FlowState, StartTask
from selflow.errors import SelflowError
from selflow.runtime.limits import MemoryLimiter
from selflow.runtime.memory_store import MemoryStore
from selflow.runtime.services import build_services
from selflow.runtime.runtime import Runtime, Tracer
from selflow.tables import SystemTables


class FlowStalledError(SelflowError):
    """Nothing is left to run but the flow has not ended: a bug, reported rather than hung on."""


class LocalQueue:
    """A ``Publisher`` that keeps messages in a heap ordered by the time they are due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, Any, int]] = []
        self._seq = itertools.count()

    def start_task(self, message: StartTask, *, queue: str, countdown: float | None = None) -> None:
        self.push("node", message, countdown=countdown)

    def dispatch(self, flow_id: str, *, queue: str, countdown: float | None = None, tick: int = 0) -> None:
        self.push("dispatch", flow_id, countdown=countdown)

    def revoke(self, node_ids: list[str]) -> None:
        """Nothing to do: the store's revoke marks make the envelope drop these nodes."""

    def push(self, kind: str, payload: Any, *, countdown: float | None = None, retried: int = 0) -> None:
        due = time.monotonic() + (countdown or 0)
        heapq.heappush(self._heap, (due, next(self._seq), kind, payload, retried))

    def pop(self) -> tuple[float, str, Any, int] | None:
        if not self._heap:
            return None
        due, _, kind, payload, retried = heapq.heappop(self._heap)
        return due, kind, payload, retried

    def __len__(self) -> int:
        return len(self._heap)


class EmbeddedRunner:
    """Runs flows to their end in this process."""

    def __init__(self, tables: SystemTables, *, tracers: tuple[Tracer, ...] = ()):
        self.store = MemoryStore()
        self.queue = LocalQueue()
        services = build_services(tables, limiter=MemoryLimiter(), extra_tracers=tracers)
        self.storages = services.storages
        self.runtime = Runtime(tables, self.store, self.queue, tracers=services.tracers, storages=services.storages,
                               admission=services.admission)

    def run_flow(self, name: str, node_args: Any = None, *, selective: dict[str, Any] | None = None,
                 timeout: float | None = None) -> FlowState:
        """Start ``name`` and run everything until it ends; returns its final state."""
        flow_id = self.runtime.start_flow(name, node_args, selective=selective)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.store.status(flow_id) != RUNNING:
                state = self.store.load_state(flow_id)
                assert state is not None
                return state
            job = self.queue.pop()
            if job is None:
                raise FlowStalledError(f"flow {name} ({flow_id}) has nothing left to run but has not ended")
            due, kind, payload, retried = job
            wait = due - time.monotonic()
            if deadline is not None and time.monotonic() + max(wait, 0) > deadline:
                raise TimeoutError(f"flow {name} ({flow_id}) did not end within {timeout} s")
            if wait > 0:
                time.sleep(wait)
            self._run(kind, payload, retried)

    def _run(self, kind: str, payload: Any, retried: int) -> None:
        if kind == "dispatch":
            self.runtime.dispatcher_tick(payload)  # in one process no wake-up is lost: no safety tick
            return
        outcome = self.runtime.run_node(payload, retried_count=retried)
        if outcome.kind == "retry":
            self.queue.push("node", payload, countdown=outcome.countdown,
                            retried=retried + 1 if outcome.counted else retried)
