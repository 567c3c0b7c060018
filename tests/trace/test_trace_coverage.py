"""Every trace event is emitted by real runs, except the few that nothing in selflow can emit yet.

The runs use ``data/coverage/coverage.yml``, whose ``global.trace`` sends every event to the
function ``trace_cov.record``: the same tracers, storage pool and admission limits a worker builds
from the YAML. Each scenario below is a real run through ``EmbeddedRunner`` or through the runtime
it drives, with real storages (files in a temporary directory, memory, a custom adapter) and real
outages (Redis clients pointed at a port nobody listens on):

* ``fanout``: foreach sub-flows, a false condition, task and sub-flow throttling, a keyed rate
  limit, a flow concurrency limit, a user retry, results in a filesystem storage;
* ``failing``: an eager failure, a flow retry, revoked and skipped nodes, an adapter without
  ``store_error``;
* ``fallbacks``: a fallback condition that is false and one that is true, a stored error;
* ``cancelled``: a task whose flow is cancelled while it runs (its result is discarded);
* ``outage``: a task whose storage is an unreachable Redis;
* ``pipeline``: a selective run that reuses an earlier result;
* ``pair``: a flow whose lock another worker holds while its messages and node reports arrive;
* the storage pool after the runs: reads through the result cache (one cache on an unreachable
  Redis), a delete, closing the adapters;
* the state store down (``RedisStore`` on a closed port), and a worker whose configuration lacks
  the flow it is asked to step.

``NOT_EMITTED`` lists the events no code path emits, each with its reason; docs/tracing.md says
the same. The test fails when an event is neither emitted nor listed, and when a listed event
starts being emitted (then it must leave the list).
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.dispatcher.records import StartTask
from selflow.dispatcher.selective import compute_plan
from selflow.runtime.embedded import EmbeddedRunner, LocalQueue
from selflow.runtime.limits import MemoryLimiter
from selflow.runtime.runtime import STORE_RETRY_S, Runtime
from selflow.runtime.services import build_services
from selflow.storages import RecordNotFound
from selflow.errors import StorageError
from selflow.trace import EVENTS, TraceEvent

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "coverage"
CONFIG = DATA / "coverage.yml"

_NO_NODE_STATE_CACHE = ("selflow has no node-state cache: a flow definition's `cache` is checked and compiled, "
                        "but the engine reads a finished sub-flow's result from the state store directly")
_NO_MIGRATIONS = ("migrations are not implemented: `global.migration_dir` is compiled into the tables, but no "
                  "worker reads it or migrates a flow's stored state")

#: The events no code path emits today, and why. docs/tracing.md ("Events not emitted yet") lists them too.
NOT_EMITTED: dict[TraceEvent, str] = {
    TraceEvent.NODE_STATE_CACHE_GET: _NO_NODE_STATE_CACHE,
    TraceEvent.NODE_STATE_CACHE_ADD: _NO_NODE_STATE_CACHE,
    TraceEvent.NODE_STATE_CACHE_MISS: _NO_NODE_STATE_CACHE,
    TraceEvent.NODE_STATE_CACHE_HIT: _NO_NODE_STATE_CACHE,
    TraceEvent.NODE_STATE_CACHE_ISSUE: _NO_NODE_STATE_CACHE,
    TraceEvent.MIGRATION: _NO_MIGRATIONS,
    TraceEvent.MIGRATION_SKEW: _NO_MIGRATIONS,
    TraceEvent.MIGRATION_TAINTED_FLOW: _NO_MIGRATIONS,
    TraceEvent.MIGRATION_ERROR: _NO_MIGRATIONS,
}


def _closed_port() -> int:
    """A port of 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorded:
    """The events of every scenario, by scenario name, and what the scenarios returned."""

    def __init__(self) -> None:
        self.by_scenario: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.facts: dict[str, Any] = {}

    @property
    def all(self) -> list[tuple[str, dict[str, Any]]]:
        return [item for events in self.by_scenario.values() for item in events]

    def names(self, scenario: str | None = None) -> list[str]:
        events = self.all if scenario is None else self.by_scenario[scenario]
        return [name for name, _ in events]

    def payloads(self, event: str, scenario: str | None = None) -> list[dict[str, Any]]:
        events = self.all if scenario is None else self.by_scenario[scenario]
        return [details for name, details in events if name == event]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    down = _closed_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRACE_COV_DIR", str(tmp_path_factory.mktemp("trace-coverage")))
        patch.setenv("TRACE_COV_DOWN", str(down))
        patch.syspath_prepend(str(DATA))
        import trace_cov

        trace_cov.EVENTS.clear()
        tables = compile_tables(load_system([str(CONFIG)]))
        runner = EmbeddedRunner(tables)
        trace_cov.RUNTIME = runner.runtime
        assert runner.runtime.tracers, "global.trace of coverage.yml gave no tracer"
        recorded = Recorded()

        def run(name: str, body: Any) -> None:
            start = len(trace_cov.EVENTS)
            recorded.facts[name] = body()
            recorded.by_scenario[name] = list(trace_cov.EVENTS[start:])

        run("fanout", lambda: runner.run_flow("fanout", {"customer": "c1"}, timeout=30))
        run("failing", lambda: runner.run_flow("failing", timeout=30))
        run("fallbacks", lambda: runner.run_flow("fallbacks", {"mode": "usual"}, timeout=30))
        run("cancelled", lambda: runner.run_flow("cancelled", timeout=30))
        run("outage", lambda: runner.run_flow("outage", timeout=30))
        run("pipeline", lambda: _run_selectively(runner, tables, trace_cov.PREVIOUS))
        run("pair", lambda: _run_pair_while_locked(runner))
        run("pool", lambda: _use_the_pool(runner, recorded.facts["fanout"], recorded.facts["fallbacks"]))
        run("store_down", lambda: _state_store_down(tables, down))
        run("skew", lambda: _worker_without_the_flow(runner))
    return recorded


