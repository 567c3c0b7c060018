"""Cost per event is flat: the work one report causes does not grow with the size of the flow.

Work is counted, not timed: calls of edge conditions, actions returned, results read, and full
scans of the state's growing containers (active, finished, failed, triggered edges). Flows of
10, 1,000 and 10,000 nodes are generated as YAML: a chain of distinct tasks, and a foreach
fan-out whose width is the size.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest
import yaml

from selflow.dispatcher.records import Note

SIZES = (10, 1_000, 10_000)


class ScanCountingDict(dict):
    """A dict that counts every walk over all of its entries."""

    def __init__(self, counter: Counter, *args: Any):
        super().__init__(*args)
        self.counter = counter

    def _scan(self) -> None:
        self.counter["scans"] += 1

    def __iter__(self):
        self._scan()
        return super().__iter__()

    def keys(self):
        self._scan()
        return super().keys()

    def values(self):
        self._scan()
        return super().values()

    def items(self):
        self._scan()
        return super().items()

    def copy(self):
        self._scan()
        return super().copy()


def counted(tables, counter: Counter):
    """The same tables with every edge condition counting its calls."""

    def wrap(edge):
        inner = edge.condition

        def condition(results, node_args):
            counter["conditions"] += 1
            return inner(results, node_args)

        return dataclasses.replace(edge, condition=condition)

    flows = {name: dataclasses.replace(flow, edges=tuple(wrap(edge) for edge in flow.edges))
             for name, flow in tables.flows.items()}
    return dataclasses.replace(tables, flows=flows)


class Meter:
    """Counts the work of single steps of a driver."""

    def __init__(self, driver, counter: Counter):
        self.driver = driver
        self.counter = counter
        state = driver.state
        for name in ("active", "finished", "failed", "triggered_edges"):
            setattr(state, name, ScanCountingDict(self.counter, getattr(state, name)))

    def measure(self, report) -> dict[str, Any]:
        d = self.driver
        self.counter.clear()
        reads_before = len(d.reads)
        report()
        actions = d.last
        return {
            "conditions": self.counter["conditions"],
            "scans": self.counter["scans"],
            "reads": len(d.reads) - reads_before,
            "actions": sorted(type(a).__name__ for a in actions if not isinstance(a, Note)),
            "notes": sorted(a.event for a in actions if isinstance(a, Note)),
        }


def _compile(tables_from_yaml, config: dict) -> Any:
    return tables_from_yaml(yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))


def chain_config(size: int) -> dict:
    """(start) --> T0 --> T1 --> ... --> T<size-1>

    Unconditional edges: each compiled condition makes the 10,000-node compile much slower, and
    the counting wrapper counts calls of the built-in always-true condition just the same.
    """
    edges = [{"from": None, "to": "T0"}]
    edges += [{"from": f"T{i}", "to": f"T{i + 1}"} for i in range(size - 1)]
    return {"flow-definitions": [{"name": "chain", "edges": edges}]}


FANOUT = """
    flow-definitions:
      - name: fan
        edges:
          - {from: , to: Split}
          - from: Split
            to: Work
            foreach: {function: count_from_args, import: engine_helpers}
          - {from: Work, to: After, condition: {name: fieldEqual, args: {key: ok, value: true}}}
"""


@pytest.mark.slow
def test_a_chain_step_costs_the_same_in_a_chain_of_10_1000_or_10000_tasks(tables_from_yaml, drive):
    """
        (start) --> T0 --> T1 --> ... --> T<n-1>       n = 10, 1,000, 10,000
    """
    per_size = {}
    for size in SIZES:
        # Given a chain of `size` tasks, run to 10%, 50% and 90% of its length
        counter: Counter = Counter()
        tables = counted(_compile(tables_from_yaml, chain_config(size)), counter)
        d = drive(tables, "chain")
        meter = Meter(d, counter)
        d.start()
        checkpoints = {size // 10, size // 2, size * 9 // 10}
        seen = []
        for index in range(size - 1):
            current = d.one(f"T{index}")
            if index in checkpoints:
                # When one task of the chain reports
                seen.append(meter.measure(lambda: d.succeed(current, result={"ok": True})))
            else:
                d.succeed(current, result={"ok": True})
        d.succeed(d.one(f"T{size - 1}"), result={"ok": True})
        assert d.succeeded and len(d.succeeded.result["finished_nodes"]) == size
        # Then every measured step did the same work
        assert all(work == seen[0] for work in seen), seen
        per_size[size] = seen[0]
    # And that work is the same whatever the size: one condition, one start and one tick, and no
    # walk over the state
    assert per_size[10] == per_size[1_000] == per_size[10_000]
    assert per_size[10]["conditions"] == 1 and per_size[10]["reads"] == 0 and per_size[10]["scans"] == 0
    assert per_size[10]["actions"] == ["ScheduleTick", "StartTask"]


def test_a_fan_out_step_costs_the_same_with_10_1000_or_10000_branches(tables_from_yaml, drive):
    """
        (start) --> Split --foreach i in range(n)--> Work --[Work.ok]--> After     n = 10, 1,000, 10,000
    """
    tables_plain = tables_from_yaml(FANOUT)
    per_size = {}
    for size in SIZES:
        # Given a fan-out of `size` Work nodes, all running
        counter: Counter = Counter()
        tables = counted(tables_plain, counter)
        d = drive(tables, "fan", {"count": size})
        meter = Meter(d, counter)
        d.start()
        d.succeed(d.one("Split"))
        works = d.starts("Work")
        assert len(works) == size
        checkpoints = {size // 10, size // 2, size * 9 // 10}
        seen = []
        afters = []
        for index, work in enumerate(works):
            if index in checkpoints:
                # When one Work reports (others still running, earlier ones done)
                seen.append(meter.measure(lambda: d.succeed(work, result={"ok": True})))
            else:
                d.succeed(work, result={"ok": True})
            afters.append(d.one("After"))
        d.succeed(*afters)
        assert d.succeeded and len(d.succeeded.result["finished_nodes"]["After"]) == size
        # Then every measured step did the same work
        assert all(work == seen[0] for work in seen), seen
        per_size[size] = seen[0]
    # And it does not depend on the width of the fan-out
    assert per_size[10] == per_size[1_000] == per_size[10_000]
    assert per_size[10]["conditions"] == 1 and per_size[10]["reads"] == 1 and per_size[10]["scans"] == 0
    assert per_size[10]["actions"] == ["ScheduleTick", "StartTask"]


def test_the_sampling_strategy_can_still_read_the_whole_status(tables_from_yaml, drive):
    """
        (start) --> [A, A, B];  A --> C        sampling: engine_helpers.fixed_tick
    The status is built lazily for speed, but reads like the plain mapping Selinon passed.
    """
    import engine_helpers

    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            sampling: {name: fixed_tick, import: engine_helpers, args: {seconds: 1}}
            edges:
              - {from: , to: [A, A, B]}
              - {from: A, to: C}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n1")
    d.fail("n2")
    (status,) = engine_helpers.CALLS["fixed_tick"][-1]
    assert status["active_nodes"] == ["A", "C"] and len(status["active_nodes"]) == 2
    assert list(status["active_nodes"]) == ["A", "C"] and status["active_nodes"][0] == "A"
    assert status["finished_nodes"] == {"A": ["n1"]}
    assert status["failed_nodes"] == {"B": ["n2"]}
    assert status["new_started_nodes"] == [] and status["new_fallback_nodes"] == []
    assert status["previous_retry"] == 1
    assert set(status) == {"previous_retry", "active_nodes", "failed_nodes", "new_started_nodes",
                           "new_fallback_nodes", "finished_nodes"}
