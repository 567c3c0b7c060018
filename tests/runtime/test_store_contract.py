"""One contract for every ``FlowStore``: each test runs on ``MemoryStore``, on ``RedisStore``, and on
``PrimitivesOnly`` (a store that implements only the abstract methods, so that the default compound
calls of ``FlowStore`` are held to the same contract as the stores' own faster versions).

The Redis runs talk to the real server on 127.0.0.1:6379, each under its own random key prefix whose
keys are deleted afterwards. Without a server they are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest

from selflow.dispatcher.records import FAILURE, RUNNING, SUCCESS, FlowState, NodeFailed, NodeSucceeded
from selflow.runtime.memory_store import MemoryStore
from selflow.runtime.store import NOTHING, Claim, FlowStore, Report

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_store():
    redis = pytest.importorskip("redis")
    from selflow.runtime.redis_store import RedisStore

    try:  # a plain connect: redis-py would retry a refused connection for seconds
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        message = f"Redis is not running at {REDIS_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"selflow-test-{uuid.uuid4().hex}"
    store = RedisStore(client, prefix=prefix)

    def cleanup() -> None:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    return store, cleanup


class PrimitivesOnly(FlowStore):
    """Every abstract method, delegated to a ``MemoryStore``; the compound calls are ``FlowStore``'s defaults."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    save_result = property(lambda self: self._inner.save_result)
    load_result = property(lambda self: self._inner.load_result)
    save_error = property(lambda self: self._inner.save_error)
    load_error = property(lambda self: self._inner.load_error)
    create_flow = property(lambda self: self._inner.create_flow)
    load_state = property(lambda self: self._inner.load_state)
    push_event = property(lambda self: self._inner.push_event)
    read_events = property(lambda self: self._inner.read_events)
    commit = property(lambda self: self._inner.commit)
    has_events = property(lambda self: self._inner.has_events)
    try_lock = property(lambda self: self._inner.try_lock)
    unlock = property(lambda self: self._inner.unlock)
    revoke = property(lambda self: self._inner.revoke)
    is_revoked = property(lambda self: self._inner.is_revoked)
    announce_end = property(lambda self: self._inner.announce_end)
    wait_for_end = property(lambda self: self._inner.wait_for_end)


def test_primitives_only_keeps_the_default_compound_calls():
    for name in ("lock_and_load", "commit_and_continue", "report"):
        assert getattr(PrimitivesOnly, name) is getattr(FlowStore, name)


@pytest.fixture(params=["memory", "primitives", pytest.param("redis", marks=pytest.mark.integration)])
def store(request) -> FlowStore:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "primitives":
        yield PrimitivesOnly()
        return
    redis_store, cleanup = _redis_store()
    try:
        yield redis_store
    finally:
        cleanup()


def new_state(flow_id: str | None = None, **changes) -> FlowState:
    state = FlowState.new(flow_id or f"flow-{uuid.uuid4().hex[:8]}", "main", {"x": 1})
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def ended(state: FlowState, status: str = SUCCESS) -> FlowState:
    return FlowState.from_dict({**state.to_dict(), "status": status})


# --- results and errors -----------------------------------------------------------------


@pytest.mark.parametrize("value", [{"a": [1, 2.5, "x", None, True]}, [1, 2], "text", 3, 0.5, False, {}])
def test_result_round_trip(store, value):
    store.save_result("node-1", value)
    assert store.load_result("node-1") == value


def test_missing_result_and_error_are_none(store):
    assert store.load_result("nope") is None
    assert store.load_error("nope") is None


def test_error_round_trip(store):
    error = {"type": "ValueError", "message": "bad", "traceback": "Traceback...\n  line 1"}
    store.save_error("node-2", error)
    assert store.load_error("node-2") == error
    assert store.load_result("node-2") is None


def test_result_is_overwritten(store):
    store.save_result("node-1", 1)
    store.save_result("node-1", 2)
    assert store.load_result("node-1") == 2


def test_result_that_is_not_json_fails_on_save(store):
    with pytest.raises(TypeError):
        store.save_result("node-1", object())
    assert store.load_result("node-1") is None


# --- flow state ---------------------------------------------------------------------------