def _run_selectively(runner: EmbeddedRunner, tables: Any, previous: dict[str, str]) -> Any:
    """Run `pipeline` whole, then only Transform, with Load reusing the first run's result."""
    first = runner.run_flow("pipeline", {"customer": "c2"}, timeout=30)
    previous["Load"] = first.finished["Load"][0]
    plan = compute_plan(tables, "pipeline", ["Transform"])
    return runner.run_flow("pipeline", {"customer": "c2"}, selective=plan, timeout=30)


def _drain(runner: EmbeddedRunner) -> None:
    """Run every queued message, due or not (the flows here have no countdowns left)."""
    while (job := runner.queue.pop()) is not None:
        _, kind, payload, _ = job
        if kind == "dispatch":
            runner.runtime.dispatcher_tick(payload)
        else:
            runner.runtime.run_node(payload)


def _run_pair_while_locked(runner: EmbeddedRunner) -> dict[str, Any]:
    """Another worker holds the flow's lock while its Dispatcher messages and Left's report arrive;
    once it lets go, Right's envelope steps the flow inline and handles both reports."""
    runtime, store = runner.runtime, runner.store
    flow_id = runtime.start_flow("pair")
    assert runner.queue.pop() is not None  # the flow's first Dispatcher message: handled below
    assert store.try_lock(flow_id, "another-worker")
    runtime.dispatcher_tick(flow_id)  # a wake-up: left to the lock's holder
    runtime.dispatcher_tick(flow_id, 0)  # a safety tick of the chain: sends itself again later
    retick = runner.queue.pop()
    assert retick is not None and retick[1] == "dispatch"
    store.unlock(flow_id, "another-worker")
    runtime.dispatcher_tick(flow_id, 0)  # now the flow starts: Left and Right are queued
    left, right = runner.queue.pop(), runner.queue.pop()
    assert left is not None and right is not None
    assert store.try_lock(flow_id, "another-worker")
    runtime.run_node(left[2])  # its report waits in the inbox for the holder
    store.unlock(flow_id, "another-worker")
    runtime.run_node(right[2])  # steps the flow inline: both reports, and the flow ends
    _drain(runner)
    state = store.load_state(flow_id)
    assert state is not None and state.status == "success"
    return {"flow_id": flow_id, "left": left[2].node_id, "right": right[2].node_id}


