"""Tests for selflow.codegen.plot: the drawing of flows, style files and output formats.

The system under test (flow ``ingest``; ``enrich_each`` is a sub-flow)::

    (start) -> Fetch --[field_exists]--> Parse --[foreach split_items]--> enrich_each
    Parse + enrich_each --(join)--> Score --[field_greater and not field_equal]--> Report, Notify
    Fetch, Parse ~~ Redis        Score (read-only), Report ~~ Postgres
    failures: Fetch => Cleanup;  Report + Notify => True;  Score --[field_exists]--> Notify
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from selflow.codegen.model import (
    AllOf,
    CacheSpec,
    EdgeSpec,
    FailureSpec,
    FlowSpec,
    ForeachSpec,
    ImportRef,
    Negation,
    PredicateLeaf,
    StorageSpec,
    SystemSpec,
    TaskSpec,
    condition_str,
)
from selflow.codegen.plot import DEFAULT_STYLE, PlotError, flow_graph, load_style, merge_style, plot_system
from selflow.errors import ConfigError, SelflowError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' binary is not installed")


def leaf(name: str, node: str | None = None, **args: object) -> PredicateLeaf:
    return PredicateLeaf(ImportRef("selflow.predicates", name), node, tuple(sorted(args.items())),
                         node is not None, False)


SCORE_OK = AllOf((leaf("field_greater", "Score", key="score", value=0.5),
                  Negation(leaf("field_equal", "Score", key="status", value="skip"))))


def make_system() -> SystemSpec:
    """A hand-built system with every element the plot draws (the loader is tested elsewhere)."""
    lru = CacheSpec(ImportRef("selflow.caches", "LRU"))
    tasks = (
        TaskSpec("Fetch", ImportRef("demo.tasks", "Fetch"), storage="Redis"),
        TaskSpec("Parse", ImportRef("demo.tasks", "Parse"), storage="Redis"),
        TaskSpec("Enrich", ImportRef("demo.tasks", "Enrich")),
        TaskSpec("Score", ImportRef("demo.tasks", "Score"), storage="Postgres", storage_readonly=True),
        TaskSpec("Report", ImportRef("demo.tasks", "Report"), storage="Postgres"),
        TaskSpec("Notify", ImportRef("demo.tasks", "Notify")),
        TaskSpec("Cleanup", ImportRef("demo.tasks", "Cleanup")),
    )
    storages = (
        StorageSpec("Redis", ImportRef("selflow.storage", "RedisStorage"), {}, lru),
        StorageSpec("Postgres", ImportRef("selflow.storage", "SqlStorage"), {}, lru),
    )
    ingest = FlowSpec("ingest", edges=(
        EdgeSpec("e0", (), ("Fetch",)),
        EdgeSpec("e1", ("Fetch",), ("Parse",), condition=leaf("field_exists", "Fetch", key="body")),
        EdgeSpec("e2", ("Parse",), ("enrich_each",),
                 foreach=ForeachSpec(ImportRef("demo.foreach", "split_items"), propagate_result=True)),
        EdgeSpec("e3", ("Parse", "enrich_each"), ("Score",)),
        EdgeSpec("e4", ("Score",), ("Report", "Notify"), condition=SCORE_OK),
    ), failures=(
        FailureSpec(("Fetch",), ("Cleanup",)),
        FailureSpec(("Report", "Notify"), None),
        FailureSpec(("Score",), ("Notify",), condition=leaf("field_exists", "Score", key="partial")),
    ))
    enrich = FlowSpec("enrich_each", edges=(EdgeSpec("f0", (), ("Enrich",)),))
    return SystemSpec(tasks=tasks, flows=(ingest, enrich), storages=storages)


@pytest.fixture
def system() -> SystemSpec:
    return make_system()


@pytest.fixture
def source(system: SystemSpec) -> str:
    return flow_graph(system, "ingest").source


def node_line(source: str, node_id: str) -> str:
    """The one statement declaring ``node_id``."""
    found = [ln.strip() for ln in source.splitlines() if re.match(rf"\s*{re.escape(node_id)} \[", ln)]
    assert len(found) == 1, f"{node_id!r} declared {len(found)} times in:\n{source}"
    return found[0]


def edge_line(source: str, tail: str, head: str) -> str:
    found = [ln.strip() for ln in source.splitlines() if ln.strip().startswith(f"{tail} -> {head} ")]
    assert len(found) == 1, f"edge {tail} -> {head} found {len(found)} times in:\n{source}"
    return found[0]


def edges_of(source: str) -> set[tuple[str, str]]:
    return {(m[1], m[2]) for m in re.finditer(r"^\s*(\S+) -> (\S+) \[", source, re.MULTILINE)}


# --- shapes and visual language ---------------------------------------------------------


def test_tasks_are_rounded_boxes(source: str) -> None:
    # Given the ingest flow / When it is drawn / Then each task is a rounded, unfilled box
    for task in ("Fetch", "Parse", "Score", "Report", "Notify", "Cleanup"):
        line = node_line(source, f"node_{task}")
        assert "shape=box" in line and re.search(r"style=rounded[ \]]", line) and "filled" not in line
        assert f"label={task} " in line


def test_subflow_is_filled_grey(source: str) -> None:
    line = node_line(source, "node_enrich_each")
    assert 'style="rounded,filled"' in line
    assert "fillcolor=grey80" in line


def test_condition_is_an_octagon_between_sources_and_destinations(source: str) -> None:
    # Then the Score edge's condition is its own node, labelled with condition_str
    line = node_line(source, "edge4_cond")
    assert "shape=octagon" in line
    assert "field_greater(message=Score, key='score', value=0.5)" in line
    assert "not field_equal(message=Score, key='status', value='skip')" in line
    assert ("node_Score", "edge4_cond") in edges_of(source)
    assert {("edge4_cond", "node_Report"), ("edge4_cond", "node_Notify")} <= edges_of(source)
    assert ("node_Score", "node_Report") not in edges_of(source)


def test_short_condition_label_is_condition_str_verbatim(source: str) -> None:
    expected = condition_str(leaf("field_exists", "Fetch", key="body"))
    assert f'label="{expected}"' in node_line(source, "edge1_cond")


def test_foreach_is_a_double_octagon_showing_the_function(source: str) -> None:
    line = node_line(source, "edge2_foreach")
    assert "shape=doubleoctagon" in line
    assert "demo.foreach:split_items" in line
    assert "propagate_result" in line
    assert {("node_Parse", "edge2_foreach"), ("edge2_foreach", "node_enrich_each")} <= edges_of(source)


def test_foreach_with_condition_shows_both() -> None:
    flow = FlowSpec("f", edges=(EdgeSpec("e", ("A",), ("B",), condition=leaf("is_ok", "A"),
                                         foreach=ForeachSpec(ImportRef("m", "items"))),))
    system = SystemSpec(tasks=(TaskSpec("A", ImportRef("t", "A")), TaskSpec("B", ImportRef("t", "B"))),
                        flows=(flow,))
    line = node_line(flow_graph(system, "f").source, "edge0_foreach")
    assert "shape=doubleoctagon" in line
    assert "foreach m:items" in line and "is_ok(message=A)" in line
    assert "propagate_result" not in line


def test_start_point_leads_to_starting_nodes(source: str) -> None:
    assert "shape=circle" in node_line(source, "start")
    assert ("start", "node_Fetch") in edges_of(source)
    assert not any(tail == "start" and head != "node_Fetch" for tail, head in edges_of(source))


def test_plain_edge_goes_straight_and_multi_source_edge_meets_at_a_join(system: SystemSpec) -> None:
    flow = FlowSpec("f", edges=(EdgeSpec("e0", ("A",), ("B",)), EdgeSpec("e1", ("A", "B"), ("C",))))
    system = SystemSpec(tasks=tuple(TaskSpec(n, ImportRef("t", n)) for n in "ABC"), flows=(flow,))
    source = flow_graph(system, "f").source
    assert ("node_A", "node_B") in edges_of(source)
    assert "shape=point" in node_line(source, "edge1_join")
    assert {("node_A", "edge1_join"), ("node_B", "edge1_join"), ("edge1_join", "node_C")} <= edges_of(source)
    assert "arrowhead=none" in edge_line(source, "node_A", "edge1_join")
    assert "start" not in {tail for tail, _ in edges_of(source)}


def test_storages_are_cylinders_on_dashed_edges(source: str) -> None:
    for storage in ("Redis", "Postgres"):
        assert "shape=cylinder" in node_line(source, f"storage_{storage}")
    for task, storage in (("Fetch", "Redis"), ("Parse", "Redis"), ("Score", "Postgres"), ("Report", "Postgres")):
        assert "style=dashed" in edge_line(source, f"node_{task}", f"storage_{storage}")
    assert 'label="read-only"' in edge_line(source, "node_Score", "storage_Postgres")
    assert "label" not in edge_line(source, "node_Report", "storage_Postgres")
    # Notify has no storage, so no dashed edge leaves it
    assert not any(t == "node_Notify" and h.startswith("storage_") for t, h in edges_of(source))


def test_storage_not_used_in_flow_is_not_drawn(system: SystemSpec) -> None:
    source = flow_graph(system, "enrich_each").source
    assert "cylinder" not in source and "storage_" not in source


def test_fallback_edges_are_red(source: str) -> None:
    # Fetch => Cleanup: straight red edge
    assert "color=red" in edge_line(source, "node_Fetch", "node_Cleanup")
    # Score --[field_exists]--> Notify: through a condition node, both halves red
    assert "shape=octagon" in node_line(source, "failure2_cond")
    assert "field_exists(message=Score, key='partial')" in node_line(source, "failure2_cond")
    assert "color=red" in edge_line(source, "node_Score", "failure2_cond")
    assert "color=red" in edge_line(source, "failure2_cond", "node_Notify")
    # normal edges are not red
    assert "red" not in edge_line(source, "node_Score", "edge4_cond")


def test_fallback_true_is_a_true_node(source: str) -> None:
    assert "label=True" in node_line(source, "failure1_true")
    # Report and Notify must both fail: they meet at a join, then a red edge to "True"
    for tail, head in (("node_Report", "failure1_join"), ("node_Notify", "failure1_join"),
                       ("failure1_join", "failure1_true")):
        assert "color=red" in edge_line(source, tail, head)


def test_every_flow_node_is_declared_once(system: SystemSpec, source: str) -> None:
    flow = system.flow("ingest")
    assert flow is not None
    for name in flow.nodes:
        node_line(source, f"node_{name}")


def test_odd_names_and_labels_are_escaped_and_render(tmp_path) -> None:
    # Given a node name with a colon (a port separator in dot) and a label with quotes/backslashes
    odd = "ns:Task one"
    cond = leaf("matches", "A", pattern='a"b\\d')
    flow = FlowSpec("f", edges=(EdgeSpec("e", ("A",), (odd,), condition=cond),))
    system = SystemSpec(tasks=(TaskSpec("A", ImportRef("t", "A")), TaskSpec(odd, ImportRef("t", "B"))),
                        flows=(flow,))
    source = flow_graph(system, "f").source
    # Then the id is a stable hash and the label keeps the name
    assert re.search(r"node_h[0-9a-f]{12} \[label=\"ns:Task one\"", source)
    assert source == flow_graph(system, "f").source
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", os.devnull], input=source.encode(), check=True)


def test_unknown_flow_suggests_a_name(system: SystemSpec) -> None:
    with pytest.raises(PlotError, match=r"unknown flow 'ingets' \(did you mean 'ingest'\?\)"):
        flow_graph(system, "ingets")
    with pytest.raises(PlotError, match=r"did you mean 'ingest'"):
        plot_system(system, flows=["ingets"], fmt="dot", output_dir="/nonexistent-never-written")


def test_plot_error_is_a_selflow_error() -> None:
    assert issubclass(PlotError, SelflowError)


# --- determinism ------------------------------------------------------------------------


def test_same_input_gives_identical_source() -> None:
    assert flow_graph(make_system(), "ingest").source == flow_graph(make_system(), "ingest").source


def test_source_does_not_depend_on_hash_seed() -> None:
    # Given two interpreters with different string-hash seeds (frozenset order differs)
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{root!r}, {here!r}]
        import test_plot
        from selflow.codegen.plot import flow_graph
        sys.stdout.write(flow_graph(test_plot.make_system(), "ingest").source)
    """)
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    ]
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
    assert outputs[0] == flow_graph(make_system(), "ingest").source


