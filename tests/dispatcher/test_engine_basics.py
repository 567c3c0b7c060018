"""Engine basics: starting edges, conditions, chains, fan-out, duplicate destinations, the flow
result, harmless duplicate/unknown events, the safety tick, and state (de)serialisation."""

from __future__ import annotations

import json

import pytest

from selflow.dispatcher.records import (
    FAILURE,
    RUNNING,
    SUCCESS,
    FlowState,
    NodeFailed,
    NodeSucceeded,
    ScheduleTick,
    StartTask,
    event_from_dict,
    event_to_dict,
)
from selflow.errors import DecodeError

# --- starting edges ---------------------------------------------------------------------


def test_starting_edges_fire_only_when_their_condition_is_true(tables_from_yaml, drive):
    """
        (start) --[mode == fast]--> Fast
        (start) --[mode == slow]--> Slow
        (start) ------------------> Always
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - from:
                to: Fast
                condition: {name: argsFieldEqual, args: {key: mode, value: fast}}
              - from:
                to: Slow
                condition: {name: argsFieldEqual, args: {key: mode, value: slow}}
              - from:
                to: Always
    """)
    # Given a flow whose starting edges test the flow arguments
    d = drive(tables, "f", {"mode": "fast"})
    # When it starts
    d.start()
    # Then only the true edges fire, in table order, and the false one is traced
    assert d.started_names() == ["Fast", "Always"]
    assert [n.details["condition_str"] for n in d.notes("EDGE_COND_FALSE")] == \
        ["args_field_equal(key='mode', value='slow')"]
    assert d.notes("FLOW_START")
    assert d.state.status == RUNNING and d.state.started


def test_a_flow_whose_starting_conditions_are_all_false_succeeds_at_once_with_nothing_done(tables_from_yaml,
                                                                                                drive):
    """
        (start) --[alwaysFalse]--> A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A, condition: {name: alwaysFalse}}
    """)
    # Given a flow that starts nothing
    d = drive(tables, "f")
    # When it starts
    d.start()
    # Then it ends successfully with an empty result and asks for no tick
    assert d.starts() == []
    assert d.succeeded.result == {"finished_nodes": {}, "failed_nodes": {}}
    assert d.ticks() == []
    assert d.state.status == SUCCESS


def test_started_tasks_get_the_flow_arguments_and_the_flow_parent(tables_from_yaml, drive):
    """
        (start) --> A        (parent handed to the flow: {Up: up-1})
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
          - name: outer
            edges:
              - {from: , to: Up}
    """)
    # Given a flow started with arguments and a parent mapping (as a sub-flow with propagate_parent)
    d = drive(tables, "f", {"x": 1}, parent={"Up": "up-1"})
    # When it starts
    d.start()
    # Then the task is started with exactly those, under this flow's id and name
    assert d.one("A") == StartTask(node_id="n0", name="A", flow_id="flow0", flow_name="f", node_args={"x": 1},
                                   parent={"Up": "up-1"})


def test_a_starting_edge_sees_the_results_of_the_tasks_in_the_flow_parent(tables_from_yaml, drive):
    """
        parent flow:  Split --> f          (propagate_parent: f)
        f:            (start) --foreach items of Split's result--> A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - from:
                to: A
                foreach: {function: items_from_parent, import: engine_helpers}
          - name: outer
            propagate_parent: f
            edges:
              - {from: , to: Split}
              - {from: Split, to: f}
    """)
    # Given f runs as a sub-flow whose parent holds the task Split and a propagated sub-flow
    parent = {"Split": "s1", "sub": {"T": ["t1"]}}
    d = drive(tables, "f", parent=parent, results={"s1": {"items": ["a", "b"]}})
    # When it starts
    d.start()
    # Then the starting edge read Split's result (and only task ids were read), and each started
    # task gets the flow's parent mapping
    assert d.started_names() == ["A", "A"]
    assert d.reads == ["s1"]
    assert [s.parent for s in d.starts()] == [parent, parent]


