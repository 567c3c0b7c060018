"""Selective runs: ``compute_plan`` (paths, errors, follow_subflows, run_subsequent) and how the
engine follows a plan (edges and destinations outside it, requested tasks, reuse of earlier
results, plans handed to sub-flows)."""

from __future__ import annotations

import pytest

import engine_helpers
from selflow.dispatcher.records import StartFlow
from selflow.dispatcher.selective import compute_plan
from selflow.errors import SelectiveNoPathError, UnknownFlowError

MAIN = """
    flow-definitions:
      - name: f
        edges:
          - {from: , to: A}          # 0
          - {from: A, to: [B, C]}    # 1
          - {from: B, to: D}         # 2
          - {from: [C, D], to: E}    # 3
          - {from: D, to: G}         # 4
          - {from: G, to: H}         # 5
"""


def _ids(tables, flow="f"):
    return [edge.id for edge in tables.flows[flow].edges]


# --- compute_plan --------------------------------------------------------------------------


def test_a_plan_holds_every_edge_on_the_paths_to_the_requested_task(tables_from_yaml):
    """
        (start) -0-> A -1-> [B, C];  B -2-> D;  [C, D] -3-> E;  D -4-> G -5-> H
        requested: D  =>  edges 0 (A), 1 (B only), 2 (D)
    """
    tables = tables_from_yaml(MAIN)
    e = _ids(tables)
    plan = compute_plan(tables, "f", ["D"])
    assert plan == {"task_names": ["D"], "edges": {"f": {e[0]: ["A"], e[1]: ["B"], e[2]: ["D"]}}}


def test_a_plan_for_a_join_takes_every_source_path(tables_from_yaml):
    """
        requested: E  =>  both branches: 0, 1 (B and C), 2, 3
    """
    tables = tables_from_yaml(MAIN)
    e = _ids(tables)
    plan = compute_plan(tables, "f", ["E", "E"])
    assert plan == {"task_names": ["E"], "edges": {"f": {e[0]: ["A"], e[1]: ["B", "C"], e[2]: ["D"],
                                                         e[3]: ["E"]}}}


def test_run_subsequent_adds_everything_that_follows(tables_from_yaml):
    """
        requested: D, run_subsequent  =>  also D -4-> G -5-> H (not E: C is not run)
    """
    tables = tables_from_yaml(MAIN)
    e = _ids(tables)
    plan = compute_plan(tables, "f", ["D"], run_subsequent=True)
    assert plan["edges"]["f"] == {e[0]: ["A"], e[1]: ["B"], e[2]: ["D"], e[4]: ["G"], e[5]: ["H"]}


def test_a_plan_keeps_the_edges_of_a_cycle_on_the_path(tables_from_yaml):
    """
        (start) -0-> A -1-> B -2-> A (cycle);  B -3-> C
        requested: C  =>  0, 1, 2 (back into A) and 3
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: B, to: A}
              - {from: B, to: C}
    """)
    e = _ids(tables)
    assert compute_plan(tables, "f", ["C"])["edges"]["f"] == {e[0]: ["A"], e[1]: ["B"], e[2]: ["A"], e[3]: ["C"]}


SUBFLOWS = """
    flow-definitions:
      - name: f
        edges:
          - {from: , to: A}            # 0
          - {from: A, to: sub}         # 1
          - {from: sub, to: Z}         # 2
          - {from: A, to: other}       # 3
      - name: sub
        edges:
          - {from: , to: X}            # 0
          - {from: X, to: Y}           # 1
          - {from: X, to: W}           # 2
      - name: other
        edges:
          - {from: , to: Q}
"""


def test_no_path_is_an_error_that_suggests_follow_subflows(tables_from_yaml):
    """
        f: (start) -> A -> sub -> Z;  A -> other        sub: (start) -> X -> [Y, W]
    """
    tables = tables_from_yaml(SUBFLOWS)
    with pytest.raises(SelectiveNoPathError, match="no path to node 'Y' in flow 'f' \\(try follow_subflows\\)"):
        compute_plan(tables, "f", ["Y"])
    with pytest.raises(SelectiveNoPathError, match="'Nope'"):
        compute_plan(tables, "f", ["Nope"], follow_subflows=True)
    with pytest.raises(UnknownFlowError):
        compute_plan(tables, "nope", ["A"])


def test_follow_subflows_plans_the_sub_flow_and_the_way_to_it(tables_from_yaml):
    """
        requested: Y with follow_subflows  =>  f: 0, 1 (to sub);  sub: 0, 1
    """
    tables = tables_from_yaml(SUBFLOWS)
    f, sub = _ids(tables), _ids(tables, "sub")
    plan = compute_plan(tables, "f", ["Y"], follow_subflows=True)
    assert plan == {"task_names": ["Y"], "edges": {"f": {f[0]: ["A"], f[1]: ["sub"]},
                                                   "sub": {sub[0]: ["X"], sub[1]: ["Y"]}}}


