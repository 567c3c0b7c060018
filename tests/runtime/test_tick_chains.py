"""The Dispatcher's safety-tick chains (``Runtime.dispatcher_tick`` with a chain number), on a
MemoryStore with a recording publisher: only the current chain re-schedules itself.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.dispatcher.records import NodeFailed, StartTask
from selflow.runtime.memory_store import MemoryStore
from selflow.runtime.runtime import BUSY_TICK_S, Runtime

CONFIG = """\
tasks:
  - {name: A, import: json, classname: dumps}
  - {name: B, import: json, classname: dumps}
flows:
  - f
flow-definitions:
  - name: f
    max_retry: 1
    eager_failures: [A]
    edges:
      - from:
        to: [A, B]
"""


class Recorder:
    def __init__(self) -> None:
        self.tasks: list[StartTask] = []
        self.dispatches: list[tuple[str, int, Any]] = []
        self.revoked: list[str] = []

    def start_task(self, message: StartTask, *, queue: str, countdown: float | None = None) -> None:
        self.tasks.append(message)

    def dispatch(self, flow_id: str, *, queue: str, countdown: float | None = None, tick: int = 0) -> None:
        self.dispatches.append((flow_id, tick, countdown))

    def revoke(self, node_ids: list[str]) -> None:
        self.revoked.extend(node_ids)


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    (tmp_path / "f.yml").write_text(textwrap.dedent(CONFIG))
    return Runtime(compile_tables(load_system([str(tmp_path / "f.yml")])), MemoryStore(), Recorder())


def test_only_the_current_chain_ticks_on(runtime: Runtime) -> None:
    store, sent = runtime.store, runtime.publisher
    # Given a started flow: its first Dispatcher message is chain 0
    flow_id = runtime.start_flow("f")
    assert sent.dispatches == [(flow_id, 0, None)]

    # When chain 0 ticks, the flow starts and the chain goes on as number 1
    assert runtime.dispatcher_tick(flow_id, 0) is not None
    assert store.load_state(flow_id).tick_seq == 1
    assert sorted(t.name for t in sent.tasks) == ["A", "B"]

    # Then a duplicate of that message does not re-schedule itself, and changes nothing
    before = store.load_state(flow_id).to_dict()
    assert runtime.dispatcher_tick(flow_id, 0) is None
    assert store.load_state(flow_id).to_dict() == before
    assert runtime.dispatcher_tick(flow_id, 1) is not None


def test_a_flow_retry_starts_a_new_chain_and_the_old_one_stops(runtime: Runtime) -> None:
    store, sent = runtime.store, runtime.publisher
    flow_id = runtime.start_flow("f")
    runtime.dispatcher_tick(flow_id, 0)
    a_id = next(t.node_id for t in sent.tasks if t.name == "A")
    b_id = next(t.node_id for t in sent.tasks if t.name == "B")

    # When A fails (an eager failure) the flow restarts: B is revoked, chain 2 is sent
    store.push_event(flow_id, NodeFailed(a_id, "boom"))
    runtime.drive(flow_id)
    state = store.load_state(flow_id)
    assert state.retried_count == 1 and not state.started
    assert sent.revoked == [b_id]
    assert sent.dispatches[-1] == (flow_id, 2, 0)

    # Then a late message of chain 1 neither restarts the flow nor re-schedules itself
    assert runtime.dispatcher_tick(flow_id, 1) is None
    assert not store.load_state(flow_id).started
    # and chain 2 (sent after the retry countdown) starts the new attempt and goes on
    assert runtime.dispatcher_tick(flow_id, 2) is not None
    state = store.load_state(flow_id)
    assert state.started and state.tick_seq == 3


def test_a_tick_that_finds_the_flow_locked_comes_back(runtime: Runtime) -> None:
    store, sent = runtime.store, runtime.publisher
    flow_id = runtime.start_flow("f")
    runtime.dispatcher_tick(flow_id, 0)
    assert store.try_lock(flow_id, "someone else")

    assert runtime.dispatcher_tick(flow_id, 1) is None
    assert sent.dispatches[-1] == (flow_id, 1, BUSY_TICK_S)  # the same chain, a little later
    assert store.load_state(flow_id).tick_seq == 1


def test_ticks_without_a_chain_number_behave_as_before(runtime: Runtime) -> None:
    # the embedded runner's Dispatcher messages carry no chain number
    flow_id = runtime.start_flow("f")
    assert runtime.dispatcher_tick(flow_id) is not None
    assert runtime.dispatcher_tick(flow_id) is not None
    assert runtime.store.load_state(flow_id).tick_seq == 0
