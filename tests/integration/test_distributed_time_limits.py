"""Celery's per-task controls on a real worker: time limits, priority, acks_late and rate_limit.

One ``selflow worker`` (prefork, ``-c 2``: time limits need the prefork pool) for
tests/integration/data/limits, on Redis. The tasks record their starts in Redis (limits_tasks).
"""

from __future__ import annotations

import time
from statistics import median
from typing import Any, Callable, Iterator

import pytest

from itest_support import Cluster, flush, tag
from limits_support import DB_TIME_LIMITS, gaps, runs, start_limits_cluster

FLOW_TIMEOUT_S = 60
#: how long Stuck would sleep if nothing killed it
STUCK_SLEEP_S = 10


@pytest.fixture(scope="module")
def controls_cluster(redis_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_limits_cluster(store_db=DB_TIME_LIMITS, tmp_dir=tmp_path_factory.mktemp("time-limits"),
                                   name="controls", workers=1, concurrency=2)
    yield cluster
    cluster.stop()
    flush(DB_TIME_LIMITS)


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def node(report: dict[str, Any], name: str) -> dict[str, Any]:
    [entry] = [n for n in report["nodes"] if n["name"] == name]
    return entry


def test_soft_time_limit_is_raised_in_the_task_which_may_catch_it(controls_cluster: Cluster) -> None:
    # Given Patient (soft_time_limit: 1, time_limit: 3), which sleeps 2.5 s and catches
    # SoftTimeLimitExceeded
    t = tag()

    # When the flow runs
    state, report = controls_cluster.run("soft", {"tag": t, "sleep_s": 2.5}, timeout=FLOW_TIMEOUT_S)

    # Then the task was interrupted after about 1 s, caught it, and the flow succeeded with its result
    assert state.status == "success", report
    result = node(report, "Patient")["result"]
    print(f"soft time limit: caught after {result['after_s']} s")
    assert result["caught"] == "SoftTimeLimitExceeded", result
    assert 0.8 <= result["after_s"] < 2.4, result


def test_hard_time_limit_kills_the_task_and_the_fallback_runs(controls_cluster: Cluster) -> None:
    # Given Stuck (time_limit: 1), which would sleep 10 s, with the fallback Rescue
    t = tag()

    # When the flow runs
    started = time.monotonic()
    state, report = controls_cluster.run("stuck_rescued", {"tag": t, "sleep_s": STUCK_SLEEP_S}, timeout=FLOW_TIMEOUT_S)
    took = time.monotonic() - started

    # Then Stuck was killed after ~1 s, never ended, and counted as failed; its fallback saw the
    # hard time limit as Stuck's error, and the flow succeeded, long before Stuck could have woken
    print(f"hard time limit with fallback: flow ended in {took:.2f} s")
    assert state.status == "success", report
    assert list(report["failed_nodes"]) == ["Stuck"]
    assert len(runs(controls_cluster.redis, t, "start", "Stuck")) == 1
    assert runs(controls_cluster.redis, t, "end", "Stuck") == []
    rescued = node(report, "Rescue")["result"]["rescued"]
    assert "TimeLimitExceeded" in rescued["message"], rescued
    assert "TimeLimitExceeded" in node(report, "Stuck")["error"]
    assert took < STUCK_SLEEP_S - 2


def test_hard_time_limit_without_fallback_fails_the_flow_promptly(controls_cluster: Cluster) -> None:
    # Given Stuck (time_limit: 1) with no fallback
    t = tag()

    # When the flow runs
    started = time.monotonic()
    state, report = controls_cluster.run("stuck", {"tag": t, "sleep_s": STUCK_SLEEP_S}, timeout=FLOW_TIMEOUT_S)
    took = time.monotonic() - started

    # Then the flow fails with Stuck among its failed nodes, well before Stuck's sleep was over
    print(f"hard time limit without fallback: flow failed in {took:.2f} s")
    assert state.status == "failure", report
    assert len(report["failed_nodes"]["Stuck"]) == 1
    assert "TimeLimitExceeded" in node(report, "Stuck")["error"]
    assert took < STUCK_SLEEP_S - 2
    # and the worker replaced the killed pool process: the next flow runs
    state, report = controls_cluster.run("soft", {"tag": t, "sleep_s": 0.1}, timeout=FLOW_TIMEOUT_S)
    assert state.status == "success", report


def test_priority_and_early_ack_task_runs(controls_cluster: Cluster) -> None:
    # Given Urgent (priority: 7, acks_late: false), which runs as a Celery task of its own
    t = tag()

    # When the flow runs
    state, report = controls_cluster.run("urgent", {"tag": t}, timeout=FLOW_TIMEOUT_S)

    # Then the worker accepted its message and ran it once
    assert state.status == "success", report
    assert node(report, "Urgent")["result"] == "done"
    assert len(runs(controls_cluster.redis, t, "start", "Urgent")) == 1
    [urgent_id] = report["finished_nodes"]["Urgent"]
    # (Celery logs the success after the task returned, so maybe after the flow ended)
    assert wait_until(lambda: f"selflow.node.Urgent[{urgent_id}] succeeded" in controls_cluster.worker.log())


def test_celery_rate_limit_spaces_starts_on_one_worker(controls_cluster: Cluster) -> None:
    # Given Paced (rate_limit: 2/s, Celery's own, per worker), fanned out 6 times on one worker
    # with 2 pool processes
    t = tag()

    # When the flow runs
    state, report = controls_cluster.run("paced", {"tag": t, "n": 6}, timeout=FLOW_TIMEOUT_S)

    # Then every instance ran, ~0.5 s apart (without the limit both processes would start them
    # together, ~0 s apart)
    assert state.status == "success", report
    starts = runs(controls_cluster.redis, t, "start", "Paced")
    assert len(starts) == 6
    spacing = gaps(e["t"] for e in starts)
    print(f"celery rate_limit: min spacing {min(spacing):.3f} s, median {median(spacing):.3f} s, "
          f"{len({e['pid'] for e in starts})} processes")
    assert min(spacing) >= 0.5 - 0.15, spacing
    assert median(spacing) >= 0.45, spacing
    assert starts[-1]["t"] - starts[0]["t"] >= 5 * 0.5 - 0.15
    [paced_id, *_] = report["finished_nodes"]["Paced"]
    assert f"selflow.node.Paced[{paced_id}]" in controls_cluster.worker.log()
