"""Failures: fallbacks (greedy, per instance, conditional, back into the graph, propagate_failure,
failed parents and propagated sub-flow failures), eager failures, flow retries with stale events,
user code that raises, and storage errors."""

from __future__ import annotations

import json

import pytest

from selflow.dispatcher.records import FAILURE, RUNNING, SUCCESS, NodeFailed, NodeSucceeded, ScheduleTick
from selflow.errors import StorageError

# --- plain failures ---------------------------------------------------------------------


def test_a_failure_without_fallback_fails_the_flow_once_nothing_is_running(tables_from_yaml, drive):
    """
        (start) --> [A, B];  B --> C          A fails, B and C succeed
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: B, to: C}
    """)
    d = drive(tables, "f")
    d.start()
    # When A fails while B is still running
    d.fail("n0", error="Traceback: boom")
    # Then the flow waits and the failure is traced
    assert not d.ended
    assert d.notes("NODE_FAILURE")[0].details["what"] == "Traceback: boom"
    # When B and then C finish
    d.succeed("n1")
    d.succeed("n2")
    # Then the flow fails, naming A, and its result keeps what finished and what failed
    assert d.failed.reason == "node(s) A failed in flow 'f'"
    assert d.failed.result == {"finished_nodes": {"B": ["n1"], "C": ["n2"]}, "failed_nodes": {"A": ["n0"]}}
    assert d.state.status == FAILURE and d.ticks() == []


def test_a_failed_node_fires_none_of_its_edges(tables_from_yaml, drive):
    """
        (start) --> A --> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    assert d.starts() == [] and d.failed


# --- fallbacks ------------------------------------------------------------------------------


def test_a_fallback_starts_with_the_failed_node_as_parent_and_handles_the_failure(tables_from_yaml, drive):
    """
        (start) --> A          failures: A -> Fix
                    x
                    +-(A failed)-> Fix
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f", {"x": 1})
    d.start()
    # When A fails
    d.fail("n0")
    # Then Fix starts with the flow arguments and parent {A: <failed id>}
    fix = d.one("Fix")
    assert (fix.node_args, fix.parent) == ({"x": 1}, {"A": "n0"})
    assert d.notes("FALLBACK_START")[0].details["nodes"] == ["A"]
    assert d.ticks()  # the fallback is awaited
    # When Fix finishes, the failure counts as handled: the flow succeeds and still reports A failed
    d.succeed(fix)
    assert d.succeeded.result == {"finished_nodes": {"Fix": ["n1"]}, "failed_nodes": {"A": ["n0"]}}


def test_fallback_true_marks_the_failure_handled_without_starting_anything(tables_from_yaml, drive):
    """
        (start) --> [A, B]     failures: A -> true
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
            failures:
              - {nodes: A, fallback: true}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    d.succeed("n1")
    assert d.starts() == []
    assert d.succeeded.result == {"finished_nodes": {"B": ["n1"]}, "failed_nodes": {"A": ["n0"]}}


def test_fallbacks_wait_until_nothing_is_running(tables_from_yaml, drive):
    """
        (start) --> [A, B];  B --> C       failures: A -> Fix
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: B, to: C}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    assert d.starts() == []
    d.succeed("n1")
    # C is running: still no fallback
    assert d.started_names() == ["C"]
    d.succeed("n2")
    assert d.started_names() == ["Fix"]


def test_the_largest_failed_set_wins(tables_from_yaml, drive):
    """
        (start) --> [A, B]     failures: [A, B] -> FixBoth;  A -> FixA;  B -> FixB
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
            failures:
              - {nodes: A, fallback: FixA}
              - {nodes: B, fallback: FixB}
              - {nodes: [A, B], fallback: FixBoth}
    """)
    d = drive(tables, "f")
    d.start()
    # When both fail
    d.fail("n0", "n1")
    # Then one fallback handles both, and sees both failed parents
    assert [(s.name, s.parent) for s in d.starts()] == [("FixBoth", {"A": "n0", "B": "n1"})]
    d.succeed("n2")
    assert d.succeeded


