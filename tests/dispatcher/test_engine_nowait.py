"""nowait nodes: started but never awaited. They never block the end of a flow, never fire edges
(their reports are ignored), their failures go unseen, and they are left out of the strategy's
new nodes."""

from __future__ import annotations

from selflow.dispatcher.records import NodeFailed, NodeSucceeded, StartFlow


def test_a_nowait_node_is_started_but_does_not_block_the_end(tables_from_yaml, drive):
    """
        (start) --> A --> [B, N]        nowait: N
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            edges:
              - {from: , to: A}
              - {from: A, to: [B, N]}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    # Then N is started like any node, with its parent
    assert [(s.name, s.parent) for s in d.starts()] == [("B", {"A": "n0"}), ("N", {"A": "n0"})]
    assert d.state.active == {"n1": "B"}
    # When B finishes, the flow ends without waiting for N, and N is not in the result
    d.succeed("n1")
    assert d.succeeded.result == {"finished_nodes": {"A": ["n0"], "B": ["n1"]}, "failed_nodes": {}}


def test_a_flow_whose_only_work_is_nowait_ends_at_once(tables_from_yaml, drive):
    """
        (start) --> [N, child]        nowait: [N, child]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: [N, child]
            edges:
              - {from: , to: [N, child]}
          - name: child
            edges:
              - {from: , to: T}
    """)
    d = drive(tables, "f")
    d.start()
    # Then both are started (the sub-flow too) and the flow succeeds in the same step, with no tick
    assert d.started_names() == ["N", "child"] and isinstance(d.one("child"), StartFlow)
    assert d.succeeded.result == {"finished_nodes": {}, "failed_nodes": {}}
    assert d.ticks() == []


def test_reports_of_nowait_nodes_are_ignored(tables_from_yaml, drive):
    """
        (start) --> [A, N]        nowait: N
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            edges:
              - {from: , to: [A, N]}
    """)
    d = drive(tables, "f")
    d.start()
    # When N succeeds or fails while the flow runs
    d.step(NodeSucceeded("n1"))
    d.step(NodeFailed("n1", "unseen"))
    # Then nothing changes, and the flow still succeeds when A does
    assert d.starts() == [] and d.state.failed == {}
    d.succeed("n0")
    assert d.succeeded.result["failed_nodes"] == {}


def test_nowait_nodes_are_not_revoked_by_an_eager_failure(tables_from_yaml, drive):
    """
        (start) --> [A, B, N]        nowait: N, eager_failures: A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            eager_failures: A
            edges:
              - {from: , to: [A, B, N]}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    assert d.revoked() == ["n1"]


def test_a_nowait_fallback_handles_the_failure_and_the_flow_ends(tables_from_yaml, drive):
    """
        (start) --> A        failures: A -> N (nowait)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            edges:
              - {from: , to: A}
            failures:
              - {nodes: A, fallback: N}
    """)
    d = drive(tables, "f")
    d.start()
    d.fail("n0")
    # Then N starts with the failed parent, and the flow succeeds without waiting for it
    assert d.one("N").parent == {"A": "n0"}
    assert d.succeeded.result == {"finished_nodes": {}, "failed_nodes": {"A": ["n0"]}}


def test_nowait_nodes_are_not_new_started_nodes_for_the_strategy(tables_from_yaml, drive):
    """
        (start) --> [A, N];  A --> [B, N]        nowait: N        sampling: fixed_tick
    """
    import engine_helpers

    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            nowait: N
            sampling: {name: fixed_tick, import: engine_helpers}
            edges:
              - {from: , to: [A, N]}
              - {from: A, to: [B, N]}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    assert [list(call[0]["new_started_nodes"]) for call in engine_helpers.CALLS["fixed_tick"]] == [["A"], ["B"]]
