"""How the runtime hands work to workers: Celery in distributed runs, a local queue when embedded."""

from __future__ import annotations

from typing import Protocol

from selflow.dispatcher.records import StartTask


class Publisher(Protocol):
    def start_task(self, message: StartTask, *, queue: str, countdown: float | None = None) -> None:
        """Send one task envelope message."""

    def dispatch(self, flow_id: str, *, queue: str, countdown: float | None = None, tick: int = 0) -> None:
        """Send the flow's Dispatcher message (first step, safety tick, or restart)."""

    def revoke(self, node_ids: list[str]) -> None:
        """Ask workers to drop (or stop) these tasks."""

    # Optional: ``batch() -> ContextManager[None]``. The runtime sends a step's messages inside
    # it when the publisher has one (``CeleryPublisher.batch``), so they can go out in one write.