def test_greedy_leaves_the_rest_to_smaller_sets(tables_from_yaml, drive):
    """
        (start) --> [A, A, B]  failures: [A, B] -> FixBoth;  A -> FixA
        a1, a2 and b fail: (a1, b) -> FixBoth, a2 -> FixA
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, A, B]}
            failures:
              - {nodes: A, fallback: FixA}
              - {nodes: [A, B], fallback: FixBoth}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0", "n1", "n2")
    assert [(s.name, s.parent) for s in d.starts()] == [("FixBoth", {"A": "n0", "B": "n2"}), ("FixA", {"A": "n1"})]


@pytest.mark.parametrize("declared", [("AB", "BC"), ("BC", "AB")])
def test_sets_of_equal_size_are_tried_in_lexical_order(tables_from_yaml, drive, declared):
    """
        (start) --> [A, B, C]  failures: [A, B] -> FixAB;  [B, C] -> FixBC;  C -> FixC
        all fail: {A, B} wins the tie (lexical, whatever the declaration order), C goes to FixC
    """
    entries = {"AB": "{nodes: [A, B], fallback: FixAB}", "BC": "{nodes: [B, C], fallback: FixBC}"}
    tables = tables_from_yaml(f"""
        flow-definitions:
          - name: f
            edges:
              - {{from: , to: [A, B, C]}}
            failures:
              - {entries[declared[0]]}
              - {entries[declared[1]]}
              - {{nodes: C, fallback: FixC}}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n2", "n1", "n0")
    assert d.started_names() == ["FixAB", "FixC"]


def test_one_fallback_run_per_failed_instance(tables_from_yaml, drive):
    """
        (start) --> [A, A, A]    failures: A -> Fix      two of the three A fail
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, A, A]}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n2")
    d.succeed("n1")
    d.fail("n0")
    # Then Fix runs once per failed A, oldest failure first, each with its own failed parent
    assert [s.parent for s in d.starts("Fix")] == [{"A": "n2"}, {"A": "n0"}]
    d.succeed("n3", "n4")
    assert d.succeeded.result["failed_nodes"] == {"A": ["n0", "n2"]}


def test_every_true_entry_for_the_same_set_runs(tables_from_yaml, drive):
    """
        (start) --> A    failures: A -> Fix1;  A -> [Fix2, Fix3]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Fix1}
              - {nodes: A, fallback: [Fix2, Fix3]}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    assert d.started_names() == ["Fix1", "Fix2", "Fix3"]


@pytest.mark.parametrize("mode, expected", [("fix", ["Fix"]), ("off", [])])
def test_a_fallback_condition_reads_the_flow_arguments(tables_from_yaml, drive, mode, expected):
    """
        (start) --> A    failures: A -[mode == fix]-> Fix
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - nodes: A
                fallback: Fix
                condition: {name: argsFieldEqual, args: {key: mode, value: fix}}
    """)
    d = drive(tables, "f", {"mode": mode})
    d.start()
    d.fail("n0")
    assert d.started_names() == expected
    if not expected:
        # Then with the condition false the failure stays unhandled and the flow fails
        assert d.notes("FALLBACK_COND_FALSE")
        assert d.failed.result == {"finished_nodes": {}, "failed_nodes": {"A": ["n0"]}}


def test_a_raising_fallback_condition_fails_the_flow(tables_from_yaml, drive):
    """
        (start) --> A    failures: A -[explode()]-> Fix
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Fix, condition: {name: explode}}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    assert d.starts() == []
    assert "fallback condition" in d.failed.reason and "ValueError: predicate exploded" in d.failed.reason


def test_a_fallback_can_lead_back_into_the_graph(tables_from_yaml, drive):
    """
        (start) --> A --> B --> C
                    x
                    +-(A failed)-> Fix --> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: Fix, to: B}
              - {from: B, to: C}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    d.succeed(d.one("Fix"))
    # Then B runs after the fallback, with the fallback as parent, and the flow goes on to the end
    assert d.one("B").parent == {"Fix": "n1"}
    d.succeed("n2")
    d.succeed(d.one("C"))
    assert d.succeeded.result == {"finished_nodes": {"B": ["n2"], "C": ["n3"], "Fix": ["n1"]},
                                  "failed_nodes": {"A": ["n0"]}}