def _use_the_pool(runner: EmbeddedRunner, fanout: Any, fallbacks: Any) -> dict[str, Any]:
    """Read stored results back through the runtime's storage pool, delete one, close the pool."""
    pool = runner.storages
    produce_id = fanout.finished["Produce"][0]
    first = pool.retrieve("Produce", "fanout", produce_id)  # a cache miss: read from the files
    second = pool.retrieve("Produce", "fanout", produce_id)  # a cache hit
    assert first == second == {"items": [1, 2], "customer": "c1"}
    repair_id = fallbacks.finished["Repair"][0]
    assert pool.retrieve("Repair", "fallbacks", repair_id) == "done"  # its cache is a Redis that is down
    pool.delete("Produce", "fanout", produce_id)
    with pytest.raises(RecordNotFound):
        pool.delete("Produce", "fanout", produce_id)
    pool.close()
    return {"produce_id": produce_id, "repair_id": repair_id}


def _state_store_down(tables: Any, port: int) -> dict[str, Any]:
    """A worker whose state store (Redis) does not answer: steps and nodes fail, to be run again."""
    from selflow.runtime.redis_store import RedisStore

    services = build_services(tables, limiter=MemoryLimiter())
    runtime = Runtime(tables, RedisStore.from_url(f"redis://127.0.0.1:{port}/0"), LocalQueue(),
                      tracers=services.tracers, storages=services.storages, admission=services.admission)
    with pytest.raises(StorageError):
        runtime.dispatcher_tick("flow-behind-the-outage", 3)
    message = StartTask(node_id="node-behind-the-outage", name="Idle", flow_id="flow-behind-the-outage",
                        flow_name="failing", node_args=None, parent={})
    with pytest.raises(StorageError):
        runtime.run_node(message)
    return {"port": port}


def _worker_without_the_flow(runner: EmbeddedRunner) -> dict[str, Any]:
    """A worker running another configuration (the reference one, without `pair`) gets a step of
    a `pair` flow: the step itself fails."""
    other = compile_tables(load_system([str(ROOT / "config")]))
    runtime = Runtime(other, runner.store, runner.queue, tracers=runner.runtime.tracers)
    flow_id = runner.runtime.start_flow("pair")
    assert runner.queue.pop() is not None
    with pytest.raises(KeyError):
        runtime.dispatcher_tick(flow_id)
    return {"flow_id": flow_id}


# --- the coverage -----------------------------------------------------------------------------


def test_every_event_is_emitted_or_listed_as_not_emitted(recorded: Recorded) -> None:
    emitted = set(recorded.names())
    unknown = emitted - set(TraceEvent.__members__)
    assert not unknown, f"events that are not TraceEvent members: {sorted(unknown)}"
    missing = [event.value for event in TraceEvent if event.value not in emitted and event not in NOT_EMITTED]
    assert not missing, f"never emitted and not listed in NOT_EMITTED: {missing}"
    listed_but_emitted = sorted(event.value for event in NOT_EMITTED if event.value in emitted)
    assert not listed_but_emitted, f"emitted now, so no longer 'not emitted': {listed_but_emitted}"


@pytest.mark.parametrize("event", [event for event in TraceEvent if event not in NOT_EMITTED], ids=str)
def test_event_is_emitted(recorded: Recorded, event: TraceEvent) -> None:
    assert recorded.payloads(event.value), f"{event.value} was not emitted by any scenario"