# --- conditions on results and arguments ------------------------------------------------


@pytest.mark.parametrize("result, expected", [({"ok": True}, ["B"]), ({"ok": False}, []), (None, [])])
def test_an_edge_condition_reads_the_parent_result(tables_from_yaml, drive, result, expected):
    """
        (start) --> A --[A.ok == true]--> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - from: A
                to: B
                condition: {name: fieldEqual, args: {key: ok, value: true}}
    """)
    # Given a started flow
    d = drive(tables, "f")
    d.start()
    # When A finishes with the given result
    d.succeed(d.one("A"), result=result)
    # Then B starts only when the result says so, and the condition read A's own result
    assert d.started_names() == expected
    assert d.reads == ["n0"]
    if not expected:
        assert d.succeeded.result == {"finished_nodes": {"A": ["n0"]}, "failed_nodes": {}}


def test_an_edge_condition_can_mix_the_parent_result_and_the_flow_arguments(tables_from_yaml, drive):
    """
        (start) --> A --[A.kind == node_args.kind (custom predicates)]--> B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - from: A
                to: B
                condition:
                  and:
                    - {name: result_is, args: {key: kind, value: x}}
                    - {name: arg_is, args: {key: kind, value: x}}
    """)
    for node_args, expected in (({"kind": "x"}, ["B"]), ({"kind": "y"}, [])):
        # Given flows started with different arguments
        d = drive(tables, "f", node_args)
        d.start()
        # When A reports the same result
        d.succeed(d.one("A"), result={"kind": "x"})
        # Then the flow arguments decide
        assert d.started_names() == expected


# --- chains, fan-out, duplicates --------------------------------------------------------


def test_a_chain_runs_one_node_after_the_other_with_the_parent_of_each_step(tables_from_yaml, drive):
    """
        (start) --> A --> B --> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: B, to: C}
    """)
    # Given a chain
    d = drive(tables, "f", {"n": 1})
    # When each node finishes in turn
    d.start()
    a = d.one("A")
    d.succeed(a)
    b = d.one("B")
    d.succeed(b)
    c = d.one("C")
    # Then each step starts exactly the next node with the previous one as parent, and the flow
    # arguments travel unchanged
    assert (a.parent, b.parent, c.parent) == ({}, {"A": "n0"}, {"B": "n1"})
    assert {a.node_args["n"], b.node_args["n"], c.node_args["n"]} == {1}
    assert not d.ended
    d.succeed(c)
    assert d.succeeded.result == {"finished_nodes": {"A": ["n0"], "B": ["n1"], "C": ["n2"]}, "failed_nodes": {}}
    assert d.state.active == {}


def test_fan_out_starts_every_destination_and_the_flow_waits_for_all(tables_from_yaml, drive):
    """
        (start) --> A --> B
                      \\-> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: [B, C]}
    """)
    # Given A fans out to B and C
    d = drive(tables, "f")
    d.start()
    d.succeed(d.one("A"))
    # Then both start with A as parent
    assert [(s.name, s.parent) for s in d.starts()] == [("B", {"A": "n0"}), ("C", {"A": "n0"})]
    # When only B finishes the flow keeps waiting; when C finishes too, it ends
    d.succeed(d.one("B"))
    assert not d.ended
    d.succeed("n2")
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0"], "B": ["n1"], "C": ["n2"]}


def test_a_destination_listed_twice_in_to_is_started_twice(tables_from_yaml, drive):
    """
        (start) --> [A, A, B]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, A, B]}
    """)
    # Given an edge that names A twice
    d = drive(tables, "f")
    # When the flow starts
    d.start()
    # Then A runs twice, as two nodes, and the flow waits for both
    assert [(s.name, s.node_id) for s in d.starts()] == [("A", "n0"), ("A", "n1"), ("B", "n2")]
    d.succeed("n0", "n2")
    assert not d.ended
    d.succeed("n1")
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0", "n1"], "B": ["n2"]}


