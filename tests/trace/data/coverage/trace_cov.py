"""Tasks, a trace function, a storage adapter and a result cache for tests/trace/test_trace_coverage.py.

The trace function ``record`` is configured in ``coverage.yml`` (``global.trace``), so every event
goes through the same tracers a worker builds from the YAML.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis

from selflow import FatalTaskError, SelflowTask
from selflow.caches import CacheMissError
from selflow.storages import DataStorage, RecordNotFound

#: (event, payload) of every event traced, in order
EVENTS: list[tuple[str, dict[str, Any]]] = []
#: the runtime SelfCancel cancels its own flow through (the test sets it)
RUNTIME: Any = None
#: task name -> node id of an earlier run, offered for reuse by ``reuse_previous``
PREVIOUS: dict[str, str] = {}

_lock = threading.Lock()
_retried: set[str] = set()


def record(event: str, details: dict[str, Any]) -> None:
    with _lock:
        EVENTS.append((event, details))


# --- tasks ----------------------------------------------------------------------------------


def produce(node_args: Any) -> dict[str, Any]:
    return {"items": [1, 2], "customer": node_args["customer"]}


def idle(node_args: Any) -> str:
    return "done"


def breaks(node_args: Any) -> None:
    raise FatalTaskError("out of order")


class Slow(SelflowTask):
    """Asks for one retry on its first run (a user retry), so its sub-flow runs for a while."""

    def run(self, node_args: Any) -> dict[str, Any]:
        with _lock:
            first = self.task_id not in _retried
            _retried.add(self.task_id)
        if first:
            self.retry(countdown=0.3)
        return {"item": node_args}


class SelfCancel(SelflowTask):
    """Cancels its own flow while it runs, as an operator would: its result comes too late."""

    def run(self, node_args: Any) -> dict[str, Any]:
        RUNTIME.cancel_flow(self.dispatcher_id, reason="cancelled while SelfCancel ran")
        return {"late": True}


# --- a foreach function and a selective-run function -----------------------------------------


def two_items(results: Any, node_args: Any) -> list[dict[str, Any]]:
    return [{"n": n} for n in results.get("Produce")["items"]]


def reuse_previous(flow_name: str, node_name: str, node_args: Any, task_names: Any, results: Any) -> str | None:
    return PREVIOUS.get(node_name)


# --- a storage that keeps no errors, and a result cache on a Redis that is down ---------------


class NoErrorStorage(DataStorage):
    """A custom adapter without ``store_error``: failed tasks' errors are not stored."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def is_connected(self) -> bool:
        return self.connected

    def disconnect(self) -> None:
        self.connected = False

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        self.records[task_id] = (flow_name, task_name, result)
        return task_id

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        found = self.records.get(task_id)
        if found is None or found[:2] != (flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        return found[2]


class RedisResultCache:
    """A result cache kept in Redis (Selinon's cache interface: ``add`` and ``get``) on 127.0.0.1,
    at the port the environment variable ``port_variable`` names."""

    def __init__(self, port_variable: str):
        self.client = redis.Redis.from_url(f"redis://127.0.0.1:{os.environ[port_variable]}/0")

    def add(self, item_id: str, item: Any, task_name: str | None = None, flow_name: str | None = None) -> None:
        self.client.set(f"cache:{item_id}", repr(item))

    def get(self, item_id: str, task_name: str | None = None, flow_name: str | None = None) -> Any:
        raw = self.client.get(f"cache:{item_id}")
        if raw is None:
            raise CacheMissError(item_id)
        return raw