def test_a_failing_fallback_fails_the_flow(tables_from_yaml, drive):
    """
        (start) --> A    failures: A -> Fix        Fix fails too
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    d.fail(d.one("Fix"))
    assert d.failed.reason == "node(s) Fix failed in flow 'f'"
    assert d.failed.result == {"finished_nodes": {}, "failed_nodes": {"A": ["n0"], "Fix": ["n1"]}}


def test_propagate_failure_runs_the_fallback_and_still_fails_the_flow(tables_from_yaml, drive):
    """
        (start) --> A    failures: A -> Cleanup (propagate_failure: true)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Cleanup, propagate_failure: true}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    # Then the fallback runs
    assert d.one("Cleanup").parent == {"A": "n0"}
    assert not d.ended
    # And when it has finished, the flow fails anyway, reporting both
    d.succeed("n1")
    assert d.failed.reason == "node(s) A failed in flow 'f'"
    assert d.failed.result == {"finished_nodes": {"Cleanup": ["n1"]}, "failed_nodes": {"A": ["n0"]}}


def test_a_handled_failure_and_an_unhandled_one_fail_the_flow_after_the_fallback(tables_from_yaml, drive):
    """
        (start) --> [A, B]     failures: A -> Fix        (B has no fallback)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0", "n1")
    # Then the fallback for A still runs, and the flow waits for it
    assert d.started_names() == ["Fix"] and not d.ended
    d.succeed("n2")
    # And then fails because of B alone
    assert d.failed.reason == "node(s) B failed in flow 'f'"
    assert d.failed.result == {"finished_nodes": {"Fix": ["n2"]}, "failed_nodes": {"A": ["n0"], "B": ["n1"]}}


def test_the_strategy_sees_the_fallbacks_just_started(tables_from_yaml, drive):
    """
        (start) --> A     failures: A -> Fix        sampling: fixed_tick
    """
    import engine_helpers

    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            sampling: {name: fixed_tick, import: engine_helpers}
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: Fix}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    (status,) = engine_helpers.CALLS["fixed_tick"][-1]
    assert list(status["new_fallback_nodes"]) == ["Fix"] and list(status["new_started_nodes"]) == []
    assert dict(status["failed_nodes"]) == {} and list(status["active_nodes"]) == ["Fix"]


# --- sub-flow failures ------------------------------------------------------------------------

SUBFLOW_FAILURE = """
    flow-definitions:
      - name: f
        {flags}
        edges:
          - {{from: , to: [A, mid]}}
        failures:
          - {{nodes: mid, fallback: [Fix, rescue]}}
      - name: mid
        edges:
          - {{from: , to: [T, inner]}}
      - name: inner
        edges:
          - {{from: , to: U}}
      - name: rescue
        edges:
          - {{from: , to: R}}
"""

#: mid failed: T failed and the inner flow failed (U failed twice, after a success)
SUBFLOW_RESULTS = {
    "n1": {"finished_nodes": {"S": ["s1"]}, "failed_nodes": {"T": ["t1"], "inner": ["i1"]}},
    "i1": {"finished_nodes": {"U": ["u0"]}, "failed_nodes": {"U": ["u1", "u2"]}},
}


@pytest.mark.parametrize("flags, expected", [
    ("", {}),
    ("propagate_failures: mid", {"mid": {"T": ["t1"], "inner": {"U": ["u1", "u2"]}}}),
    ("propagate_compound_failures: mid", {"mid": {"T": ["t1"], "U": ["u1", "u2"]}}),
])
def test_a_fallback_of_a_failed_sub_flow_gets_its_failed_nodes_when_asked(tables_from_yaml, drive, flags, expected):
    """
        f:     (start) --> [A, mid]     failures: mid -> [Fix, rescue]
        mid:   (start) --> [T, inner]
        inner: (start) --> U
    """
    tables = tables_from_yaml(SUBFLOW_FAILURE.format(flags=flags))
    d = drive(tables, "f", results=SUBFLOW_RESULTS)
    d.start()
    d.succeed("n0")
    # When the sub-flow fails
    d.fail("n1")
    # Then the task fallback's parent holds the sub-flow's failed nodes (nested or flattened), or
    # nothing without the flags; the sub-flow fallback gets no parent without propagate_parent_failures
    assert [(s.name, s.parent) for s in d.starts()] == [("Fix", expected), ("rescue", {})]


def test_propagate_parent_failures_gives_a_sub_flow_fallback_the_failed_parents(tables_from_yaml, drive):
    """
        f:      (start) --> A      failures: A -> [rescue, other]     propagate_parent_failures: rescue
        rescue: (start) --> R
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            propagate_parent_failures: rescue
            propagate_node_args: rescue
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: [rescue, other]}
          - name: rescue
            edges:
              - {from: , to: R}
          - name: other
            edges:
              - {from: , to: R}
    """)
    d = drive(tables, "f", {"x": 1})
    d.start()
    d.fail("n0")
    assert [(s.name, s.parent, s.node_args) for s in d.starts()] == \
        [("rescue", {"A": "n0"}, {"x": 1}), ("other", {}, None)]


# --- eager failures -----------------------------------------------------------------------------


def test_an_eager_failure_revokes_the_running_nodes_and_fails_at_once(tables_from_yaml, drive):
    """
        (start) --> [A, B, C]       eager_failures: A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            eager_failures: A
            edges:
              - {from: , to: [A, B, C]}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n2")
    # When A fails while B is still running
    d.fail("n0")
    # Then B is revoked and the flow fails now, keeping what finished and what failed
    assert d.revoked() == ["n1"]
    assert "eager" in d.failed.reason and "'A'" in d.failed.reason
    assert d.failed.result == {"finished_nodes": {"C": ["n2"]}, "failed_nodes": {"A": ["n0"]}}
    assert d.notes("EAGER_FAILURE") and d.ticks() == []
    # And B reporting later changes nothing
    assert d.step(NodeSucceeded("n1")) == []


