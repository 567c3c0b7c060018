"""The plain-Celery side of the benchmarks: one trivial task and the canvas equivalents of the
workloads of benchmarks/config, on a Celery app with Celery's own defaults.

The app reads its broker from ``BENCH_CANVAS_BROKER`` (``benchmarks/run.py`` sets it; Redis DB 12
unless told otherwise) and keeps results in the same Redis database: chords and groups need a
result backend, and storing each task's result is what selflow does for every node too. Nothing
is tuned against Celery: default prefetch (4 per process), early acks, results stored.

Workers: ``celery -A benchmarks.canvas_tasks worker -c 2 -P prefork`` from the repository root.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, chain, chord, group

BROKER = os.environ.get("BENCH_CANVAS_BROKER", "redis://127.0.0.1:6379/12")

app = Celery("bench_canvas", broker=BROKER, backend=BROKER, set_as_current=False)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(*args: Any, **kwargs: Any) -> None:
    """The trivial task: returns None at once (a chord's join receives the results and ignores them)."""
    return None


def chain100() -> Any:
    """A chain of 100 tasks: ``chain(noop.si() x 100)``."""
    return chain(noop.si() for _ in range(100))


def fanout200() -> Any:
    """One task, then 200 in parallel, then a join: ``chain(noop.si(), chord([noop.si()] x 200, noop.si()))``."""
    return chain(noop.si(), chord([noop.si() for _ in range(200)], noop.si()))


def foreach1000() -> Any:
    """1000 tasks in parallel: ``group(noop.si() x 1000)``."""
    return group(noop.si() for _ in range(1000))


def nested3() -> Any:
    """7 tasks in nested chains, the shape of the nest0 flow: T0, (T1, (T2, (T3), T4), T5), T6.

    Celery flattens nested chains into one chain of 7.
    """
    level3 = chain(noop.si())
    level2 = chain(noop.si(), level3, noop.si())
    level1 = chain(noop.si(), level2, noop.si())
    return chain(noop.si(), level1, noop.si())


WORKLOADS = {"chain100": chain100, "fanout200": fanout200, "foreach1000": foreach1000, "nested3": nested3}