def test_create_and_load_state(store):
    state = new_state(active={"n1": "task_a"}, finished={"task_b": ["n0"]}, retried_count=2)
    store.create_flow(state)
    loaded = store.load_state(state.flow_id)
    assert loaded == state
    assert loaded.status == RUNNING


def test_missing_state_is_none(store):
    assert store.load_state("no-such-flow") is None


def test_loaded_state_is_a_copy(store):
    state = new_state()
    store.create_flow(state)
    state.active["n9"] = "late"
    assert store.load_state(state.flow_id).active == {}


# --- inbox --------------------------------------------------------------------------------


def test_events_are_kept_in_order_and_read_without_removal(store):
    state = new_state()
    store.create_flow(state)
    assert store.read_events(state.flow_id) == []
    assert not store.has_events(state.flow_id)
    events = [NodeSucceeded("a"), NodeFailed("b", "boom"), NodeSucceeded("c")]
    for event in events:
        store.push_event(state.flow_id, event)
    assert store.has_events(state.flow_id)
    assert store.read_events(state.flow_id) == events
    assert store.read_events(state.flow_id) == events


def test_inboxes_are_per_flow(store):
    store.push_event("f1", NodeSucceeded("a"))
    store.push_event("f2", NodeSucceeded("b"))
    assert store.read_events("f1") == [NodeSucceeded("a")]
    assert store.read_events("f2") == [NodeSucceeded("b")]


def test_commit_drops_exactly_the_consumed_events_and_keeps_later_ones(store):
    state = new_state()
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("a"))
    store.push_event(state.flow_id, NodeSucceeded("b"))
    read = store.read_events(state.flow_id)
    store.push_event(state.flow_id, NodeSucceeded("c"))  # arrives while the step runs
    state.finished = {"t": ["a", "b"]}
    store.commit(state, len(read))
    assert store.read_events(state.flow_id) == [NodeSucceeded("c")]
    assert store.has_events(state.flow_id)
    assert store.load_state(state.flow_id).finished == {"t": ["a", "b"]}
    store.commit(state, 1)
    assert store.read_events(state.flow_id) == []
    assert not store.has_events(state.flow_id)


def test_commit_of_nothing_keeps_the_inbox(store):
    state = new_state()
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("a"))
    state.retried_count = 1
    store.commit(state, 0)
    assert store.read_events(state.flow_id) == [NodeSucceeded("a")]
    assert store.load_state(state.flow_id).retried_count == 1


def test_commit_of_more_than_the_inbox_empties_it(store):
    state = new_state()
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("a"))
    store.commit(state, 5)
    assert store.read_events(state.flow_id) == []
    store.push_event(state.flow_id, NodeSucceeded("b"))
    assert store.read_events(state.flow_id) == [NodeSucceeded("b")]


def test_commit_without_an_inbox_saves_the_state(store):
    state = new_state()
    store.create_flow(state)
    store.commit(ended(state), 0)
    assert store.load_state(state.flow_id).status == SUCCESS


def test_commit_is_atomic(store):
    """A reader never sees the state and the inbox out of step.

    The committer drops one event per commit and counts the drops in the state. With the two writes
    landing together, a reader that reads state, then inbox, then state again always finds
    ``first + len(inbox) <= total <= second + len(inbox)``; a store that wrote them one after the
    other would let it see one without the other.
    """
    total = 150
    state = new_state()
    store.create_flow(state)
    for index in range(total):
        store.push_event(state.flow_id, NodeSucceeded(f"n{index}"))
    done = threading.Event()
    violations: list[tuple[int, int, int]] = []
    observations = 0

    def reader() -> None:
        nonlocal observations
        while not done.is_set():
            first = store.load_state(state.flow_id).retried_count
            pending = len(store.read_events(state.flow_id))
            second = store.load_state(state.flow_id).retried_count
            observations += 1
            if not first + pending <= total <= second + pending:
                violations.append((first, pending, second))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for index in range(1, total + 1):
            state.retried_count = index
            store.commit(state, 1)
    finally:
        done.set()
        thread.join()
    assert violations == []
    assert observations > 0
    assert store.read_events(state.flow_id) == []


