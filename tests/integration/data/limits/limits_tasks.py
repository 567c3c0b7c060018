"""Tasks of the limit tests' configuration (``limits/``), and their foreach functions.

Every run records itself in Redis (``SELFLOW_ITEST_REDIS``) as one JSON entry of the list
``limits:<tag>:<kind>:<task>``, kind ``start`` or ``end``, with ``time.time()`` (the workers are
processes on one machine, so their clocks agree), the node id, the flow id, the process id, the
worker's (its parent process) and the node_args' ``customer`` and ``i``. Without
``SELFLOW_ITEST_REDIS`` (an embedded run in the test process) the entries go to ``RECORDED`` in
memory instead. The tests read them back with ``runs``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from selflow import SelflowTask

_clients: dict[str, "redis.Redis[Any]"] = {}
#: the lists of an embedded run, by key
RECORDED: dict[str, list[str]] = {}


def client() -> "redis.Redis[Any]":
    url = os.environ["SELFLOW_ITEST_REDIS"]
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def key(tag: str, kind: str, task: str) -> str:
    return f"limits:{tag}:{kind}:{task}"


def runs(redis_client: "redis.Redis[Any] | None", tag: str, kind: str, task: str) -> list[dict[str, Any]]:
    """What the runs of ``task`` recorded under ``tag`` (in memory when ``redis_client`` is None)."""
    entries = RECORDED.get(key(tag, kind, task), []) if redis_client is None else \
        redis_client.lrange(key(tag, kind, task), 0, -1)
    return [json.loads(entry) for entry in entries]


# --- foreach functions -------------------------------------------------------------------------


def instances(results: Any, node_args: dict[str, Any]) -> list[int]:
    """``node_args["n"]`` items: as many instances of the destination task."""
    return list(range(node_args["n"]))


def items(results: Any, node_args: dict[str, Any]) -> list[dict[str, Any]]:
    """One sub-flow per item of ``node_args["items"]``, each with the flow's tag."""
    return [{"tag": node_args["tag"], **item} for item in node_args["items"]]


# --- tasks -------------------------------------------------------------------------------------


class _Recording(SelflowTask):
    def record(self, node_args: dict[str, Any], kind: str, **extra: Any) -> None:
        entry = {"t": time.time(), "id": self.task_id, "flow": self.dispatcher_id, "pid": os.getpid(),
                 "worker": os.getppid(), "customer": node_args.get("customer"), "i": node_args.get("i"), **extra}
        if "SELFLOW_ITEST_REDIS" in os.environ:
            client().rpush(key(node_args["tag"], kind, self.task_name), json.dumps(entry))
        else:
            RECORDED.setdefault(key(node_args["tag"], kind, self.task_name), []).append(json.dumps(entry))

    def sleep(self, node_args: dict[str, Any], default: float) -> None:
        self.record(node_args, "start")
        time.sleep(node_args.get("sleep_s", default))
        self.record(node_args, "end")


class Seed(SelflowTask):
    def run(self, node_args: Any) -> None:
        return None


class Throttled(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.record(node_args, "start")


class Bounded(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.sleep(node_args, 0.3)


class Charge(_Recording):
    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        self.record(node_args, "start")
        return {"charged": node_args["customer"], "i": node_args["i"]}


class Exclusive(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.sleep(node_args, 0.3)


class Patient(_Recording):
    """Sleeps past its soft time limit, catches ``SoftTimeLimitExceeded`` and reports it."""

    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        self.record(node_args, "start")
        started = time.monotonic()
        try:
            time.sleep(node_args.get("sleep_s", 2.5))
        except SoftTimeLimitExceeded as exc:
            return {"caught": type(exc).__name__, "after_s": round(time.monotonic() - started, 2)}
        return {"caught": None, "after_s": round(time.monotonic() - started, 2)}


class Stuck(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.sleep(node_args, 10)


class Rescue(SelflowTask):
    def run(self, node_args: Any) -> dict[str, Any]:
        return {"rescued": self.parent_task_exception("Stuck")}


class Urgent(_Recording):
    def run(self, node_args: dict[str, Any]) -> str:
        self.record(node_args, "start")
        return "done"


class Paced(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.record(node_args, "start")
