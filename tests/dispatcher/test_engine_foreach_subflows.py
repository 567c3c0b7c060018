"""foreach edges, sub-flows, and what travels between flows: node_args (propagate_node_args,
foreach propagate_result), parent (propagate_parent) and finished nodes (propagate_finished nested,
propagate_compound_finished flattened)."""

from __future__ import annotations

import pytest

from selflow.dispatcher.records import StartFlow, StartTask

# --- foreach ---------------------------------------------------------------------------


def test_foreach_starts_each_destination_once_per_item(tables_from_yaml, drive):
    """
        (start) --> Split --foreach item in Split.items--> [Work, Log]
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: Split}
              - from: Split
                to: [Work, Log]
                foreach: {function: items_from_parent, import: engine_helpers}
    """)
    # Given Split returns three items
    d = drive(tables, "f", {"run": 1})
    d.start()
    d.succeed("n0", result={"items": ["a", "b", "c"]})
    # Then every destination starts once per item, item by item; tasks keep the flow arguments
    assert d.started_names() == ["Work", "Log"] * 3
    assert all(isinstance(s, StartTask) and s.node_args == {"run": 1} and s.parent == {"Split": "n0"}
               for s in d.starts())
    assert [n.details["count"] for n in d.notes("FOREACH_RESULT")] == [3]
    # When all finish, the flow ends
    d.succeed(*d.starts())
    assert d.succeeded.result["finished_nodes"]["Work"] == ["n1", "n3", "n5"]


@pytest.mark.parametrize("items", [[], None, ()])
def test_foreach_with_no_items_starts_nothing(tables_from_yaml, drive, items):
    """
        (start) --foreach item in node_args.items--> Work
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - from:
                to: Work
                foreach: {function: items_from_args, import: engine_helpers}
    """)
    # Given no items
    d = drive(tables, "f", {"items": items})
    # When the flow starts
    d.start()
    # Then nothing starts and the flow ends at once
    assert d.starts() == []
    assert d.succeeded.result == {"finished_nodes": {}, "failed_nodes": {}}
    assert [n.details["count"] for n in d.notes("FOREACH_RESULT")] == [0]


def test_foreach_accepts_any_iterable(tables_from_yaml, drive):
    """
        (start) --foreach i in range(node_args.count)--> Work
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - from:
                to: Work
                foreach: {function: count_from_args, import: engine_helpers}
    """)
    d = drive(tables, "f", {"count": 4})
    d.start()
    assert d.started_names() == ["Work"] * 4


def test_foreach_propagate_result_gives_each_item_to_its_sub_flow(tables_from_yaml, drive):
    """
        (start) --foreach item in node_args.items (propagate_result)--> child
        child: (start) --> T
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - from:
                to: child
                foreach: {function: items_from_args, import: engine_helpers, propagate_result: true}
          - name: child
            edges:
              - {from: , to: T}
    """)
    # Given two items
    d = drive(tables, "f", {"items": [{"id": 1}, {"id": 2}]})
    # When the flow starts
    d.start()
    # Then each child flow gets its item as node_args, reports back to this flow, and gets no parent
    assert d.starts() == [
        StartFlow(node_id="n0", name="child", parent_flow_id="flow0", node_args={"id": 1}, parent={}),
        StartFlow(node_id="n1", name="child", parent_flow_id="flow0", node_args={"id": 2}, parent={}),
    ]
    d.succeed("n0", "n1", result={"finished_nodes": {"T": ["x"]}, "failed_nodes": {}})
    assert d.succeeded.result["finished_nodes"] == {"child": ["n0", "n1"]}


def test_foreach_without_propagate_result_gives_sub_flows_the_usual_arguments(tables_from_yaml, drive):
    """
        (start) --foreach item in node_args.items--> [plain, withargs]   (propagate_node_args: withargs)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            propagate_node_args: withargs
            edges:
              - from:
                to: [plain, withargs]
                foreach: {function: items_from_args, import: engine_helpers}
          - name: plain
            edges:
              - {from: , to: T}
          - name: withargs
            edges:
              - {from: , to: T}
    """)
    args = {"items": [1]}
    d = drive(tables, "f", args)
    d.start()
    assert [(s.name, s.node_args) for s in d.starts()] == [("plain", None), ("withargs", args)]