# --- locking ------------------------------------------------------------------------------


def test_lock_is_exclusive(store):
    assert store.try_lock("f1", "token-a")
    assert not store.try_lock("f1", "token-b")
    assert not store.try_lock("f1", "token-a")  # not re-entrant
    assert store.try_lock("f2", "token-b")  # per flow


def test_unlock_checks_the_token(store):
    assert store.try_lock("f1", "token-a")
    store.unlock("f1", "token-b")
    assert not store.try_lock("f1", "token-c")
    store.unlock("f1", "token-a")
    assert store.try_lock("f1", "token-c")


def test_unlock_of_a_free_lock_does_nothing(store):
    store.unlock("f1", "token-a")
    assert store.try_lock("f1", "token-a")


def test_lock_expires_and_lets_another_holder_in(store):
    assert store.try_lock("f1", "token-a", ttl=0.2)
    assert not store.try_lock("f1", "token-b", ttl=0.2)
    time.sleep(0.35)
    assert store.try_lock("f1", "token-b", ttl=5)
    store.unlock("f1", "token-a")  # the late first holder cannot free the new holder's lock
    assert not store.try_lock("f1", "token-c")


def test_lock_is_exclusive_across_threads(store):
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(token: str) -> None:
        barrier.wait()
        if store.try_lock("f1", token):
            winners.append(token)

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


# --- revocation ---------------------------------------------------------------------------


def test_revoke(store):
    assert not store.is_revoked("n1")
    store.revoke(["n1", "n2"])
    assert store.is_revoked("n1")
    assert store.is_revoked("n2")
    assert not store.is_revoked("n3")
    store.revoke([])
    store.revoke(["n1"])
    assert store.is_revoked("n1")


# --- waiting for the end ----------------------------------------------------------------


def test_wait_for_end_returns_at_once_for_an_ended_flow(store):
    state = new_state()
    store.create_flow(state)
    store.commit(ended(state, FAILURE), 0)
    started = time.monotonic()
    result = store.wait_for_end(state.flow_id, timeout=5)
    assert time.monotonic() - started < 0.5
    assert result.status == FAILURE


def test_wait_for_end_times_out_with_the_running_state(store):
    state = new_state()
    store.create_flow(state)
    started = time.monotonic()
    result = store.wait_for_end(state.flow_id, timeout=0.3)
    elapsed = time.monotonic() - started
    assert result == state
    assert 0.25 <= elapsed < 2


def test_wait_for_end_of_an_unknown_flow_times_out_with_none(store):
    assert store.wait_for_end("no-such-flow", timeout=0.1) is None


def test_wait_for_end_with_zero_timeout(store):
    state = new_state()
    store.create_flow(state)
    assert store.wait_for_end(state.flow_id, timeout=0) == state


def test_wait_for_end_wakes_early_and_late_waiters(store):
    state = new_state()
    store.create_flow(state)
    results: dict[str, FlowState | None] = {}
    woke_after: dict[str, float] = {}
    end_time: list[float] = []

    def waiter(name: str) -> None:
        results[name] = store.wait_for_end(state.flow_id, timeout=10)
        woke_after[name] = time.monotonic()

    early = [threading.Thread(target=waiter, args=(f"early-{i}",)) for i in range(3)]
    for thread in early:
        thread.start()
    time.sleep(0.3)  # they are all blocked by now
    final = ended(state)
    final.finished = {"t": ["n1"]}
    store.commit(final, 0)
    store.announce_end(state.flow_id)
    end_time.append(time.monotonic())
    for thread in early:
        thread.join(timeout=10)
    late = threading.Thread(target=waiter, args=("late",))
    late.start()
    late.join(timeout=10)
    assert set(results) == {"early-0", "early-1", "early-2", "late"}
    assert all(result == final for result in results.values())
    # the early waiters were woken, not left to their timeout
    assert all(woke_after[name] - end_time[0] < 3 for name in results)


