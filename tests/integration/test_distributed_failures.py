"""Retries, flow retries with revocation, and duplicated Dispatcher messages, on a real worker
(``selflow worker`` for tests/integration/data/itest, Redis as broker and store).
"""

from __future__ import annotations

import re
import time

from itest_support import Cluster, tag


def wait_until(predicate, timeout: float = 20, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def test_task_retries_counted_and_uncounted(itest_cluster: Cluster) -> None:
    # Given Flaky (max_retry: 2, fails its first two runs) and Patient (max_retry: 0, asks twice
    # for a retry of its own with SelflowTask.retry, which does not use up max_retry)
    t = tag()

    # When the flow runs
    state, report = itest_cluster.run("retries", {"tag": t})

    # Then both end well after three runs each, as one node each
    assert state.status == "success", report
    assert report["failed_nodes"] == {}
    flaky, patient = itest_cluster.redis.ids(t, "start", "Flaky"), itest_cluster.redis.ids(t, "start", "Patient")
    assert len(flaky) == 3 and len(set(flaky)) == 1
    assert len(patient) == 3 and len(set(patient)) == 1
    assert report["finished_nodes"] == {"Flaky": flaky[:1], "Patient": patient[:1]}


def test_flow_retry_revokes_running_nodes(itest_cluster: Cluster) -> None:
    # Given retry_revoke (max_retry: 1): Fail fails eagerly after 1.5 s while Slow sleeps 30 s
    t = tag()
    store = itest_cluster.store

    # When the flow runs
    started = time.monotonic()
    state, report = itest_cluster.run("retry_revoke", {"tag": t, "slow_s": 30, "fail_after_s": 1.5})

    # Then it fails after one restart, long before Slow could have slept 30 s
    assert state.status == "failure", report
    assert state.retried_count == 1
    assert time.monotonic() - started < 25
    slow_ids = itest_cluster.redis.ids(t, "start", "Slow")
    assert len(itest_cluster.redis.ids(t, "start", "Fail")) == 2
    assert len(slow_ids) == 2 and len(set(slow_ids)) == 2  # one Slow per attempt
    # and each Slow was revoked: marked in the store, never reported, no result kept
    for node_id in slow_ids:
        assert store.is_revoked(node_id)
        assert store.load_result(node_id) is None
        assert store.load_error(node_id) is None
    assert "Slow" not in report["finished_nodes"] and "Slow" not in report["failed_nodes"]
    # and terminated on the worker (Celery logs "Terminating <id>"): nothing stays active, no Slow ever ends
    inspect = itest_cluster.app.control.inspect(destination=[itest_cluster.worker.hostname], timeout=2)
    assert wait_until(lambda: (inspect.active() or {}).get(itest_cluster.worker.hostname) == [], timeout=10)
    assert itest_cluster.redis.ids(t, "end", "Slow") == []
    for node_id in slow_ids:
        assert f"Terminating {node_id}" in itest_cluster.worker.log(), f"Slow {node_id} was not terminated"


def test_failing_flow_fails(itest_cluster: Cluster) -> None:
    t = tag()
    state, report = itest_cluster.run("boom", {"tag": t, "fail_after_s": 0})
    assert state.status == "failure"
    failed = report["failed_nodes"]["Fail"]
    assert [n["error"] for n in report["nodes"] if n["id"] in failed] == ["boom"]


def dispatcher_ticks(cluster: Cluster, flow_id: str) -> int:
    """How many times the flow's Dispatcher re-scheduled itself (Celery logs each retry)."""
    return len(re.findall(rf"selflow\.dispatcher\[{flow_id}\] retry", cluster.worker.log()))


def test_duplicated_dispatcher_messages_change_nothing(itest_cluster: Cluster) -> None:
    # Given a running sleepy flow (a safety tick every 0.5 s while Sleep sleeps 4 s)
    t = tag()
    started = time.monotonic()
    handle = itest_cluster.start("sleepy", {"tag": t, "sleep_s": 4})
    assert wait_until(lambda: itest_cluster.redis.ids(t, "start", "Sleep"))
    running = handle.state()
    assert running is not None and running.status == "running"
    queue = itest_cluster.runtime.tables.flows["sleepy"].queue

    # When its Dispatcher message is published twice more by hand, as the current chain would send it
    for _ in range(2):
        itest_cluster.runtime.publisher.dispatch(handle.flow_id, queue=queue, tick=running.tick_seq)
    state = handle.wait(30)
    elapsed = time.monotonic() - started

    # Then the flow ends as it would have: every node ran once and is recorded once
    assert state.status == "success"
    assert [len(itest_cluster.redis.ids(t, "start", name)) for name in ("Sleep", "Tail")] == [1, 1]
    assert {name: len(ids) for name, ids in state.result()["finished_nodes"].items()} == {"Sleep": 1, "Tail": 1}
    # and only one chain of ticks went on: about one tick per 0.5 s of the run, not three times as many
    assert dispatcher_ticks(itest_cluster, handle.flow_id) <= elapsed / 0.5 + 4

    # When the flow has ended and its Dispatcher message comes twice more
    before = handle.state().to_dict()  # type: ignore[union-attr]
    ticks = dispatcher_ticks(itest_cluster, handle.flow_id)
    handled = re.compile(rf"selflow\.dispatcher\[{handle.flow_id}\] succeeded")
    done_before = len(handled.findall(itest_cluster.worker.log()))
    for _ in range(2):
        itest_cluster.runtime.publisher.dispatch(handle.flow_id, queue=queue, tick=before["tick_seq"])
    assert wait_until(lambda: len(handled.findall(itest_cluster.worker.log())) >= done_before + 2, timeout=30)

    # Then nothing changes and nothing runs
    assert handle.state().to_dict() == before  # type: ignore[union-attr]
    assert dispatcher_ticks(itest_cluster, handle.flow_id) == ticks
    assert [len(itest_cluster.redis.ids(t, "start", name)) for name in ("Sleep", "Tail")] == [1, 1]


def test_revoking_finished_nodes_is_harmless(itest_cluster: Cluster) -> None:
    # Given a flow that has ended
    t = tag()
    state, _ = itest_cluster.run("sleepy", {"tag": t, "sleep_s": 0})
    finished = [node_id for ids in state.result()["finished_nodes"].values() for node_id in ids]

    # When its nodes are revoked afterwards (terminate=True reaches every worker)
    itest_cluster.runtime.publisher.revoke(finished)

    # Then nothing is killed or changed, and the worker goes on running flows
    assert itest_cluster.store.load_state(state.flow_id).to_dict() == state.to_dict()  # type: ignore[union-attr]
    again, _ = itest_cluster.run("sleepy", {"tag": tag(), "sleep_s": 0})
    assert again.status == "success"
    assert not any(f"Terminating {node_id}" in itest_cluster.worker.log() for node_id in finished)