def test_a_failure_of_a_node_that_is_not_eager_waits(tables_from_yaml, drive):
    """
        (start) --> [A, B]       eager_failures: A      (B fails)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            eager_failures: [A]
            edges:
              - {from: , to: [A, B]}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n1")
    assert not d.ended and d.revoked() == []


def test_events_after_an_eager_failure_in_the_same_batch_are_ignored(tables_from_yaml, drive):
    """
        (start) --> [A, B];  B --> C        eager_failures: A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            eager_failures: A
            edges:
              - {from: , to: [A, B]}
              - {from: B, to: C}
    """)
    d = drive(tables, "f")
    d.start()
    d.step(NodeFailed("n0"), NodeSucceeded("n1"))
    assert d.starts() == [] and d.revoked() == ["n1"] and d.failed


# --- flow retries -------------------------------------------------------------------------------


def test_a_flow_retry_revokes_restarts_from_scratch_and_ignores_the_old_attempt(tables_from_yaml, drive):
    """
        (start) --> [A, B];  B --> C        eager_failures: A, max_retry: 1, retry_countdown: 30
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            eager_failures: A
            max_retry: 1
            retry_countdown: 30
            edges:
              - {from: , to: [A, B]}
              - {from: B, to: C}
    """)
    d = drive(tables, "f", {"x": 1})
    d.start()
    # When A fails in the first attempt while B runs
    d.fail("n0")
    # Then B is revoked, the flow does not fail but asks to be restarted after retry_countdown
    assert d.revoked() == ["n1"]
    assert d.failed is None and d.ticks() == [ScheduleTick(30.0, restart=True)]
    assert d.notes("FLOW_RETRY")[0].details["retried_count"] == 0
    assert d.state.retried_count == 1 and d.state.status == RUNNING
    assert (d.state.active, d.state.finished, d.state.failed) == ({}, {}, {})
    # When the restart tick comes
    d.start()
    # Then the flow starts again, with new ids and the original arguments
    assert [(s.name, s.node_id, s.node_args) for s in d.starts()] == [("A", "n2", {"x": 1}), ("B", "n3", {"x": 1})]
    # And reports from the old attempt are ignored
    d.succeed("n1")
    d.fail("n0")
    assert d.starts() == [] and not d.ended
    # When the new attempt succeeds, the flow succeeds with only its nodes
    d.succeed("n2")
    d.succeed("n3")
    d.succeed(d.one("C"))
    assert d.succeeded.result["finished_nodes"] == {"A": ["n2"], "B": ["n3"], "C": ["n4"]}


def test_a_flow_fails_for_good_once_its_retries_are_used_up(tables_from_yaml, drive):
    """
        (start) --> A       max_retry: 2
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            max_retry: 2
            edges:
              - {from: , to: A}
    """)
    d = drive(tables, "f")
    for attempt in range(3):
        d.start()
        d.fail(d.one("A"))
        if attempt < 2:
            assert d.failed is None and d.ticks() == [ScheduleTick(0.0, restart=True)]
    # Then the third failure is final, and the result is the last attempt's
    assert d.failed.result == {"finished_nodes": {}, "failed_nodes": {"A": ["n2"]}}
    assert d.state.retried_count == 2


def test_a_retried_flow_with_a_sub_flow_restarts_it_too(tables_from_yaml, drive):
    """
        (start) --> [child, A]      eager_failures: A, max_retry: 1
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            eager_failures: A
            max_retry: 1
            edges:
              - {from: , to: [child, A]}
          - name: child
            edges:
              - {from: , to: T}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n1")
    # Then the running sub-flow is revoked too (by its flow id)
    assert d.revoked() == ["n0"]
    d.start()
    assert d.started_names() == ["child", "A"]