def test_wait_for_end_does_not_return_on_an_announce_while_still_running(store):
    state = new_state()
    store.create_flow(state)
    store.announce_end(state.flow_id)
    started = time.monotonic()
    result = store.wait_for_end(state.flow_id, timeout=0.3)
    assert result.status == RUNNING
    assert time.monotonic() - started >= 0.25


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_pushes_and_steps_lose_and_duplicate_nothing(store):
    """Pushers race dispatcher steps (lock, read, commit, unlock); every event is consumed once.

    The steps record what they consumed in the state itself, so the state and the inbox must also
    agree: an event that was dropped without its state, or kept after it, shows up as a loss or a
    duplicate.
    """
    pushers, per_pusher, stepper_count = 4, 60, 2
    state = new_state(node_args={"consumed": []})
    store.create_flow(state)
    pushing_done = threading.Event()
    errors: list[BaseException] = []
    steps = 0

    def push(index: int) -> None:
        try:
            for number in range(per_pusher):
                store.push_event(state.flow_id, NodeSucceeded(f"p{index}-{number}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def step(token: str) -> None:
        nonlocal steps
        try:
            while True:
                finished_pushing = pushing_done.is_set()
                if store.try_lock(state.flow_id, token, ttl=30):
                    try:
                        current = store.load_state(state.flow_id)
                        events = store.read_events(state.flow_id)
                        current.node_args["consumed"].extend(event.node_id for event in events)
                        store.commit(current, len(events))
                        steps += 1
                    finally:
                        store.unlock(state.flow_id, token)
                    if finished_pushing and not events:
                        return
                else:
                    time.sleep(0.0005)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    push_threads = [threading.Thread(target=push, args=(i,)) for i in range(pushers)]
    step_threads = [threading.Thread(target=step, args=(f"stepper-{i}",)) for i in range(stepper_count)]
    for thread in step_threads + push_threads:
        thread.start()
    for thread in push_threads:
        thread.join()
    pushing_done.set()
    for thread in step_threads:
        thread.join(timeout=60)
    assert errors == []
    consumed = store.load_state(state.flow_id).node_args["consumed"]
    expected = {f"p{i}-{n}" for i in range(pushers) for n in range(per_pusher)}
    assert len(consumed) == len(expected), "an event was lost or consumed twice"
    assert set(consumed) == expected
    for index in range(pushers):  # each pusher's events were consumed in the order it pushed them
        mine = [node_id for node_id in consumed if node_id.startswith(f"p{index}-")]
        assert mine == [f"p{index}-{n}" for n in range(per_pusher)]
    assert store.read_events(state.flow_id) == []
    assert steps > 1


# --- compound calls of the hot path: lock_and_load, commit_and_continue, report ------------------


def test_lock_and_load_takes_the_lock_with_the_state_and_the_inbox(store):
    state = new_state(active={"n1": "A"})
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("n1"))
    claim = store.lock_and_load(state.flow_id, "token-a")
    assert claim == Claim(state, [NodeSucceeded("n1")])
    assert not store.try_lock(state.flow_id, "token-b")
    assert store.lock_and_load(state.flow_id, "token-b") is None  # taken: nothing, and nothing changes
    assert store.read_events(state.flow_id) == [NodeSucceeded("n1")]
    store.unlock(state.flow_id, "token-a")
    assert store.lock_and_load(state.flow_id, "token-b") is not None


def test_lock_and_load_of_an_unknown_flow_holds_the_lock_with_no_state(store):
    claim = store.lock_and_load("no-such-flow", "token-a")
    assert claim == Claim(None, [])
    assert not store.try_lock("no-such-flow", "token-b")
    store.unlock("no-such-flow", "token-a")
    assert store.try_lock("no-such-flow", "token-b")


def test_lock_and_load_honours_the_ttl(store):
    store.create_flow(new_state("f1"))
    assert store.lock_and_load("f1", "token-a", ttl=0.2) is not None
    assert store.lock_and_load("f1", "token-b", ttl=0.2) is None
    time.sleep(0.35)
    assert store.lock_and_load("f1", "token-b") is not None


def test_commit_and_continue_commits_and_releases_when_nothing_came(store):
    state = new_state()
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("a"))
    claim = store.lock_and_load(state.flow_id, "tok")
    state.finished = {"t": ["a"]}
    assert store.commit_and_continue(state, len(claim.events), "tok") is None
    assert store.load_state(state.flow_id).finished == {"t": ["a"]}
    assert store.read_events(state.flow_id) == []
    assert store.try_lock(state.flow_id, "other")  # released


