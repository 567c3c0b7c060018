"""node_args_from_first: the result of the flow's first task becomes the flow's arguments for
everything that follows (tasks, conditions, sub-flows with propagate_node_args); a retry starts
again from the original arguments."""

from __future__ import annotations

import engine_helpers
from selflow.dispatcher.selective import compute_plan

FLOW = """
    flow-definitions:
      - name: f
        node_args_from_first: true
        propagate_node_args: child
        {extra}
        edges:
          - {{from: , to: First}}
          - from: First
            to: [B, child]
          - from: B
            to: C
            condition: {{name: argsFieldEqual, args: {{key: go, value: true}}}}
      - name: child
        edges:
          - {{from: , to: T}}
"""


def test_the_first_result_becomes_the_flow_arguments(tables_from_yaml, drive):
    """
        (start) --> First --> [B, child];  B --[node_args.go]--> C
        node_args_from_first, propagate_node_args: child
    """
    tables = tables_from_yaml(FLOW.format(extra=""))
    # Given a flow started with some arguments
    d = drive(tables, "f", {"url": "x"})
    d.start()
    assert d.one("First").node_args == {"url": "x"}
    # When the first task returns a result
    d.succeed("n0", result={"go": True, "doc": 1})
    # Then that result is the flow's arguments for the tasks and sub-flows that follow
    assert [(s.name, s.node_args) for s in d.starts()] == [("B", {"go": True, "doc": 1}),
                                                           ("child", {"go": True, "doc": 1})]
    assert d.state.node_args == {"go": True, "doc": 1}
    # And for the conditions of later edges
    d.succeed("n1", result={"go": False})
    assert d.one("C").node_args == {"go": True, "doc": 1}


def test_only_the_first_result_replaces_the_arguments(tables_from_yaml, drive):
    """
        (start) --> First --> [B, child];  B --> C
    """
    tables = tables_from_yaml(FLOW.format(extra=""))
    d = drive(tables, "f", {"url": "x"})
    d.start()
    d.succeed("n0", result={"go": True})
    d.succeed("n1", result={"go": "B's result"})
    d.succeed(d.one("C"), result="C's result")
    assert d.state.node_args == {"go": True}
    assert d.reads.count("n0") == 1


def test_a_retried_flow_starts_again_from_the_original_arguments(tables_from_yaml, drive):
    """
        (start) --> First --> [B, child]        max_retry: 1
    """
    tables = tables_from_yaml(FLOW.format(extra="max_retry: 1"))
    d = drive(tables, "f", {"url": "x"})
    d.start()
    d.succeed("n0", result={"go": False})
    d.fail("n1")
    d.succeed("n2")
    # When the flow restarts after B failed
    d.start()
    # Then First gets the original arguments again, and its new result replaces them again
    assert d.one("First").node_args == {"url": "x"}
    d.succeed(d.one("First"), result={"go": "again"})
    assert d.one("B").node_args == {"go": "again"}


def test_a_fallback_standing_in_for_the_first_task_provides_the_arguments(tables_from_yaml, drive):
    """
        (start) --> First --> B        failures: First -> Mirror;  Mirror --> B
        (as in Selinon: the first node to finish, with nothing finished before, sets the arguments)
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            node_args_from_first: true
            edges:
              - {from: , to: First}
              - {from: First, to: B}
              - {from: Mirror, to: B}
            failures:
              - {nodes: First, fallback: Mirror}
    """)
    d = drive(tables, "f", {"url": "x"})
    d.start()
    d.fail("n0")
    assert d.one("Mirror").node_args == {"url": "x"}
    d.succeed("n1", result={"mirrored": True})
    assert d.one("B").node_args == {"mirrored": True}


def test_a_reused_first_task_provides_the_arguments(tables_from_yaml, drive):
    """
        (start) --> First --> B        selective run of B; First reuses run "old"
    """
    tables = tables_from_yaml("""
        tasks:
          - {name: First, import: nowhere, storage: Results,
             selective_run_function: {name: reuse_from_table, import: engine_helpers}}
        flow-definitions:
          - name: f
            node_args_from_first: true
            edges:
              - {from: , to: First}
              - {from: First, to: B}
    """)
    engine_helpers.REUSE["First"] = "old"
    d = drive(tables, "f", {"url": "x"}, selective=compute_plan(tables, "f", ["B"]), results={"old": {"kept": 1}})
    d.start()
    assert d.one("B").node_args == {"kept": 1}
