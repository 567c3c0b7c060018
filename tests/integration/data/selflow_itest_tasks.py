"""Tasks of the integration tests' configuration (``itest/``).

Each records what it does in Redis (``SELFLOW_ITEST_REDIS``), under keys namespaced by the
``tag`` of its flow arguments, so a test can count how often a node really started or ended:
``itest:<tag>:start:<task>`` and ``itest:<tag>:end:<task>`` are lists of node ids.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from selflow import SelflowTask

_client = redis.Redis.from_url(os.environ["SELFLOW_ITEST_REDIS"])


def key(tag: str, kind: str, task: str) -> str:
    return f"itest:{tag}:{kind}:{task}"


class _Recording(SelflowTask):
    def record(self, node_args: dict[str, Any], kind: str) -> None:
        _client.rpush(key(node_args["tag"], kind, self.task_name), self.task_id)


class Slow(_Recording):
    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        self.record(node_args, "start")
        time.sleep(node_args.get("slow_s", 30))
        self.record(node_args, "end")
        return {"slow": True}


class Fail(_Recording):
    def run(self, node_args: dict[str, Any]) -> None:
        self.record(node_args, "start")
        time.sleep(node_args.get("fail_after_s", 0.5))
        raise RuntimeError("boom")


class Sleep(_Recording):
    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        self.record(node_args, "start")
        time.sleep(node_args.get("sleep_s", 1))
        self.record(node_args, "end")
        return {"slept": node_args.get("sleep_s", 1)}


class Tail(_Recording):
    def run(self, node_args: dict[str, Any]) -> dict[str, Any]:
        self.record(node_args, "start")
        return {"after": self.parent_task_result("Sleep")}


class Flaky(_Recording):
    def run(self, node_args: dict[str, Any]) -> str:
        self.record(node_args, "start")
        if _client.incr(key(node_args["tag"], "attempts", "Flaky")) <= 2:
            raise RuntimeError("not yet")
        return "third time lucky"


class Patient(_Recording):
    def run(self, node_args: dict[str, Any]) -> str:
        self.record(node_args, "start")
        if _client.incr(key(node_args["tag"], "attempts", "Patient")) <= 2:
            self.retry(countdown=0.1)
        return "done waiting"
