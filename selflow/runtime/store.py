"""Where running flows keep their state, node results and pending events.

The dispatcher step for a flow runs under that flow's lock: load the state, read the inbox, step,
publish, then save the state and drop the events it consumed in one atomic write. Events are only
removed after the state that consumed them is saved, so a worker that dies mid-step loses nothing
(the engine ignores an event it has already seen).

Two implementations: ``MemoryStore`` (embedded runs, tests) and ``RedisStore`` (distributed runs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from selflow.dispatcher.records import Event, FlowState

#: how long a dispatcher step may hold a flow's lock before another worker may take it over
LOCK_TTL_S = 60.0
#: how long finished flows and node results are kept
RESULT_TTL_S = 7 * 24 * 3600


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