@pytest.mark.parametrize("function, message", [("broken_foreach", "RuntimeError: foreach exploded"),
                                               ("not_iterable", "TypeError")])
def test_a_broken_foreach_function_fails_the_flow_with_a_clear_reason(tables_from_yaml, drive, function, message):
    """
        (start) --> A --foreach <broken>--> B
    """
    tables = tables_from_yaml(f"""
        flow-definitions:
          - name: f
            edges:
              - {{from: , to: A}}
              - from: A
                to: B
                foreach: {{function: {function}, import: engine_helpers}}
    """)
    d = drive(tables, "f")
    d.start()
    # When A finishes and the foreach function raises (or returns a non-iterable)
    d.succeed("n0")
    # Then the flow fails, and the reason names the function, the edge and the error
    assert d.failed is not None
    assert f"engine_helpers:{function}" in d.failed.reason and message in d.failed.reason
    assert tables.flows["f"].edges[1].id in d.failed.reason
    assert d.failed.result == {"finished_nodes": {"A": ["n0"]}, "failed_nodes": {}}


# --- sub-flows: node_args and parent ------------------------------------------------------


SUBFLOWS = """
    flow-definitions:
      - name: f
        {flags}
        edges:
          - {{from: , to: A}}
          - {{from: A, to: [plain, child]}}
      - name: plain
        edges:
          - {{from: , to: T}}
      - name: child
        edges:
          - {{from: , to: T}}
"""


def test_sub_flows_get_neither_arguments_nor_parent_by_default(tables_from_yaml, drive):
    """
        (start) --> A --> [plain, child]
    """
    tables = tables_from_yaml(SUBFLOWS.format(flags=""))
    d = drive(tables, "f", {"x": 1})
    d.start()
    d.succeed("n0")
    assert [(s.name, s.node_args, s.parent, s.selective) for s in d.starts()] == \
        [("plain", None, {}, None), ("child", None, {}, None)]


def test_propagate_node_args_and_propagate_parent_cover_only_the_listed_sub_flows(tables_from_yaml, drive):
    """
        (start) --> A --> [plain, child]        propagate_node_args: child, propagate_parent: child
    """
    tables = tables_from_yaml(SUBFLOWS.format(flags="propagate_node_args: child\n        propagate_parent: [child]"))
    d = drive(tables, "f", {"x": 1})
    d.start()
    d.succeed("n0")
    assert [(s.name, s.node_args, s.parent) for s in d.starts()] == \
        [("plain", None, {}), ("child", {"x": 1}, {"A": "n0"})]


def test_propagate_true_covers_every_sub_flow(tables_from_yaml, drive):
    """
        (start) --> A --> [plain, child]        propagate_node_args: true, propagate_parent: true
    """
    tables = tables_from_yaml(SUBFLOWS.format(flags="propagate_node_args: true\n        propagate_parent: true"))
    d = drive(tables, "f", {"x": 1})
    d.start()
    d.succeed("n0")
    assert [(s.name, s.node_args, s.parent) for s in d.starts()] == \
        [("plain", {"x": 1}, {"A": "n0"}), ("child", {"x": 1}, {"A": "n0"})]


