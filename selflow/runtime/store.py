"""Where running flows keep their state, node results and pending events.

The dispatcher step for a flow runs under that flow's lock: load the state, read the inbox, step,
publish, then save the state and drop the events it consumed in one atomic write. Events are only
removed after the state that consumed them is saved, so a worker that dies mid-step loses nothing
(the engine ignores an event it has already seen).

The primitives (``try_lock``, ``load_state``, ``read_events``, ``commit``, ``unlock``...) are what a
store must implement. The hot path of the runtime uses three compound calls built on them, which a
store may override to do each in one round trip (``RedisStore`` does, with Lua scripts):

* ``lock_and_load``: take the lock, and with it the state and the inbox;
* ``commit_and_continue``: commit, then keep the lock with the events that came meanwhile, or
  release it when none did;
* ``report``: the task envelope's report: unless the node was revoked, keep its result, append its
  event to the flow's inbox, then ``lock_and_load`` the flow.

Two implementations: ``MemoryStore`` (embedded runs, tests) and ``RedisStore`` (distributed runs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from selflow.dispatcher.records import RUNNING, Event, FlowState

#: how long a dispatcher step may hold a flow's lock before another worker may take it over
LOCK_TTL_S = 60.0
#: how long finished flows and node results are kept
RESULT_TTL_S = 7 * 24 * 3600


class _Nothing:
    """The type of ``NOTHING``: "no value given", where ``None`` is a value (a task may return None)."""

    _instance: "_Nothing | None" = None

    def __new__(cls) -> "_Nothing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


#: "no result to keep" for ``report`` and ``commit_and_continue``
NOTHING: Any = _Nothing()


@dataclass
class Claim:
    """A flow's lock, held, with what a dispatcher step needs: the state (``None`` if the store does
    not know the flow) and the inbox, oldest first."""

    state: FlowState | None
    events: list[Event]


@dataclass
class Report:
    """What ``report`` did: nothing at all for a ``revoked`` node; otherwise the event is in the
    inbox, and ``claim`` holds the flow's lock when it was free (``None`` when another step holds it:
    that step sees the event before it lets go)."""

    revoked: bool = False
    claim: Claim | None = None


class FlowStore(ABC):
    """State store for flows, node results and node events."""

    # --- node results -------------------------------------------------------------------

    @abstractmethod
    def save_result(self, node_id: str, result: Any) -> None:
        """Keep a finished node's result (JSON-serialisable) for its children and conditions."""

    @abstractmethod
    def load_result(self, node_id: str) -> Any:
        """The result of a finished node; ``None`` when there is none."""

    @abstractmethod
    def save_error(self, node_id: str, error: dict[str, Any]) -> None:
        """Keep a failed node's error (``{"type", "message", "traceback"}``) for fallbacks."""

    @abstractmethod
    def load_error(self, node_id: str) -> dict[str, Any] | None:
        ...

    # --- flow state and inbox -----------------------------------------------------------

    @abstractmethod
    def create_flow(self, state: FlowState) -> None:
        """Store the state of a new flow (before its first step)."""

    @abstractmethod
    def load_state(self, flow_id: str) -> FlowState | None:
        ...

    @abstractmethod
    def push_event(self, flow_id: str, event: Event) -> None:
        """Append a node event to the flow's inbox."""

    @abstractmethod
    def read_events(self, flow_id: str) -> list[Event]:
        """The inbox, oldest first, without removing anything."""

    @abstractmethod
    def commit(self, state: FlowState, consumed: int) -> None:
        """Atomically save ``state`` and drop the ``consumed`` oldest inbox events."""

    @abstractmethod
    def has_events(self, flow_id: str) -> bool:
        ...

    # --- locking ------------------------------------------------------------------------

    @abstractmethod
    def try_lock(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> bool:
        """Take the flow's lock if it is free; never blocks."""

    @abstractmethod
    def unlock(self, flow_id: str, token: str) -> None:
        """Release the lock if ``token`` still holds it."""

    # --- revocation and completion ------------------------------------------------------

    @abstractmethod
    def revoke(self, node_ids: list[str]) -> None:
        """Mark nodes as revoked, so that an envelope that still runs one drops its outcome."""

    @abstractmethod
    def is_revoked(self, node_id: str) -> bool:
        ...

    @abstractmethod
    def announce_end(self, flow_id: str) -> None:
        """Wake whoever waits for this flow (``wait_for_end``)."""

    @abstractmethod
    def wait_for_end(self, flow_id: str, timeout: float | None) -> FlowState | None:
        """Block until the flow is no longer running (or ``timeout``); returns its last state."""

    def close(self) -> None:
        """Release connections; the default has none."""

    # --- compound calls of the hot path -------------------------------------------------
    # Each default is built from the primitives above and is as correct as they are; a store
    # overrides them to save round trips, not to change what they do.

    def lock_and_load(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> Claim | None:
        """``try_lock``, and when it succeeds the flow's state and inbox; ``None`` when the lock is taken.

        The caller holds the lock afterwards and must ``commit_and_continue`` or ``unlock``.
        """
        if not self.try_lock(flow_id, token, ttl):
            return None
        try:
            return Claim(self.load_state(flow_id), self.read_events(flow_id))
        except BaseException:
            self.unlock(flow_id, token)
            raise

    def commit_and_continue(self, state: FlowState, consumed: int, token: str, *, result: Any = NOTHING,
                            ttl: float = LOCK_TTL_S) -> Claim | None:
        """``commit(state, consumed)``; then the next step's ``Claim``, or ``None`` with the lock released.

        With ``result``, the flow's result (``state.result()`` of an ended flow) is kept under the
        flow id as ``save_result`` would, no later than the state: whoever sees the ended state can
        read it.

        When the flow still runs and events came while the caller stepped, the caller gets the
        lock back (held for ``ttl`` from now) with those events, to step them and commit again. A
        store that can do that atomically hands back the caller's own ``state`` as the claim's
        state (it is what was just committed); this default releases the lock and takes it again,
        loading the state. Otherwise the lock is released and ``None`` returned. Either way an
        event pushed by a reporter that found the lock taken is in the claim, or that reporter
        finds the lock free itself: never lost.
        """
        if result is not NOTHING:
            self.save_result(state.flow_id, result)
        try:
            self.commit(state, consumed)
        finally:
            self.unlock(state.flow_id, token)
        if state.status != RUNNING or not self.has_events(state.flow_id):
            return None
        return self.lock_and_load(state.flow_id, token, ttl)

    def report(self, flow_id: str, event: Event, token: str, *, result: Any = NOTHING,
               error: dict[str, Any] | None = None, check_revoked: bool = True,
               ttl: float = LOCK_TTL_S) -> Report:
        """The report of a finished node (``event.node_id``) to its flow, then ``lock_and_load``.

        With ``check_revoked``, a revoked node changes nothing and gives ``Report(revoked=True)``.
        Otherwise ``result`` (when given) and ``error`` (when given) are kept as ``save_result`` and
        ``save_error`` would, the event is appended to the flow's inbox, and the flow's lock is
        tried: ``Report.claim`` holds it (with state and inbox) when it was free.
        """
        node_id = event.node_id
        if check_revoked and self.is_revoked(node_id):
            return Report(revoked=True)
        if result is not NOTHING:
            self.save_result(node_id, result)
        if error is not None:
            self.save_error(node_id, error)
        self.push_event(flow_id, event)
        return Report(claim=self.lock_and_load(flow_id, token, ttl))
