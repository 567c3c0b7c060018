"""When a node may start: throttling, keyed rate limits and concurrency limits, applied to actions.

Throttling and keyed rate limits are decided when a node is *scheduled*: the message goes out with
a countdown to its reserved start. Concurrency is decided when a node is about to *run*: a task
over its limit goes back to the broker for a short while, a flow over its limit waits before its
first step.
"""

from __future__ import annotations

import json
import random
from typing import Any

from selflow.codegen.model import KeyedRateLimit, TaskSpec
from selflow.runtime.limits import DEFAULT_LEASE_S, Limiter
from selflow.tables import FlowTable, SystemTables

#: how long a node over its concurrency limit waits before it asks again (plus up to 50 % jitter)
CONCURRENCY_RETRY_S = 0.5
#: a slot outlives the hard time limit by this much, so a slow release never frees it early
LEASE_MARGIN_S = 30.0


def _lookup(node_args: Any, path: tuple[str, ...]) -> Any:
    value = node_args
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


class Admission:
    """Applies the limits of ``tables`` through one ``Limiter``."""

    def __init__(self, tables: SystemTables, limiter: Limiter):
        self.tables = tables
        self.limiter = limiter

    def task_countdown(self, task: TaskSpec, node_args: Any) -> tuple[float, dict[str, Any]]:
        """Seconds to hold a task back (throttling, keyed rate limit), and what held it."""
        waits: dict[str, Any] = {}
        if task.throttling:
            waits["throttled"] = self.limiter.next_start(f"task:{task.name}", task.throttling)
        if task.keyed_rate_limit is not None:
            key = keyed_value(task.keyed_rate_limit, node_args)
            if key is not None:
                waits["rate_limited"] = self.limiter.next_start(f"rate:{task.name}:{key}",
                                                                task.keyed_rate_limit.interval)
                waits["key"] = key
        countdown = max((v for k, v in waits.items() if k != "key"), default=0.0)
        return countdown, waits

    def flow_countdown(self, flow: FlowTable) -> float:
        """Seconds to hold a sub-flow back (its ``throttling``)."""
        return self.limiter.next_start(f"flow:{flow.name}", flow.throttling) if flow.throttling else 0.0

    def enter_task(self, task: TaskSpec, node_id: str) -> bool:
        """Take a concurrency slot for a task about to run; False when it must wait."""
        if task.concurrency is None:
            return True
        lease = (task.time_limit or DEFAULT_LEASE_S) + LEASE_MARGIN_S
        return self.limiter.acquire(f"task:{task.name}", task.concurrency, node_id, lease)

    def leave_task(self, task: TaskSpec, node_id: str) -> None:
        if task.concurrency is not None:
            self.limiter.release(f"task:{task.name}", node_id)

    def enter_flow(self, flow: FlowTable, flow_id: str) -> bool:
        if flow.concurrency is None:
            return True
        return self.limiter.acquire(f"flow:{flow.name}", flow.concurrency, flow_id, DEFAULT_LEASE_S * 24)

    def leave_flow(self, flow: FlowTable, flow_id: str) -> None:
        if flow.concurrency is not None:
            self.limiter.release(f"flow:{flow.name}", flow_id)


def keyed_value(limit: KeyedRateLimit, node_args: Any) -> str | None:
    """The rate-limit key of these node_args (JSON of the value), or None when they have none."""
    value = _lookup(node_args, limit.key)
    return None if value is None else json.dumps(value, sort_keys=True)


def concurrency_backoff() -> float:
    return CONCURRENCY_RETRY_S * (1 + random.random() / 2)