def test_commit_and_continue_keeps_the_lock_with_events_that_came_meanwhile(store):
    state = new_state()
    store.create_flow(state)
    store.push_event(state.flow_id, NodeSucceeded("a"))
    claim = store.lock_and_load(state.flow_id, "tok")
    store.push_event(state.flow_id, NodeSucceeded("b"))  # while the step runs
    store.push_event(state.flow_id, NodeFailed("c", "boom"))
    state.finished = {"t": ["a"]}
    again = store.commit_and_continue(state, len(claim.events), "tok")
    assert again is not None
    assert again.events == [NodeSucceeded("b"), NodeFailed("c", "boom")]
    assert again.state == state  # the state just committed
    assert store.load_state(state.flow_id).finished == {"t": ["a"]}
    assert not store.try_lock(state.flow_id, "other")  # still held by "tok"
    state.finished["t"].append("b")
    assert store.commit_and_continue(state, 2, "tok") is None
    assert store.read_events(state.flow_id) == []
    assert store.load_state(state.flow_id).finished == {"t": ["a", "b"]}
    assert store.try_lock(state.flow_id, "other")


def test_commit_and_continue_renews_the_lock(store):
    state = new_state()
    store.create_flow(state)
    assert store.lock_and_load(state.flow_id, "tok", ttl=0.3) is not None
    store.push_event(state.flow_id, NodeSucceeded("a"))
    time.sleep(0.2)
    assert store.commit_and_continue(state, 0, "tok", ttl=30) is not None
    time.sleep(0.2)  # past the first ttl: the lock was renewed
    assert not store.try_lock(state.flow_id, "other")


def test_commit_and_continue_of_an_ended_flow_releases_even_with_events(store):
    state = new_state()
    store.create_flow(state)
    store.lock_and_load(state.flow_id, "tok")
    store.push_event(state.flow_id, NodeSucceeded("late"))
    assert store.commit_and_continue(ended(state), 0, "tok") is None
    assert store.load_state(state.flow_id).status == SUCCESS
    assert store.wait_for_end(state.flow_id, timeout=0).status == SUCCESS
    assert store.try_lock(state.flow_id, "other")


def test_commit_and_continue_keeps_the_flow_result_with_the_state(store):
    state = new_state()
    store.create_flow(state)
    store.lock_and_load(state.flow_id, "tok")
    final = ended(state)
    assert store.commit_and_continue(final, 0, "tok", result=final.result()) is None
    assert store.load_result(state.flow_id) == {"finished_nodes": {}, "failed_nodes": {}}
    store.save_result("other-flow", 1)
    store.create_flow(new_state("other-flow"))
    store.lock_and_load("other-flow", "tok")
    store.commit_and_continue(new_state("other-flow"), 0, "tok")  # no result given: none written
    assert store.load_result("other-flow") == 1


def test_commit_and_continue_never_takes_over_a_lock_it_lost(store):
    state = new_state()
    store.create_flow(state)
    assert store.lock_and_load(state.flow_id, "slow", ttl=0.2) is not None
    time.sleep(0.35)
    assert store.lock_and_load(state.flow_id, "new") is not None  # the lock expired and moved on
    store.push_event(state.flow_id, NodeSucceeded("a"))
    assert store.commit_and_continue(state, 0, "slow") is None  # no claim for the late holder
    assert not store.try_lock(state.flow_id, "other")  # and "new" still holds the lock
    assert store.read_events(state.flow_id) == [NodeSucceeded("a")]


def test_report_keeps_the_result_pushes_the_event_and_claims_a_free_lock(store):
    state = new_state(active={"n1": "A"})
    store.create_flow(state)
    report = store.report(state.flow_id, NodeSucceeded("n1"), "tok", result={"x": [1, 2]})
    assert report == Report(revoked=False, claim=Claim(state, [NodeSucceeded("n1")]))
    assert store.load_result("n1") == {"x": [1, 2]}
    assert not store.try_lock(state.flow_id, "other")