def test_plot_module_does_not_import_celery() -> None:
    code = "import sys, selflow.codegen.plot; print('celery' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


# --- output formats ---------------------------------------------------------------------


@pytest.fixture
def no_dot_on_path(tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


def test_dot_format_works_without_graphviz_binary(system: SystemSpec, tmp_path, no_dot_on_path) -> None:
    out = tmp_path / "out"
    paths = plot_system(system, fmt="dot", output_dir=str(out))
    assert paths == sorted([str(out / "enrich_each.dot"), str(out / "ingest.dot")])
    assert (out / "ingest.dot").read_text() == flow_graph(system, "ingest").source


def test_png_without_binary_says_how_to_install(system: SystemSpec, tmp_path, no_dot_on_path) -> None:
    with pytest.raises(PlotError) as info:
        plot_system(system, fmt="png", output_dir=str(tmp_path))
    assert "apt-get install graphviz" in str(info.value)
    assert "--format dot" in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "empty-bin"]  # nothing half-written


@needs_dot
def test_png_is_rendered_with_binary(system: SystemSpec, tmp_path) -> None:
    paths = plot_system(system, flows=["ingest"], fmt="png", output_dir=str(tmp_path))
    assert paths == [str(tmp_path / "ingest.png")]
    data = (tmp_path / "ingest.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ingest.png"]  # no stray .gv files