def test_two_nodes_reported_in_one_step_are_both_handled(tables_from_yaml, drive):
    """
        (start) --> [A, B];  A --> X;  B --> Y
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: A, to: X}
              - {from: B, to: Y}
    """)
    d = drive(tables, "f")
    d.start()
    # When both reports arrive in the same step
    d.succeed("n1", "n0")
    # Then both fire, in the order of the events
    assert d.started_names() == ["Y", "X"]


# --- duplicate and unknown events -------------------------------------------------------


def test_a_duplicated_success_changes_nothing(tables_from_yaml, drive):
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
    # Given A has been reported once and B started
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    before = json.dumps(d.state.to_dict(), sort_keys=True)
    # When the same report arrives again (alone, twice in a batch, or as a failure)
    d.step(NodeSucceeded("n0"))
    assert d.starts() == []
    d.step(NodeSucceeded("n0"), NodeSucceeded("n0"), NodeFailed("n0", "late"))
    # Then no node starts, nothing is recorded twice and the state apart from the tick is equal
    assert d.starts() == [] and not d.ended
    after = d.state.to_dict()
    assert after["finished"] == {"A": ["n0"]} and after["failed"] == {}
    assert json.dumps({**after, "previous_tick": None}, sort_keys=True) == \
        json.dumps({**json.loads(before), "previous_tick": None}, sort_keys=True)


def test_a_duplicate_inside_one_batch_is_counted_once(tables_from_yaml, drive):
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
    # When the first report of A comes twice in the same batch
    d.step(NodeSucceeded("n0"), NodeSucceeded("n0"))
    # Then B starts once
    assert d.started_names() == ["B"]


def test_unknown_node_ids_are_ignored(tables_from_yaml, drive):
    """
        (start) --> A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
    """)
    d = drive(tables, "f")
    d.start()
    # When events name nodes this flow never started
    d.step(NodeSucceeded("who"), NodeFailed("what", "x"))
    # Then nothing happens, and A is still awaited
    assert d.starts() == [] and not d.ended
    assert d.state.active == {"n0": "A"} and d.state.failed == {}


