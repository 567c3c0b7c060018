"""Helpers of the limit tests (test_distributed_limits.py, test_distributed_time_limits.py).

Their configuration is tests/integration/data/limits; its task module ``limits_tasks`` lives beside
it and records when each run started and ended (see its docstring). Each test module has a Redis
database of its own, flushed before and after as the other integration tests do, and refused (a
failure) while another process is connected to it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

import pytest

from itest_support import DATA, Cluster, RedisDb, flush, redis_url, selflow_worker, worker_env

LIMITS_DATA = DATA / "limits"
LIMITS_CONFIG = str(LIMITS_DATA)
#: Redis databases of the limit tests (the other tests use 0 and 4-9, 13-14; benchmarks 9-12)
DB_LIMITS, DB_TIME_LIMITS = 15, 2


def require_unused_db(db: int) -> None:
    """Fail rather than flush a database another process (a benchmark, another test run) uses."""
    import redis

    client = redis.Redis.from_url(redis_url(db))
    try:
        me = client.client_id()
        others = [c for c in client.client_list() if c.get("db") == str(db) and c.get("id") != str(me)]
    finally:
        client.close()
    if others:
        pytest.fail(f"Redis database {db} is in use by {len(others)} other connection(s) "
                    f"(e.g. {others[0].get('addr')}, last command {others[0].get('cmd')}): the limit tests "
                    f"flush it and their workers would take that process's messages")


def limits_env(store_db: int) -> dict[str, str]:
    """A worker's environment: limits_tasks importable, recording into ``store_db``."""
    env = worker_env(store_db)
    env["PYTHONPATH"] = os.pathsep.join([str(LIMITS_DATA), env["PYTHONPATH"]])
    return env


def start_limits_cluster(*, store_db: int, tmp_dir: Path, name: str, workers: int, concurrency: int = 2) -> Cluster:
    """``workers`` ``selflow worker`` processes (``-c concurrency`` each) for the limits config."""
    require_unused_db(store_db)
    flush(store_db)
    broker = redis_url(store_db)
    cluster = Cluster([LIMITS_CONFIG], broker=broker, store_db=store_db, tmp_dir=tmp_dir, name=name)
    cluster.workers = [selflow_worker(tmp_dir, f"{name}{n}", [LIMITS_CONFIG], broker=broker, store_db=store_db,
                                      concurrency=concurrency, env=limits_env(store_db))
                       for n in range(workers)]
    try:
        for worker in cluster.workers:
            worker.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def runs(db: RedisDb | None, tag: str, kind: str, task: str) -> list[dict[str, Any]]:
    """What ``limits_tasks`` recorded in ``db`` (None: in this process) for ``task``, sorted by time."""
    if str(LIMITS_DATA) not in sys.path:
        sys.path.insert(0, str(LIMITS_DATA))
    import limits_tasks

    return sorted(limits_tasks.runs(None if db is None else db.client, tag, kind, task), key=lambda entry: entry["t"])


def gaps(times: Iterable[float]) -> list[float]:
    """The time between each start and the next, in time order."""
    ordered = sorted(times)
    return [b - a for a, b in zip(ordered, ordered[1:])]


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one moment (one that ends when another starts is not open)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def intervals(starts: list[dict[str, Any]], ends: list[dict[str, Any]], by: str = "id") -> list[tuple[float, float]]:
    """(start, end) per ``by`` (node id, or flow id: from its first start to its last end)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for entry in starts:
        first[entry[by]] = min(first.get(entry[by], entry["t"]), entry["t"])
    for entry in ends:
        last[entry[by]] = max(last.get(entry[by], entry["t"]), entry["t"])
    assert first.keys() == last.keys(), f"runs that started but never ended: {set(first) ^ set(last)}"
    return [(first[k], last[k]) for k in first]