@needs_dot
def test_svg_and_pdf_are_rendered(system: SystemSpec, tmp_path) -> None:
    plot_system(system, fmt="svg", output_dir=str(tmp_path))
    plot_system(system, flows=["enrich_each"], fmt="pdf", output_dir=str(tmp_path))
    svg = (tmp_path / "ingest.svg").read_text()
    assert "<svg" in svg and "enrich_each" in svg
    assert (tmp_path / "enrich_each.pdf").read_bytes().startswith(b"%PDF")


def test_unknown_format_is_rejected(system: SystemSpec, tmp_path) -> None:
    with pytest.raises(PlotError, match=r"unknown format 'sgv' \(did you mean 'svg'\?\)"):
        plot_system(system, fmt="sgv", output_dir=str(tmp_path))


def test_flows_subset_and_output_dir_created(system: SystemSpec, tmp_path) -> None:
    out = tmp_path / "a" / "b"
    assert plot_system(system, flows=["enrich_each"], fmt="dot", output_dir=str(out)) == [
        str(out / "enrich_each.dot")]
    assert sorted(p.name for p in out.iterdir()) == ["enrich_each.dot"]


# --- style ------------------------------------------------------------------------------


def test_default_style_has_the_documented_keys() -> None:
    assert set(DEFAULT_STYLE) == {"task", "flow", "condition", "condition_foreach", "storage", "edge",
                                  "store_edge", "graph", "fallback_edge", "fallback_true"}