# --- user code that raises, storage errors ---------------------------------------------------


def test_a_raising_condition_fails_the_flow_with_a_clear_reason(tables_from_yaml, drive):
    """
        (start) --> A --[explode_on_result(A)]--> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B, condition: {name: explode_on_result}}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    edge = tables.flows["f"].edges[1]
    assert d.failed.reason == (f"condition explode_on_result(message=A) of edge {edge.id} in flow 'f' raised "
                               "ValueError: predicate exploded on a result")
    assert d.failed.result == {"finished_nodes": {"A": ["n0"]}, "failed_nodes": {}}


def test_a_raising_condition_retries_the_flow_when_max_retry_allows(tables_from_yaml, drive):
    """
        (start) --[explode(node_args)]--> A        max_retry: 1
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            max_retry: 1
            retry_countdown: 5
            edges:
              - {from: , to: A, condition: {name: explode}}
    """)
    d = drive(tables, "f")
    d.start()
    assert d.ticks() == [ScheduleTick(5.0, restart=True)] and d.failed is None
    assert "predicate exploded" in d.notes("FLOW_RETRY")[0].details["reason"]
    d.start()
    assert "predicate exploded" in d.failed.reason


def test_a_raising_condition_revokes_what_was_started_in_the_same_step(tables_from_yaml, drive):
    """
        (start) --> A --> B ;  A --[explode]--> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, D]}
              - {from: A, to: B}
              - {from: A, to: C, condition: {name: explode}}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    # B was started before the condition of the next edge raised: it and D get revoked
    assert d.started_names() == ["B"]
    assert sorted(d.revoked()) == ["n1", "n2"] and d.failed


def test_a_storage_error_from_the_result_reader_propagates_out_of_step(tables_from_yaml, drive):
    """
        (start) --> A --[A.ok]--> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B, condition: {name: fieldEqual, args: {key: ok, value: true}}}
    """)
    d = drive(tables, "f")
    d.start()
    saved = json.dumps(d.state.to_dict())     # what a state store keeps
    d.broken_reads.add("n0")
    # When reading A's result fails
    with pytest.raises(StorageError):
        d.succeed("n0", result={"ok": True})
    # Then the runtime retries the step from the saved state, and it goes through once storage is back
    from selflow.dispatcher.records import FlowState
    d.state = FlowState.from_dict(json.loads(saved))
    d.broken_reads.clear()
    d.succeed("n0")
    assert d.started_names() == ["B"]


def test_a_storage_error_while_reading_a_sub_flow_result_propagates(tables_from_yaml, drive):
    """
        (start) --> child --> Next       propagate_finished: child
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            propagate_finished: child
            edges:
              - {from: , to: child}
              - {from: child, to: Next}
          - name: child
            edges:
              - {from: , to: T}
    """)
    d = drive(tables, "f")
    d.start()
    d.broken_reads.add("n0")
    with pytest.raises(StorageError):
        d.succeed("n0")


def test_a_duplicate_failure_is_recorded_once(tables_from_yaml, drive):
    """
        (start) --> [A, B]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
    """)
    d = drive(tables, "f")
    d.start()
    d.step(NodeFailed("n0"), NodeFailed("n0"))
    d.fail("n0")
    d.succeed("n1")
    assert d.failed.result["failed_nodes"] == {"A": ["n0"]}
    assert d.state.status == FAILURE and d.state.status != SUCCESS