def test_not_emitted_events_are_few_and_documented() -> None:
    assert len(NOT_EMITTED) <= 9
    text = (ROOT / "docs" / "tracing.md").read_text(encoding="utf-8")
    section = text.split("## Events not emitted yet", 1)
    assert len(section) == 2, "docs/tracing.md has no 'Events not emitted yet' section"
    body = section[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Z_]+)`", body)) & set(TraceEvent.__members__)
    assert listed == {event.value for event in NOT_EMITTED}, "docs/tracing.md and NOT_EMITTED disagree"


def test_payloads_carry_only_documented_fields(recorded: Recorded) -> None:
    wrong = set()
    for name, details in recorded.all:
        allowed = set(EVENTS[TraceEvent(name)].fields) | {"event", "time"}
        extra = set(details) - allowed
        if extra:
            wrong.add((name, tuple(sorted(extra))))
        json.dumps(details)  # always JSON
    assert not wrong, f"payload fields the event table does not list: {sorted(wrong)}"


# --- what each scenario shows -------------------------------------------------------------------


def test_fanout_limits_and_storage(recorded: Recorded) -> None:
    state = recorded.facts["fanout"]
    assert state.status == "success"
    names = recorded.names("fanout")
    assert names.count("SUBFLOW_SCHEDULE") == 2
    foreach, = recorded.payloads("FOREACH_RESULT", "fanout")
    assert foreach["count"] == 2 and foreach["foreach_str"] == "trace_cov:two_items"
    cond_false, = recorded.payloads("EDGE_COND_FALSE", "fanout")
    assert cond_false["condition_str"].startswith("field_equal")
    throttled = recorded.payloads("THROTTLED", "fanout")
    assert {p["node_name"] for p in throttled} == {"Paced", "child"}
    assert all(p["flow_name"] == "fanout" and p["countdown"] > 0 for p in throttled)
    rate, = recorded.payloads("RATE_LIMITED", "fanout")
    assert rate["task_name"] == "Charge" and rate["key"] == '"c1"' and rate["countdown"] > 0
    waits = recorded.payloads("CONCURRENCY_WAIT", "fanout")
    assert waits and all(p["flow_name"] == "child" and p["limit"] == 1 for p in waits)
    user_retry, = recorded.payloads("TASK_RETRY", "fanout")[:1]
    assert user_retry["task_name"] == "Slow" and user_retry["user_retry"] is True
    stored = recorded.payloads("STORAGE_STORED", "fanout")
    produce = [p for p in stored if p["task_name"] == "Produce"]
    assert produce and produce[0]["storage_task_name"] == "Produced" and produce[0]["storage_name"] == "Files"
    assert Path(produce[0]["record_id"]).parts[-3:-1] == ("fanout", "Produced")
    ends = [p for p in recorded.payloads("TASK_END", "fanout") if p["task_name"] == "Produce"]
    assert ends[0]["record_id"] == produce[0]["record_id"] and ends[0]["storage_name"] == "Files"
    assert names.count("STORAGE_CONNECT") == 1  # connected once, on first use


def test_failing_retries_the_flow_revokes_and_skips(recorded: Recorded) -> None:
    assert recorded.facts["failing"].status == "failure"
    names = recorded.names("failing")
    assert names.count("EAGER_FAILURE") == 2 and names.count("FLOW_RETRY") == 1 and names.count("FLOW_FAILURE") == 1
    revokes = recorded.payloads("NODE_REVOKE", "failing")
    assert [p["reason"] for p in revokes] == ["the flow is retried", "the flow failed"]
    skipped, = recorded.payloads("TASK_SKIPPED", "failing")
    assert skipped["task_id"] in revokes[0]["node_ids"] and skipped["task_name"] == "Idle"
    omitted = recorded.payloads("STORAGE_OMIT_STORE_ERROR", "failing")
    assert omitted and all(p["storage_name"] == "NoErrors" and "out of order" in p["what"] for p in omitted)


def test_fallbacks_conditions(recorded: Recorded) -> None:
    assert recorded.facts["fallbacks"].status == "success"
    false, = recorded.payloads("FALLBACK_COND_FALSE", "fallbacks")
    true, = recorded.payloads("FALLBACK_COND_TRUE", "fallbacks")
    assert false["nodes"] == true["nodes"] == ["Fails"]
    start, = recorded.payloads("FALLBACK_START", "fallbacks")
    assert start["fallback"] == ["Repair"]
    error, = recorded.payloads("STORAGE_STORE_ERROR", "fallbacks")
    assert error["task_name"] == "Fails" and error["record_id"].endswith(".error.json")


def test_cancelled_flow_discards_the_running_task(recorded: Recorded) -> None:
    assert recorded.facts["cancelled"].status == "failure"
    names = recorded.names("cancelled")
    assert names.index("FLOW_FAILURE") < names.index("NODE_REVOKE") < names.index("TASK_DISCARD_RESULT")
    revoke, = recorded.payloads("NODE_REVOKE", "cancelled")
    discard, = recorded.payloads("TASK_DISCARD_RESULT", "cancelled")
    assert revoke["reason"] == "cancelled while SelfCancel ran" and revoke["node_ids"] == [discard["task_id"]]
    assert "TASK_END" not in names


def test_storage_outage(recorded: Recorded) -> None:
    assert recorded.facts["outage"].status == "failure"
    issues = recorded.payloads("STORAGE_ISSUE", "outage")
    assert issues and all(p["storage_name"] == "Down" and p["operation"] == "connect" for p in issues)
    assert "Connection refused" in issues[0]["what"]
    failure, = recorded.payloads("TASK_FAILURE", "outage")
    assert "storage 'Down' failed to connect" in failure["what"]


def test_selective_run(recorded: Recorded) -> None:
    assert recorded.facts["pipeline"].status == "success"
    previous = recorded.facts["pipeline"].finished["Load"]
    func = [p for p in recorded.payloads("SELECTIVE_RUN_FUNC", "pipeline") if p["node_id"] is not None]
    reuse, = recorded.payloads("SELECTIVE_TASK_REUSE", "pipeline")
    assert func[0]["function"] == "trace_cov:reuse_previous" and func[0]["node_id"] == reuse["node_id"]
    assert previous == [reuse["node_id"]]
    omit_node, = recorded.payloads("SELECTIVE_OMIT_NODE", "pipeline")
    assert omit_node["node_name"] == "Audit"
    assert recorded.payloads("SELECTIVE_OMIT_EDGE", "pipeline")


def test_lock_held_by_another_worker(recorded: Recorded) -> None:
    facts = recorded.facts["pair"]
    deferred = recorded.payloads("WAKEUP_DEFERRED", "pair")
    assert [(p.get("tick"), p.get("task_id")) for p in deferred] == [(True, None), (True, None), (False, facts["left"])]
    assert deferred[1]["countdown"] == 1.0  # the tick sends itself again
    inline = [p for p in recorded.payloads("DISPATCHER_INLINE_STEP", "pair") if p["task_id"] == facts["right"]]
    assert inline == [{**inline[0], "flow_name": "pair", "dispatcher_id": facts["flow_id"], "events": 2}]
    assert recorded.names("pair")[-1] == "FLOW_END"


def test_pool_reads_caches_deletes_and_closes(recorded: Recorded) -> None:
    names = recorded.names("pool")
    produce = [n for n, p in recorded.by_scenario["pool"] if p.get("task_name") == "Produce"]
    assert produce[:6] == ["TASK_RESULT_CACHE_GET", "TASK_RESULT_CACHE_MISS", "STORAGE_RETRIEVE", "STORAGE_RETRIEVED",
                           "TASK_RESULT_CACHE_ADD", "TASK_RESULT_CACHE_GET"]
    assert produce[6] == "TASK_RESULT_CACHE_HIT"
    issues = recorded.payloads("TASK_RESULT_CACHE_ISSUE", "pool")
    assert [p["operation"] for p in issues] == ["get", "add"] and all(p["task_name"] == "Repair" for p in issues)
    assert names.count("STORAGE_DELETE") == 2 and names.count("STORAGE_DELETED") == 1  # the second finds nothing
    assert {p["storage_name"] for p in recorded.payloads("STORAGE_DISCONNECT", "pool")} >= {"Files", "Memo"}


def test_state_store_outage(recorded: Recorded) -> None:
    names = recorded.names("store_down")
    assert names == ["DISPATCHER_WAKEUP", "RESULT_BACKEND_ISSUE", "DISPATCHER_RETRY", "RESULT_BACKEND_ISSUE"]
    step_issue, retry, node_issue = recorded.by_scenario["store_down"][1:]
    port = recorded.facts["store_down"]["port"]
    for details in (step_issue[1], retry[1], node_issue[1]):
        assert details["countdown"] == STORE_RETRY_S
        assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in details["what"]
    assert node_issue[1]["task_name"] == "Idle" and node_issue[1]["task_id"] == "node-behind-the-outage"


def test_dispatcher_failure_on_a_worker_without_the_flow(recorded: Recorded) -> None:
    failure, = recorded.payloads("DISPATCHER_FAILURE", "skew")
    assert failure["dispatcher_id"] == recorded.facts["skew"]["flow_id"] and failure["what"] == "KeyError: 'pair'"

