"""Multi-source edges and cycles: an edge with several sources fires once per new combination of
finished source instances (never twice for one combination), and cycles multiply runs the way
Selinon's "cyclic diamond" does."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("order", [("n0", "n1"), ("n1", "n0")])
def test_fan_in_fires_once_when_every_source_has_finished(tables_from_yaml, drive, order):
    """
        (start) --> A --\\
        (start) --> B ---+--> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: [A, B], to: C}
    """)
    # Given A (n0) and B (n1) running
    d = drive(tables, "f")
    d.start()
    # When the first one finishes
    d.succeed(order[0])
    # Then C waits for the other
    assert d.starts() == []
    # When the second one finishes
    d.succeed(order[1])
    # Then C starts once, with both as parents
    assert d.one("C").parent == {"A": "n0", "B": "n1"}
    d.succeed("n2")
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0"], "B": ["n1"], "C": ["n2"]}


def test_fan_in_sources_reported_in_the_same_step_fire_once(tables_from_yaml, drive):
    """
        (start) --> [A, B];  [A, B] --> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - {from: [A, B], to: C}
    """)
    d = drive(tables, "f")
    d.start()
    # When A and B are reported together
    d.succeed("n0", "n1")
    # Then the combination (A, B) fires exactly once
    assert d.started_names() == ["C"]


def test_fan_in_fires_once_per_new_combination_of_instances(tables_from_yaml, drive):
    """
        (start) --> [A, A, B]          two instances of A: a1=n0, a2=n1; b=n2
        [A, B] --> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, A, B]}
              - {from: [A, B], to: C}
    """)
    d = drive(tables, "f")
    d.start()
    # When a1 finishes, then b, then a2
    d.succeed("n0")
    assert d.starts() == []
    d.succeed("n2")
    # Then b pairs with the finished a1
    assert [s.parent for s in d.starts()] == [{"A": "n0", "B": "n2"}]
    d.succeed("n1")
    # And a2 pairs with b: every combination once, never (a1, b) again
    assert [s.parent for s in d.starts()] == [{"A": "n1", "B": "n2"}]
    parents = [s.parent for s in d.starts("C", everything=True)]
    assert len(parents) == len({tuple(sorted(p.items())) for p in parents}) == 2


def test_a_false_combination_does_not_stop_the_others(tables_from_yaml, drive):
    """
        (start) --> [A, A, B];  [A, B] --[A.ok]--> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, A, B]}
              - from: [A, B]
                to: C
                condition: {name: fieldEqual, node: A, args: {key: ok, value: true}}
    """)
    d = drive(tables, "f")
    d.start()
    # Given a1 finished with ok=false and a2 with ok=true
    d.succeed("n0", result={"ok": False})
    d.succeed("n1", result={"ok": True})
    # When b finishes
    d.succeed("n2")
    # Then only (a2, b) passes; (a1, b) is traced as false
    assert [s.parent for s in d.starts()] == [{"A": "n1", "B": "n2"}]
    assert len(d.notes("EDGE_COND_FALSE")) == 1
    assert d.state.triggered_edges[tables.flows["f"].edges[1].id] == 1


def test_a_multi_source_condition_reads_the_named_source(tables_from_yaml, drive):
    """
        (start) --> [A, B];  [A, B] --[B.go]--> C
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, B]}
              - from: [A, B]
                to: C
                condition: {name: fieldEqual, node: B, args: {key: go, value: true}}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n0", result={"go": False})
    # When B finishes with go=true
    d.succeed("n1", result={"go": True})
    # Then the condition read B's result, not A's
    assert d.started_names() == ["C"]
    assert d.reads == ["n1"]


def test_cyclic_diamond_runs_the_join_once_per_combination(tables_from_yaml, drive):
    """
                  /--> B --\\
        (start) --> A        +--> D --[D.again]--> A   (back to the top)
                  \\--> C --/
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: [B, C]}
              - {from: [B, C], to: D}
              - from: D
                to: A
                condition: {name: fieldEqual, args: {key: again, value: true}}
    """)
    d = drive(tables, "f")
    d.start()
    # Given round one: A(n0) -> B(n1), C(n2) -> D(n3), and D asks for another round
    d.succeed("n0")
    d.succeed("n1")
    d.succeed("n2")
    assert d.one("D").node_id == "n3"
    d.succeed("n3", result={"again": True})
    d.succeed(d.one("A"))                       # A(n4) -> B(n5), C(n6)
    assert [(s.name, s.node_id) for s in d.starts()] == [("B", "n5"), ("C", "n6")]
    # When B finishes first in round two, it pairs with every finished C (only c1 so far)
    d.succeed("n5")
    assert [s.parent for s in d.starts()] == [{"B": "n5", "C": "n2"}]
    # And when C finishes, it pairs with every finished B (b1 and b2)
    d.succeed("n6")
    assert [s.parent for s in d.starts()] == [{"B": "n1", "C": "n6"}, {"B": "n5", "C": "n6"}]
    # Then, when every D says "stop", D has run 1 + 3 times and the flow ends
    for start in d.starts("D", everything=True)[1:]:
        d.succeed(start, result={"again": False})
    assert len(d.starts("D", everything=True)) == 4
    assert d.succeeded.result["finished_nodes"]["D"] == ["n3", "n7", "n8", "n9"]


def test_a_self_loop_repeats_until_its_condition_is_false(tables_from_yaml, drive):
    """
        (start) --> A --[A.more]--> A
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: A}
              - {from: A, to: A, condition: {name: fieldEqual, args: {key: more, value: true}}}
    """)
    d = drive(tables, "f")
    d.start()
    # When A asks for more twice, then stops
    d.succeed(d.one("A"), result={"more": True})
    d.succeed(d.one("A"), result={"more": True})
    assert d.one("A").parent == {"A": "n1"}
    d.succeed(d.one("A"), result={"more": False})
    # Then A ran three times, each with the previous run as parent, and the flow ended
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0", "n1", "n2"]}


def test_a_cycle_through_a_join_with_an_outside_source(tables_from_yaml, drive):
    """
        (start) --> [A, S];  [A, S] --> B;  B --[B.more]--> A
        S runs once; each new A pairs with it again
    """
    tables = tables_from_yaml("""
        flow-definitions:
          - name: f
            edges:
              - {from: , to: [A, S]}
              - {from: [A, S], to: B}
              - {from: B, to: A, condition: {name: fieldEqual, args: {key: more, value: true}}}
    """)
    d = drive(tables, "f")
    d.start()
    d.succeed("n1")            # S
    d.succeed("n0")            # A -> B(n2)
    d.succeed("n2", result={"more": True})      # -> A(n3)
    d.succeed("n3")            # A2 pairs with S again -> B(n4)
    assert d.one("B").parent == {"A": "n3", "S": "n1"}
    d.succeed("n4", result={"more": False})
    assert d.succeeded.result["finished_nodes"] == {"A": ["n0", "n3"], "B": ["n2", "n4"], "S": ["n1"]}