def test_a_finished_sub_flow_fires_its_edges_without_reading_its_result(tables_from_yaml, drive):
    """
        (start) --> child --> After ;   [child, T] --> Join      (no propagate_finished)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [child, T]}
              - {from: child, to: After}
              - {from: [child, T], to: Join}
          - name: child
            edges:
              - {from: , to: X}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n1")
    # When the sub-flow reports success
    d.succeed("n0", result={"finished_nodes": {"X": ["x1"]}, "failed_nodes": {}})
    # Then its edges fire; the sub-flow adds nothing to the parent and its result was not read
    assert [(s.name, s.parent) for s in d.starts()] == [("After", {}), ("Join", {"T": "n1"})]
    assert d.reads == []


# --- propagate_finished / propagate_compound_finished -------------------------------------


NESTED = """
    flow-definitions:
      - name: f
        {flag}: mid
        edges:
          - {{from: , to: mid}}
          - {{from: mid, to: Next}}
      - name: mid
        edges:
          - {{from: , to: [T, inner]}}
      - name: inner
        edges:
          - {{from: , to: [U, deeper]}}
      - name: deeper
        edges:
          - {{from: , to: V}}
"""

#: flow results as a runtime would store them: mid ran T and two inner flows, each with a deeper one
NESTED_RESULTS = {
    "n0": {"finished_nodes": {"T": ["t1"], "inner": ["i1", "i2"]}, "failed_nodes": {}},
    "i1": {"finished_nodes": {"U": ["u1"], "deeper": ["d1"]}, "failed_nodes": {}},
    "i2": {"finished_nodes": {"U": ["u2"], "T": ["t2"], "deeper": ["d2"]}, "failed_nodes": {}},
    "d1": {"finished_nodes": {"V": ["v1"]}, "failed_nodes": {}},
    "d2": {"finished_nodes": {"V": ["v2"], "T": ["t3"]}, "failed_nodes": {}},
}


def test_propagate_finished_gives_the_next_node_the_sub_flow_nodes_nested(tables_from_yaml, drive):
    """
        f:      (start) --> mid --> Next          propagate_finished: mid
        mid:    (start) --> [T, inner]            (inner runs twice in this test)
        inner:  (start) --> [U, deeper]
        deeper: (start) --> V
    """
    tables = tables_from_yaml(NESTED.format(flag="propagate_finished"))
    # Given mid ran T and two inner flows, each with its own deeper flow
    d = drive(tables, "f", results=NESTED_RESULTS)
    d.start()
    # When mid reports success
    d.succeed("n0")
    # Then Next sees mid's finished nodes, nested by sub-flow, instances of one flow merged all the
    # way down
    assert d.one("Next").parent == {"mid": {
        "T": ["t1"],
        "inner": {"U": ["u1", "u2"], "T": ["t2"], "deeper": {"V": ["v1", "v2"], "T": ["t3"]}},
    }}


def test_propagate_compound_finished_flattens_every_task_below_the_sub_flow(tables_from_yaml, drive):
    """
        same flows as above, with propagate_compound_finished: mid
    """
    tables = tables_from_yaml(NESTED.format(flag="propagate_compound_finished"))
    d = drive(tables, "f", results=NESTED_RESULTS)
    d.start()
    d.succeed("n0")
    # Then same-named tasks from every level are merged into one list
    parent = d.one("Next").parent
    assert {k: sorted(v) for k, v in parent["mid"].items()} == \
        {"T": ["t1", "t2", "t3"], "U": ["u1", "u2"], "V": ["v1", "v2"]}
    assert set(parent) == {"mid"}


def test_propagated_finished_nodes_reach_a_sub_flow_through_propagate_parent(tables_from_yaml, drive):
    """
        f:     (start) --> [mid, A];  [mid, A] --> child     propagate_finished: mid, propagate_parent: child
        mid:   (start) --> T
        child: (start) --> X
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            propagate_finished: mid
            propagate_parent: child
            edges:
              - {from: , to: [mid, A]}
              - {from: [mid, A], to: child}
          - name: mid
            edges:
              - {from: , to: T}
          - name: child
            edges:
              - {from: , to: X}
    """)
    d = drive(tables, "f", results={"n0": {"finished_nodes": {"T": ["t1"]}, "failed_nodes": {"Z": ["z"]}}})
    d.start()
    d.succeed("n1")
    d.succeed("n0")
    # Then the child flow receives the task id and the sub-flow's finished (not failed) nodes
    assert d.one("child").parent == {"A": "n1", "mid": {"T": ["t1"]}}