def test_run_subsequent_can_name_the_flows_to_extend(tables_from_yaml):
    """
        requested: X with follow_subflows, run_subsequent: [sub]  =>  sub also runs Y and W
    """
    tables = tables_from_yaml(SUBFLOWS)
    sub = _ids(tables, "sub")
    plan = compute_plan(tables, "f", ["X"], follow_subflows=True, run_subsequent=["sub"])
    assert plan["edges"]["sub"] == {sub[0]: ["X"], sub[1]: ["Y"], sub[2]: ["W"]}
    assert set(plan["edges"]) == {"f", "sub"}


# --- the engine following a plan ------------------------------------------------------------


def test_edges_and_destinations_outside_the_plan_never_fire(tables_from_yaml, drive):
    """
        (start) -> A -> [B, C];  B -> D;  [C, D] -> E;  D -> G -> H         requested: D
    """
    tables = tables_from_yaml(MAIN)
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["D"]))
    d.start()
    d.succeed(d.one("A"))
    # Then C, a destination of a planned edge, is skipped
    assert d.started_names() == ["B"]
    assert [n.details["node_name"] for n in d.notes("SELECTIVE_OMIT_NODE")] == ["C"]
    d.succeed(d.one("B"))
    d.succeed(d.one("D"))
    # And D's edges, outside the plan, do not fire: the flow ends with D
    assert d.starts() == []
    assert len(d.notes("SELECTIVE_OMIT_EDGE")) == 2
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0"], "B": ["n1"], "D": ["n2"]}


def test_an_unplanned_starting_edge_does_not_fire(tables_from_yaml, drive):
    """
        (start) -> A -> B;  (start) -> S        requested: B
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
              - {from: , to: S}
    """)
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["B"]))
    d.start()
    assert d.started_names() == ["A"]


RERUN = """
    tasks:
      - {name: A, import: nowhere, storage: Results,
         selective_run_function: {name: reuse_from_table, import: engine_helpers}}
      - {name: B, import: nowhere, storage: Results,
         selective_run_function: {name: reuse_from_table, import: engine_helpers}}
      - {name: C, import: nowhere, storage: Results,
         selective_run_function: {name: reuse_from_table, import: engine_helpers}}
    flow-definitions:
      - name: f
        edges:
          - {from: , to: A}
          - {from: A, to: B}
          - {from: B, to: C}
"""


def test_a_task_on_the_path_may_reuse_an_earlier_result(tables_from_yaml, drive):
    """
        (start) -> A -> B -> C        requested: C;  A reuses run "old-a"
    """
    tables = tables_from_yaml(RERUN)
    engine_helpers.REUSE["A"] = "old-a"
    d = drive(tables, "f", {"k": 1}, selective=compute_plan(tables, "f", ["C"]))
    # When the flow starts
    d.start()
    # Then A is not started: its earlier run counts as finished and B follows it at once
    assert [(s.name, s.parent) for s in d.starts()] == [("B", {"A": "old-a"})]
    assert d.notes("SELECTIVE_TASK_REUSE")[0].details == {"flow_name": "f", "dispatcher_id": "flow0",
                                                          "node_name": "A", "node_id": "old-a"}
    # And the selective function was asked with the flow, node, arguments and requested tasks
    assert engine_helpers.CALLS["reuse_from_table"][:2] == [("f", "A", {"k": 1}, ("C",)),
                                                            ("f", "B", {"k": 1}, ("C",))]
    d.succeed(d.one("B"))
    d.succeed(d.one("C"))
    assert d.succeeded.result["finished_nodes"] == {"A": ["old-a"], "B": ["n0"], "C": ["n1"]}


def test_a_requested_task_is_always_started(tables_from_yaml, drive):
    """
        (start) -> A -> B -> C        requested: B;  the function would reuse A and B
    """
    tables = tables_from_yaml(RERUN)
    engine_helpers.REUSE.update(A="old-a", B="old-b")
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["B"]))
    d.start()
    assert d.one("B").parent == {"A": "old-a"}
    assert [call[1] for call in engine_helpers.CALLS["reuse_from_table"]] == ["A"]


def test_reused_nodes_chain_and_pair_up_like_finished_ones(tables_from_yaml, drive):
    """
        (start) -> A;  [A, B] -> C (listed before A -> B);  A -> B        requested: C;  B reused
    """
    tables = tables_from_yaml("""
        tasks:
          - {name: B, import: nowhere, storage: Results,
             selective_run_function: {name: reuse_from_table, import: engine_helpers}}
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: [A, B], to: C}
              - {from: A, to: B}
    """)
    engine_helpers.REUSE["B"] = "old-b"
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["C"]))
    d.start()
    # When A finishes and B is reused
    d.succeed(d.one("A"))
    # Then the join sees both: the reused B pairs with the A that led to it
    assert d.one("C").parent == {"A": "n0", "B": "old-b"}