def test_steps_after_the_end_do_nothing(tables_from_yaml, drive):
    """
        (start) --> A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    assert d.succeeded
    # When anything arrives after the flow ended
    assert d.step(NodeSucceeded("n0")) == []
    assert d.step(NodeFailed("n0")) == []
    assert d.step() == []
    # Then the flow stays successful
    assert d.state.status == SUCCESS


def test_triggered_edges_remember_every_edge_whose_condition_was_true(tables_from_yaml, drive):
    """
        (start) --> A --> B ;  A --[false]--> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: A, to: C, condition: {name: alwaysFalse}}
    """)
    flow = tables.flows["f"]
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    assert d.state.triggered_edges == {flow.edges[0].id: 1, flow.edges[1].id: 1}


# --- safety tick --------------------------------------------------------------------------


def test_the_default_sampling_strategy_asks_for_a_safety_tick_while_nodes_run(tables_from_yaml, drive):
    """
        (start) --> A --> B      (default sampling: biexponential_increase 2..120)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
    """)
    d = drive(tables, "f")
    # When the flow starts, and again when a step starts a new node
    d.start()
    assert d.ticks() == [ScheduleTick(2.0)]
    d.succeed("n0")
    # Then the default strategy doubles the tick because a node started
    assert d.ticks() == [ScheduleTick(4.0)]
    # When a wake-up brings nothing new, it drops back to the start value
    d.step()
    assert d.ticks() == [ScheduleTick(2.0)]
    # When the flow ends, no tick is asked for
    d.succeed("n1")
    assert d.ticks() == [] and d.succeeded


def test_a_custom_sampling_strategy_gets_the_status_and_its_args(tables_from_yaml, drive):
    """
        (start) --> [A, N(nowait)];  A --> B      sampling: engine_helpers.fixed_tick(seconds=5)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            sampling: {name: fixed_tick, import: engine_helpers, args: {seconds: 5}}
            edges:
              - {from: , to: [A, N]}
              - {from: A, to: B}
    """)
    import engine_helpers

    d = drive(tables, "f")
    d.start()
    # Then the tick is the strategy's answer, and it saw the new nodes without the nowait one
    assert d.ticks() == [ScheduleTick(5.0)]
    (status,) = engine_helpers.CALLS["fixed_tick"][0]
    assert list(status["active_nodes"]) == ["A"] and list(status["new_started_nodes"]) == ["A"]
    assert status["previous_retry"] is None and dict(status["finished_nodes"]) == {}
    d.succeed("n0")
    (status,) = engine_helpers.CALLS["fixed_tick"][1]
    assert status["previous_retry"] == 5 and list(status["active_nodes"]) == ["B"]
    assert dict(status["finished_nodes"]) == {"A": ["n0"]} and dict(status["failed_nodes"]) == {}


def test_a_raising_sampling_strategy_fails_the_flow(tables_from_yaml, drive):
    """
        (start) --> A        sampling: engine_helpers.broken_strategy
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            sampling: {name: broken_strategy, import: engine_helpers, args: {}}
            edges:
              - {from: , to: A}
    """)
    d = drive(tables, "f")
    d.start()
    # Then the flow fails, names the strategy, and revokes what it had started
    assert d.failed and "broken_strategy" in d.failed.reason and "strategy exploded" in d.failed.reason
    assert d.revoked() == ["n0"]
    assert d.state.status == FAILURE


# --- state and events as plain data -------------------------------------------------------


def test_flow_state_round_trips_through_json(tables_from_yaml, drive):
    """
        (start) --> [A, B];  A --> C       (A done, B failed, C running)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: A, to: C}
    """)
    d = drive(tables, "f", {"k": [1, 2]}, parent={"P": "p1"}, selective=None)
    d.start()
    d.succeed("n0")
    d.fail("n1")
    # When the state goes through JSON and back
    text = json.dumps(d.state.to_dict())
    again = FlowState.from_dict(json.loads(text))
    # Then it is equal and carries a schema version
    assert again == d.state
    assert json.loads(text)["schema_version"] == 1
    # And the engine goes on from the copy as from the original
    d.state = again
    d.succeed("n2")
    assert d.failed and d.failed.result == {"finished_nodes": {"A": ["n0"], "C": ["n2"]},
                                            "failed_nodes": {"B": ["n1"]}}


def test_flow_state_ignores_unknown_keys_from_an_older_or_newer_writer():
    state = FlowState.from_dict({"flow_id": "x", "flow_name": "f", "added_later": 1, "schema_version": 1})
    assert state.flow_id == "x" and state.status == RUNNING


@pytest.mark.parametrize("data", [
    None,
    [],
    "text",
    {"flow_name": "f"},
    {"flow_id": "x"},
    {"flow_id": "x", "flow_name": "f", "schema_version": 99},
    {"flow_id": "x", "flow_name": "f", "schema_version": "1"},
    {"flow_id": "x", "flow_name": "f", "active": ["n0"]},
    {"flow_id": "x", "flow_name": "f", "finished": "A"},
])
def test_bad_flow_state_is_a_decode_error(data):
    with pytest.raises(DecodeError):
        FlowState.from_dict(data)


def test_events_round_trip_and_bad_events_are_decode_errors():
    for event in (NodeSucceeded("n1"), NodeFailed("n2", "Traceback...")):
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event
    for bad in ({"kind": "exploded", "node_id": "n"}, {"node_id": "n"}, {"kind": "succeeded"}, None, "x"):
        with pytest.raises(DecodeError):
            event_from_dict(bad)
