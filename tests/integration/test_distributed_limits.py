"""Throttling, keyed rate limits and task and flow concurrency across a cluster of real workers.

Two ``selflow worker`` processes (``-c 2`` each) for tests/integration/data/limits, on Redis (broker,
store and limits). Each fan-out starts many instances of one limited node; the tasks record when
they started and ended (``time.time()`` in Redis: the workers share this machine's clock), and the
tests check the limit held across every worker. Tolerances are generous for a busy 2-core machine,
but each assertion fails without the limit: the instances would then start together (about 0 s
apart) and four would run at once.

The same limits apply in an embedded run, kept in memory (last tests; no Redis needed there).
"""

from __future__ import annotations

import time
from itertools import combinations
from statistics import median
from typing import Any, Iterator

import pytest

from itest_support import Cluster, compile_config, flush, tag
from limits_support import (
    DB_LIMITS,
    LIMITS_CONFIG,
    LIMITS_DATA,
    gaps,
    intervals,
    max_overlap,
    runs,
    start_limits_cluster,
)

#: the throttling of Throttled and the interval of Charge's keyed rate limit (2/s), in seconds
THROTTLE_S, KEYED_S = 0.3, 0.5
#: how much closer than the limit two observed starts may come. Starts are *planned* at the limit
#: (a countdown at scheduling), but under load a start runs late and the next one on time: the first
#: start of a fan-out, with no countdown, waits behind the fan-out's own Dispatcher steps (seen up
#: to ~0.1 s late on a busy 2-core machine). Without the limit the gaps would be ~0 s.
JITTER_S = 0.15
FLOW_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def limits_cluster(redis_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_limits_cluster(store_db=DB_LIMITS, tmp_dir=tmp_path_factory.mktemp("limits"), name="limits",
                                   workers=2, concurrency=2)
    yield cluster
    cluster.stop()
    flush(DB_LIMITS)


def run_all(cluster: Cluster, flow: str, many_args: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    """Start every flow at once, then wait for each; their final states and reports."""
    handles = [cluster.start(flow, args) for args in many_args]
    outcomes = []
    for handle in handles:
        try:
            state = handle.wait(FLOW_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"{flow} did not end in {FLOW_TIMEOUT_S} s") from None
        outcomes.append((state, handle.report()))
    return outcomes


def test_throttling_spaces_starts_across_all_workers(limits_cluster: Cluster) -> None:
    # Given Throttled (throttling: 300 ms), and two flows started at once that each fan out 6
    # instances of it, scheduled by Dispatchers on any of the 4 worker processes
    t = tag()

    # When they run
    outcomes = run_all(limits_cluster, "throttled", [{"tag": t, "n": 6}, {"tag": t, "n": 6}])

    # Then all 12 ran, and no two of them started less than ~0.3 s apart, whichever process ran them
    for state, report in outcomes:
        assert state.status == "success", report
        assert len(report["finished_nodes"]["Throttled"]) == 6
    starts = runs(limits_cluster.redis, t, "start", "Throttled")
    assert len(starts) == 12
    spacing = gaps(e["t"] for e in starts)
    print(f"throttling: min spacing {min(spacing):.3f} s (gap #{spacing.index(min(spacing))}), "
          f"median {median(spacing):.3f} s, span {starts[-1]['t'] - starts[0]['t']:.2f} s, "
          f"{len({e['pid'] for e in starts})} processes of {len({e['worker'] for e in starts})} workers")
    assert min(spacing) >= THROTTLE_S - JITTER_S, spacing
    assert median(spacing) >= THROTTLE_S * 0.9, spacing
    # so they were spread over 11 intervals (unthrottled, they start within ~0.1 s)
    assert starts[-1]["t"] - starts[0]["t"] >= 11 * THROTTLE_S - JITTER_S
    assert len({e["pid"] for e in starts}) >= 2, "one process ran every instance: the test shows nothing"


def test_task_concurrency_bounds_running_instances_across_workers(limits_cluster: Cluster) -> None:
    # Given Bounded (concurrency: 2, sleeps 0.3 s) fanned out 10 times on 4 worker processes
    t = tag()

    # When the flow runs
    [(state, report)] = run_all(limits_cluster, "bounded", [{"tag": t, "n": 10}])

    # Then every instance ran once and ended
    assert state.status == "success", report
    assert len(report["finished_nodes"]["Bounded"]) == 10
    starts, ends = runs(limits_cluster.redis, t, "start", "Bounded"), runs(limits_cluster.redis, t, "end", "Bounded")
    assert len(starts) == len(ends) == 10
    # and at no moment did more than 2 run, though 4 processes were free to run them
    spans = intervals(starts, ends)
    print(f"task concurrency: max overlap {max_overlap(spans)}, {len({e['pid'] for e in starts})} processes, "
          f"span {ends[-1]['t'] - starts[0]['t']:.2f} s")
    assert max_overlap(spans) == 2, spans
    # so 10 runs of 0.3 s took at least 5 rounds
    assert ends[-1]["t"] - starts[0]["t"] >= 5 * 0.3 - JITTER_S


def test_keyed_rate_limit_spaces_starts_per_customer_only(limits_cluster: Cluster) -> None:
    # Given Charge (keyed_rate_limit: {key: customer, rate: 2/s}) in a charge sub-flow, one per
    # item: 4 charges for each of 3 customers, all started at once
    t = tag()
    items = [{"customer": customer, "i": i} for i in range(4) for customer in ("ada", "bob", "cy")]

    # When the flow runs
    [(state, report)] = run_all(limits_cluster, "customers", [{"tag": t, "items": items}])

    # Then every charge ran
    assert state.status == "success", report
    assert len(report["finished_nodes"]["charge"]) == 12
    starts = runs(limits_cluster.redis, t, "start", "Charge")
    assert sorted((e["customer"], e["i"]) for e in starts) == sorted((i["customer"], i["i"]) for i in items)
    # and the charges of one customer started at least ~0.5 s apart
    per_customer = {c: gaps(e["t"] for e in starts if e["customer"] == c) for c in ("ada", "bob", "cy")}
    print(f"keyed rate limit: min spacing per customer {min(min(g) for g in per_customer.values()):.3f} s "
          f"(gaps #{[g.index(min(g)) for g in per_customer.values()]}), "
          f"min spacing overall {min(gaps(e['t'] for e in starts)):.3f} s, "
          f"span {starts[-1]['t'] - starts[0]['t']:.2f} s")
    for customer, spacing in per_customer.items():
        assert min(spacing) >= KEYED_S - JITTER_S, (customer, spacing)
        assert sum(spacing) >= 3 * KEYED_S - JITTER_S, (customer, spacing)
    assert median([gap for spacing in per_customer.values() for gap in spacing]) >= KEYED_S * 0.9, per_customer
    # while different customers did not wait for each other: starts of two customers came closer
    # together than the interval, and the whole took well under 12 starts in a row (5.5 s)
    assert min(gaps(e["t"] for e in starts)) < KEYED_S / 2
    assert starts[-1]["t"] - starts[0]["t"] < 11 * KEYED_S * 0.75


def test_flow_concurrency_one_runs_sub_flows_one_at_a_time(limits_cluster: Cluster) -> None:
    # Given exclusive (concurrency: 1; two steps of 0.3 s), started 4 times at once by a foreach
    t = tag()

    # When the parent flow runs
    [(state, report)] = run_all(limits_cluster, "exclusive_many", [{"tag": t, "items": [{"i": i} for i in range(4)]}])

    # Then every sub-flow succeeded
    assert state.status == "success", report
    sub_flows = report["finished_nodes"]["exclusive"]
    assert len(sub_flows) == 4
    # and no two ever ran at the same time: from the first step's start to the last step's end,
    # the sub-flows' spans do not overlap
    db = limits_cluster.redis
    starts = runs(db, t, "start", "Exclusive") + runs(db, t, "start", "ExclusiveAgain")
    ends = runs(db, t, "end", "Exclusive") + runs(db, t, "end", "ExclusiveAgain")
    spans = sorted(intervals(starts, ends, by="flow"))
    print(f"flow concurrency: max overlap {max_overlap(spans)}, "
          f"min pause between sub-flows {min(b[0] - a[1] for a, b in zip(spans, spans[1:])):.3f} s")
    assert {e["flow"] for e in starts} == set(sub_flows)
    assert len(spans) == 4
    for (start_a, end_a), (start_b, end_b) in combinations(spans, 2):
        assert end_a <= start_b or end_b <= start_a, spans
    assert max_overlap(spans) == 1


# --- the same limits in an embedded run (MemoryLimiter) -----------------------------------------


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An ``EmbeddedRunner`` for the limits config; its tasks record in this process's memory."""
    from selflow.runtime.embedded import EmbeddedRunner
    from selflow.runtime.limits import MemoryLimiter

    monkeypatch.syspath_prepend(str(LIMITS_DATA))
    monkeypatch.delenv("SELFLOW_ITEST_REDIS", raising=False)
    runner = EmbeddedRunner(compile_config([LIMITS_CONFIG]))
    assert isinstance(runner.runtime.admission.limiter, MemoryLimiter)
    return runner


def test_embedded_throttling_spaces_starts(embedded: Any) -> None:
    t = tag()
    started = time.monotonic()
    state = embedded.run_flow("throttled", {"tag": t, "n": 5}, timeout=FLOW_TIMEOUT_S)
    assert state.status == "success"
    starts = runs(None, t, "start", "Throttled")
    assert len(starts) == 5
    assert min(gaps(e["t"] for e in starts)) >= THROTTLE_S - 0.02  # one process: starts are on time
    assert time.monotonic() - started >= 4 * (THROTTLE_S - JITTER_S)


def test_embedded_task_concurrency_runs_every_instance(embedded: Any) -> None:
    # The embedded run executes one node at a time, so the limit of 2 is never reached; the
    # instances must still all run, each taking and giving back its slot.
    t = tag()
    state = embedded.run_flow("bounded", {"tag": t, "n": 4, "sleep_s": 0.05}, timeout=FLOW_TIMEOUT_S)
    assert state.status == "success"
    assert len(state.result()["finished_nodes"]["Bounded"]) == 4
    spans = intervals(runs(None, t, "start", "Bounded"), runs(None, t, "end", "Bounded"))
    assert len(spans) == 4 and max_overlap(spans) <= 2
    limiter = embedded.runtime.admission.limiter  # every slot was given back: both are free
    assert limiter.acquire("task:Bounded", 2, "probe-1") and limiter.acquire("task:Bounded", 2, "probe-2")


def test_embedded_keyed_rate_limit_and_flow_concurrency(embedded: Any) -> None:
    t = tag()
    items = [{"customer": customer, "i": i} for i in range(3) for customer in ("ada", "bob")]
    state = embedded.run_flow("customers", {"tag": t, "items": items}, timeout=FLOW_TIMEOUT_S)
    assert state.status == "success"
    starts = runs(None, t, "start", "Charge")
    assert len(starts) == 6
    for customer in ("ada", "bob"):
        assert min(gaps(e["t"] for e in starts if e["customer"] == customer)) >= KEYED_S - 0.02
    assert min(gaps(e["t"] for e in starts)) < KEYED_S / 2

    # sub-flows do run interleaved in one process, so flow concurrency binds there too
    state = embedded.run_flow("exclusive_many", {"tag": t, "items": [{"i": i, "sleep_s": 0.05} for i in range(3)]},
                              timeout=FLOW_TIMEOUT_S)
    assert state.status == "success"
    assert len(state.result()["finished_nodes"]["exclusive"]) == 3
    starts = runs(None, t, "start", "Exclusive") + runs(None, t, "start", "ExclusiveAgain")
    ends = runs(None, t, "end", "Exclusive") + runs(None, t, "end", "ExclusiveAgain")
    assert max_overlap(intervals(starts, ends, by="flow")) == 1