def test_a_long_chain_of_reused_tasks_needs_no_deep_recursion(tables_from_yaml, drive):
    """
        (start) -> T0 -> T1 -> ... -> T399 -> Goal        requested: Goal; every T reused
    """
    count = 400
    lines = ["tasks:"] + [f"  - {{name: T{i}, import: nowhere, selective_run_function: "
                          f"{{name: reuse_from_table, import: engine_helpers}}}}" for i in range(count)]
    lines += ["flow-definitions:", "  - name: f", "    edges:", "      - {from: , to: T0}"]
    lines += [f"      - {{from: T{i}, to: T{i + 1}}}" for i in range(count - 1)]
    lines += [f"      - {{from: T{count - 1}, to: Goal}}"]
    tables = tables_from_yaml("\n".join(lines))
    engine_helpers.REUSE.update({f"T{i}": f"old{i}" for i in range(count)})
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["Goal"]))
    d.start()
    assert d.one("Goal").parent == {f"T{count - 1}": f"old{count - 1}"}


def test_a_raising_selective_function_fails_the_flow(tables_from_yaml, drive):
    """
        (start) -> A -> B        requested: B;  A's selective function raises
    """
    tables = tables_from_yaml("""
        tasks:
          - {name: A, import: nowhere, selective_run_function: {name: broken_selective, import: engine_helpers}}
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: B}
    """)
    d = drive(tables, "f", selective=compute_plan(tables, "f", ["B"]))
    d.start()
    assert d.starts() == []
    assert "selective run function engine_helpers:broken_selective" in d.failed.reason
    assert "RuntimeError: selective function exploded" in d.failed.reason


def test_a_sub_flow_inherits_the_plan_when_the_plan_reaches_into_it(tables_from_yaml, drive):
    """
        f: (start) -> A -> sub -> Z;  A -> other        sub: (start) -> X -> [Y, W]
        requested: Y with follow_subflows
    """
    tables = tables_from_yaml(SUBFLOWS)
    plan = compute_plan(tables, "f", ["Y"], follow_subflows=True)
    d = drive(tables, "f", selective=plan)
    d.start()
    d.succeed(d.one("A"))
    # Then sub starts with the same plan, and other (not on the path) does not start
    assert d.starts() == [StartFlow(node_id="n1", name="sub", parent_flow_id="flow0", node_args=None, parent={},
                                    selective=plan)]
    # And inside sub only the path to Y runs
    child = drive(tables, "sub", selective=plan, flow_id="n1")
    child.start()
    child.succeed(child.one("X"))
    assert child.started_names() == ["Y"]


def test_a_sub_flow_the_plan_does_not_reach_runs_whole(tables_from_yaml, drive):
    """
        f: (start) -> [A, other];  [A, other] -> Goal        other: (start) -> Q -> R
        requested: Goal (without follow_subflows: the plan has no entry for other)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, other]}
              - {from: [A, other], to: Goal}
          - name: other
            edges:
              - {from: , to: Q}
              - {from: Q, to: R}
    """)
    plan = compute_plan(tables, "f", ["Goal"])
    d = drive(tables, "f", selective=plan)
    d.start()
    # Then other starts without a plan (Selinon passed the plan down and crashed on the missing key)
    assert d.one("other").selective is None
    child = drive(tables, "other", selective=d.one("other").selective, flow_id="n1")
    child.start()
    child.succeed("n0")
    assert child.started_names() == ["R"]


def test_an_edge_level_selective_computes_a_fresh_plan_for_the_child(tables_from_yaml, drive):
    """
        f:   (start) -> A -[selective: Y]-> sub
        sub: (start) -> X -> [Y, W]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: sub, selective: {tasks: [Y]}}
          - name: sub
            edges:
              - {from: , to: X}
              - {from: X, to: Y}
              - {from: X, to: W}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    assert d.one("sub").selective == compute_plan(tables, "sub", ["Y"])


def test_an_edge_level_selective_without_a_path_fails_the_flow_instead_of_crashing(tables_from_yaml, drive):
    """
        f:   (start) -> A -[selective: A (not in sub)]-> sub
        sub: (start) -> X
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: sub, selective: {tasks: [A]}}
          - name: sub
            edges:
              - {from: , to: X}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0")
    assert d.starts() == []
    assert "no path to node 'A' in flow 'sub'" in d.failed.reason


def test_a_retried_flow_keeps_its_plan(tables_from_yaml, drive):
    """
        (start) -> A -> [B, C]        requested: B;  max_retry: 1
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            max_retry: 1
            edges:
              - {from: , to: A}
              - {from: A, to: [B, C]}
    """)
    plan = compute_plan(tables, "f", ["B"])
    d = drive(tables, "f", selective=plan)
    d.start()
    d.fail("n0")
    d.start()
    d.succeed(d.one("A"))
    assert d.started_names() == ["B"] and d.state.selective == plan