def test_style_override_adds_to_defaults(system: SystemSpec) -> None:
    source = flow_graph(system, "ingest", {"task": {"color": "blue"}, "fallback_edge": {"color": "orange"}}).source
    line = node_line(source, "node_Fetch")
    assert "color=blue" in line and "shape=box" in line  # override kept the rest of the default
    assert "color=orange" in edge_line(source, "node_Fetch", "node_Cleanup")
    assert "red" not in edge_line(source, "node_Fetch", "node_Cleanup")
    assert "blue" not in node_line(source, "node_enrich_each")  # the flow style is untouched


def test_merge_style_rejects_unknown_key() -> None:
    with pytest.raises(PlotError, match=r"unknown style key 'tasks' \(did you mean 'task'\?\)"):
        merge_style({"tasks": {"color": "blue"}})


def test_load_style_reads_overrides(system: SystemSpec, tmp_path) -> None:
    path = tmp_path / "style.yml"
    path.write_text("style:\n  task:\n    color: blue\n    penwidth: 2\n  graph:\n    rankdir: LR\n"
                    "  storage:\n    fixedsize: true\n")
    style = load_style(str(path))
    assert style["task"]["color"] == "blue" and style["task"]["penwidth"] == "2"
    assert style["task"]["shape"] == "box"
    assert style["storage"]["fixedsize"] == "true"
    assert style["edge"] == DEFAULT_STYLE["edge"]
    source = flow_graph(system, "ingest", style).source
    assert "rankdir=LR" in source and "penwidth=2" in node_line(source, "node_Parse")


def test_style_errors_have_positions_and_hints(tmp_path) -> None:
    # Given a style file with three mistakes
    path = tmp_path / "style.yml"
    path.write_text(textwrap.dedent("""\
        style:
          tsk:
            color: blue
          edge: dashed
          storage:
            color: [red, blue]
    """))
    # When it is loaded / Then one ConfigError lists all of them, each with line:col
    with pytest.raises(ConfigError) as info:
        load_style(str(path))
    issues = {issue.key_path: issue for issue in info.value.issues}
    assert set(issues) == {"style.tsk", "style.edge", "style.storage.color"}
    assert (issues["style.tsk"].line, issues["style.tsk"].column) == (2, 3)
    assert "did you mean 'task'?" in issues["style.tsk"].message
    assert (issues["style.edge"].line, issues["style.edge"].column) == (4, 9)
    assert "mapping" in issues["style.edge"].message
    assert (issues["style.storage.color"].line, issues["style.storage.color"].column) == (6, 12)
    assert f"{path}:2:3: style.tsk: unknown style key" in str(info.value)


def test_style_file_must_have_style_section(tmp_path) -> None:
    path = tmp_path / "style.yml"
    path.write_text("styel:\n  task: {color: red}\n")
    with pytest.raises(ConfigError) as info:
        load_style(str(path))
    text = str(info.value)
    assert f"{path}:1:1: styel: unknown top-level key (did you mean 'style'?)" in text
    assert "missing the top-level 'style:' mapping" in text


@pytest.mark.parametrize("content", ["", "- a\n- b\n", "style: 3\n"])
def test_style_file_of_wrong_shape(tmp_path, content: str) -> None:
    path = tmp_path / "style.yml"
    path.write_text(content)
    with pytest.raises(ConfigError, match="mapping"):
        load_style(str(path))


def test_style_file_with_bad_yaml_has_position(tmp_path) -> None:
    path = tmp_path / "style.yml"
    path.write_text("style:\n  task:\n    color: [blue\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:\d+:\d+: invalid YAML"):
        load_style(str(path))