def test_report_with_the_lock_taken_only_pushes(store):
    state = new_state()
    store.create_flow(state)
    assert store.try_lock(state.flow_id, "holder")
    report = store.report(state.flow_id, NodeSucceeded("n1"), "tok", result=None)
    assert report == Report(revoked=False, claim=None)
    assert store.read_events(state.flow_id) == [NodeSucceeded("n1")]
    assert store.load_result("n1") is None
    store.unlock(state.flow_id, "tok")  # the reporter holds nothing
    assert not store.try_lock(state.flow_id, "other")


def test_report_of_a_failure_keeps_the_error(store):
    state = new_state()
    store.create_flow(state)
    error = {"type": "ValueError", "message": "bad", "traceback": "..."}
    report = store.report(state.flow_id, NodeFailed("n1", "ValueError: bad"), "tok", error=error)
    assert report.claim is not None and report.claim.events == [NodeFailed("n1", "ValueError: bad")]
    assert store.load_error("n1") == error
    assert store.load_result("n1") is None


def test_report_of_a_result_and_an_error_keeps_both(store):
    error = {"type": "FlowError", "message": "flow f failed", "traceback": "", "result": {"a": 1}}
    store.report("parent", NodeFailed("child", "flow f failed"), "tok", result={"a": 1}, error=error)
    assert store.load_result("child") == {"a": 1}
    assert store.load_error("child") == error


def test_report_of_a_revoked_node_changes_nothing(store):
    state = new_state()
    store.create_flow(state)
    store.revoke(["n1"])
    assert store.report(state.flow_id, NodeSucceeded("n1"), "tok", result=1) == Report(revoked=True)
    assert store.load_result("n1") is None
    assert store.read_events(state.flow_id) == []
    assert store.try_lock(state.flow_id, "other")  # the lock was not touched
    store.unlock(state.flow_id, "other")
    report = store.report(state.flow_id, NodeSucceeded("n1"), "tok", check_revoked=False)
    assert not report.revoked and report.claim is not None
    assert store.read_events(state.flow_id) == [NodeSucceeded("n1")]


def test_report_without_a_result_keeps_what_was_there(store):
    store.save_result("n1", "earlier")
    store.report("f1", NodeSucceeded("n1"), "tok")
    assert store.load_result("n1") == "earlier"
    store.report("f1", NodeSucceeded("n1"), "tok2", result=NOTHING)
    assert store.load_result("n1") == "earlier"


def test_report_of_a_result_that_is_not_json_changes_nothing(store):
    store.create_flow(new_state("f1"))
    with pytest.raises(TypeError):
        store.report("f1", NodeSucceeded("n1"), "tok", result=object())
    assert store.read_events("f1") == []
    assert store.try_lock("f1", "other")


def test_reports_racing_steps_lose_and_duplicate_nothing(store):
    """Reporters that step when they get the lock, and nobody else: every event is consumed once.

    This is the runtime's protocol with no safety tick. A reporter that finds the lock taken
    leaves its event to the holder, which must see it in ``commit_and_continue``; an event that
    slipped between the two would stay in the inbox for ever.
    """
    reporters, per_reporter = 4, 40
    state = new_state(node_args={"consumed": []})
    store.create_flow(state)
    errors: list[BaseException] = []
    barrier = threading.Barrier(reporters)

    def run(index: int) -> None:
        try:
            barrier.wait()
            for number in range(per_reporter):
                token = f"r{index}-{number}"
                claim = store.report(state.flow_id, NodeSucceeded(f"p{index}-{number}"), token, result=number).claim
                while claim is not None:
                    current = claim.state
                    current.node_args["consumed"].extend(event.node_id for event in claim.events)
                    claim = store.commit_and_continue(current, len(claim.events), token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(reporters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    consumed = store.load_state(state.flow_id).node_args["consumed"]
    expected = {f"p{i}-{n}" for i in range(reporters) for n in range(per_reporter)}
    assert len(consumed) == len(expected), "an event was lost or consumed twice"
    assert set(consumed) == expected
    assert store.read_events(state.flow_id) == []
    assert store.try_lock(state.flow_id, "after")  # nobody kept the lock
