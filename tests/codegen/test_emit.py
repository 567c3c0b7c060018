"""Tests for emit (model -> tables module source) and compiled (source -> SystemTables).

Golden files: ``tests/codegen/golden/<name>.py`` hold the exact output of ``emit_module`` for the
systems in ``GOLDEN``. After an intended change to the output (or a selflow version bump, which
is in the header), regenerate them and review the diff like any code change:

    SELFLOW_UPDATE_GOLDEN=1 python -m pytest tests/codegen/test_emit.py -k golden

Systems are built directly as model objects here, independent of the YAML loader.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import selflow
from selflow.codegen import emit as emit_mod
from selflow.codegen.compiled import TablesError, compile_tables, load_tables
from selflow.codegen.emit import EmitError, emit_module
from selflow.codegen.model import (
    PROPAGATE_FLAGS,
    AllOf,
    AnyOf,
    CacheSpec,
    Condition,
    EdgeSpec,
    FailureSpec,
    FlowSpec,
    ForeachSpec,
    GlobalSpec,
    ImportRef,
    Negation,
    PredicateLeaf,
    SamplingSpec,
    SelectiveSpec,
    StorageSpec,
    SystemSpec,
    TaskSpec,
    TraceSpec,
    condition_str,
    edge_id,
)
from selflow.errors import SelflowError
from selflow.tables import EdgeTable, FallbackTable, FlowTable, SystemTables

HERE = Path(__file__).parent
GOLDEN_DIR = HERE / "golden"
FIXTURES = HERE / "fixtures"
REPO_ROOT = HERE.parent.parent
#: The fixture predicates module, used wherever emitted conditions are actually run.
TEST_PREDICATES = "emit_predicates"


@pytest.fixture(scope="module", autouse=True)
def fixture_predicates_on_path():
    """Module scope (not monkeypatch) so that hypothesis tests can use it too."""
    sys.path.insert(0, str(FIXTURES))
    yield
    sys.path.remove(str(FIXTURES))


class Results:
    """The least a condition may rely on: ``.get(node_name)``."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def get(self, name: str) -> Any:
        return self.values.get(name)


# --- building systems -----------------------------------------------------------------------


def edge(flow: str, src: tuple[str, ...], dst: tuple[str, ...], condition: Condition | None = None,
         foreach: ForeachSpec | None = None, selective: SelectiveSpec | None = None) -> EdgeSpec:
    return EdgeSpec(edge_id(flow, src, dst, condition, foreach, selective), src, dst, condition, foreach, selective)


def leaf(module: str, name: str, node: str | None = None, *, message: bool = False, node_args: bool = False,
         **args: Any) -> PredicateLeaf:
    return PredicateLeaf(ImportRef(module, name), node, tuple(args.items()), message, node_args)


def task(name: str, **options: Any) -> TaskSpec:
    return TaskSpec(name, ImportRef("myapp.tasks", name), **options)


def input_hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def linear_system() -> SystemSpec:
    # Task1 -> Task2 -> Task3
    return SystemSpec(
        tasks=(task("Task1"), task("Task2"), task("Task3")),
        flows=(FlowSpec("linear", (
            edge("linear", (), ("Task1",)),
            edge("linear", ("Task1",), ("Task2",)),
            edge("linear", ("Task2",), ("Task3",)),
        )),),
        input_hash=input_hash("linear"),
    )


def conditions_system(module: str = "selflow.predicates") -> SystemSpec:
    #            +-- status ok and mode fast ----------------> Accept
    # Check -----+-- not (status ok) or not (mode fast) ----> Reject
    #            +-- field equals flow argument ------------> Audit
    ok = leaf(module, "field_equal", "Check", message=True, key="status", value="ok")
    fast = leaf(module, "arg_field_equal", node_args=True, key="mode", value="fast")
    both = leaf(module, "field_equals_arg", "Check", message=True, node_args=True, key="owner")
    flow = "conditional"
    return SystemSpec(
        tasks=(task("Check"), task("Accept"), task("Reject"), task("Audit"), task("Retry")),
        flows=(FlowSpec(
            flow,
            (
                edge(flow, (), ("Check",)),
                edge(flow, ("Check",), ("Accept",), AllOf((ok, fast))),
                edge(flow, ("Check",), ("Reject",), AnyOf((Negation(ok), Negation(fast)))),
                edge(flow, ("Check",), ("Audit",), both),
            ),
            failures=(FailureSpec(("Check",), ("Retry",), condition=Negation(fast)),),
        ),),
        input_hash=input_hash("conditions"),
    )


def full_system(module: str = "selflow.predicates") -> SystemSpec:
    #                       +-> Parse --foreach--> sub_flow
    # Fetch --status 200----+                       |
    #                       +-> Store               +--(Parse, Store)--> Report --selective--> _odd_Flow2
    status = leaf(module, "field_equal", "Fetch", message=True, key="status", value=200)
    wants_notify = leaf(module, "arg_field_equal", node_args=True, key="notify", value=True)
    main = FlowSpec(
        "main",
        (
            edge("main", (), ("Fetch",)),
            edge("main", ("Fetch",), ("Parse", "Store"), status),
            edge("main", ("Parse",), ("sub_flow",),
                 foreach=ForeachSpec(ImportRef("myapp.iter", "chunks"), propagate_result=True)),
            edge("main", ("Store", "Parse"), ("Report",)),
            edge("main", ("Report",), ("_odd_Flow2",),
                 selective=SelectiveSpec(("Cleanup",), follow_subflows=True, run_subsequent=("sub_flow",))),
        ),
        queue="dispatch",
        failures=(
            FailureSpec(("Fetch",), ("Notify",), condition=wants_notify),
            FailureSpec(("Store", "Parse"), None),
            FailureSpec(("Report",), ("Notify", "Cleanup"), propagate_failure=True),
        ),
        nowait=frozenset({"Notify", "Cleanup"}),
        eager_failures=frozenset({"Store"}),
        max_retry=2,
        retry_countdown=10,
        node_args_from_first=True,
        propagate=(
            ("propagate_parent", frozenset({"sub_flow"})),
            ("propagate_node_args", frozenset({"sub_flow", "_odd_Flow2"})),
            ("propagate_compound_finished", frozenset({"sub_flow"})),
            ("propagate_failures", frozenset({"_odd_Flow2"})),
        ),
        sampling=SamplingSpec(ImportRef("selflow.strategies", "constant"), (("retry", 5),)),
        throttling=1.5,
        cache=CacheSpec(ImportRef("selflow.caches", "RR"), (("max_cache_size", 8),)),
    )
    sub_flow = FlowSpec("sub_flow", (edge("sub_flow", (), ("Split",)), edge("sub_flow", ("Split",), ("Cleanup",))))
    odd = FlowSpec("_odd_Flow2", (edge("_odd_Flow2", (), ("Cleanup",)),), queue="odd")
    return SystemSpec(
        tasks=(
            task("Fetch", storage="Results", max_retry=3, retry_countdown=2.5, queue="fetch", throttling=10.0,
                 output_schema="schemas/fetch.json"),
            task("Parse", storage="Results", storage_task_name="ParseV2"),
            task("Store", storage="Archive", storage_readonly=True,
                 selective_run_function=ImportRef("myapp.routines", "skip_if_stored")),
            task("Report"), task("Notify"), task("Cleanup"), task("Split", queue="split"),
        ),
        flows=(main, sub_flow, odd),
        storages=(
            StorageSpec("Results", ImportRef("selflow.storage.redis", "RedisStorage"),
                        {"host": "localhost", "port": 6379, "db": 0,
                         "options": {"ssl": False, "timeouts": [1, 2.5], "offset": -1}},
                        CacheSpec(ImportRef("selflow.caches", "LRU"), (("max_cache_size", 16),))),
            StorageSpec("Archive", ImportRef("selflow.storage.s3", "S3Storage"),
                        {"bucket": "archive", "region": None},
                        CacheSpec(ImportRef("selflow.caches", "FIFO"), (("max_cache_size", 4),))),
        ),
        global_=GlobalSpec(
            default_task_queue="tasks",
            default_dispatcher_queue="dispatch",
            migration_dir="migrations",
            trace=(
                TraceSpec("logging"),
                TraceSpec("json"),
                TraceSpec("function", (("import", "myapp.trace"), ("name", "record"))),
                TraceSpec("storage", (("method", "trace"), ("name", "Results"))),
            ),
        ),
        input_hash=input_hash("full"),
    )


#: Golden file name -> the system it is emitted from.
GOLDEN: dict[str, Callable[[], SystemSpec]] = {
    "linear": linear_system,
    "conditions": conditions_system,
    "full": full_system,
}

#: Systems whose conditions import the fixture predicates, so they can be run.
RUNNABLE: dict[str, Callable[[], SystemSpec]] = {
    "linear": linear_system,
    "conditions": lambda: conditions_system(TEST_PREDICATES),
    "full": lambda: full_system(TEST_PREDICATES),
}


def expected_tables(system: SystemSpec) -> SystemTables:
    """The tables ``system`` should compile to, built by hand as an independent reference."""
    flows = {}
    for flow in system.flows:
        flows[flow.name] = FlowTable(
            name=flow.name,
            edges=tuple(
                EdgeTable(id=e.id, index=i, from_nodes=e.from_nodes, to_nodes=e.to_nodes,
                          condition_str=condition_str(e.condition), foreach=e.foreach, selective=e.selective)
                for i, e in enumerate(flow.edges)
            ),
            queue=flow.queue,
            failures=tuple(
                FallbackTable(nodes=f.nodes, fallback=f.fallback, condition_str=condition_str(f.condition),
                              propagate_failure=f.propagate_failure)
                for f in flow.failures
            ),
            nowait=flow.nowait,
            eager_failures=flow.eager_failures,
            max_retry=flow.max_retry,
            retry_countdown=flow.retry_countdown,
            node_args_from_first=flow.node_args_from_first,
            sampling=flow.sampling,
            throttling=flow.throttling,
            cache=flow.cache,
            **{flag: flow.propagates(flag) for flag in PROPAGATE_FLAGS},
        )
    return SystemTables(
        selflow_version=selflow.__version__,
        input_hash=system.input_hash,
        tasks={t.name: t for t in system.tasks},
        flows=flows,
        storages={s.name: s for s in system.storages},
        trace=system.global_.trace,
        migration_dir=system.global_.migration_dir,
        default_task_queue=system.global_.default_task_queue,
        default_dispatcher_queue=system.global_.default_dispatcher_queue,
    )


# --- golden files and determinism -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden(name: str) -> None:
    path = GOLDEN_DIR / f"{name}.py"
    source = emit_module(GOLDEN[name]())
    if os.environ.get("SELFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(source, encoding="utf-8")
        pytest.skip(f"rewrote {path.relative_to(REPO_ROOT)}; review the diff")
    assert path.exists(), f"missing {path}; run with SELFLOW_UPDATE_GOLDEN=1 to create it"
    assert source == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_system() -> None:
    assert {p.stem for p in GOLDEN_DIR.glob("*.py")} == set(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_emit_is_repeatable(name: str) -> None:
    assert emit_module(GOLDEN[name]()) == emit_module(GOLDEN[name]())


def _reshuffled(system: SystemSpec, rng: random.Random) -> SystemSpec:
    """The same system with every order that carries no meaning shuffled."""

    def shuffled(items: Any) -> list[Any]:
        items = list(items)
        rng.shuffle(items)
        return items

    def shuffled_dict(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shuffled_dict(value[k]) for k in shuffled(value)}
        return value

    flows = tuple(
        replace(flow,
                nowait=frozenset(shuffled(flow.nowait)),
                eager_failures=frozenset(shuffled(flow.eager_failures)),
                propagate=tuple((flag, frozenset(shuffled(nodes))) for flag, nodes in shuffled(flow.propagate)))
        for flow in system.flows
    )
    storages = tuple(replace(s, configuration=shuffled_dict(s.configuration)) for s in system.storages)
    return replace(system, tasks=tuple(shuffled(system.tasks)), flows=tuple(shuffled(flows)),
                   storages=tuple(shuffled(storages)))


@settings(max_examples=30, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_orders_without_meaning_do_not_change_the_output(rng: random.Random) -> None:
    system = full_system()
    assert emit_module(_reshuffled(system, rng)) == emit_module(system)


def test_edge_and_failure_order_is_kept() -> None:
    system = full_system(TEST_PREDICATES)
    main = system.flow("main")
    assert main is not None
    flipped = replace(main, edges=main.edges[::-1], failures=main.failures[::-1])
    tables = compile_tables(replace(system, flows=(flipped,)))
    assert [e.id for e in tables.flows["main"].edges] == [e.id for e in flipped.edges]
    assert [e.index for e in tables.flows["main"].edges] == list(range(len(flipped.edges)))
    assert [f.nodes for f in tables.flows["main"].failures] == [f.nodes for f in flipped.failures]


def test_header() -> None:
    system = linear_system()
    source = emit_module(system)
    lines = source.splitlines()
    assert lines[0].startswith('"""') and "generated by selflow" in lines[0]
    assert "Do not edit" in source.split('"""')[1]
    assert f"# selflow-version: {selflow.__version__}" in lines
    assert f"# input-sha256: {system.input_hash}" in lines
    assert socket.gethostname() not in source
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\d\d:\d\d:\d\d", source)


def test_header_without_input_hash() -> None:
    assert "# input-sha256: none\n" in emit_module(replace(linear_system(), input_hash=""))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_lines_fit_the_width(name: str) -> None:
    for line in emit_module(GOLDEN[name]()).splitlines():
        assert len(line) <= emit_mod.LINE_WIDTH, line


def test_each_section_appears_once() -> None:
    source = emit_module(full_system())
    for start in ("from selflow.tables import", "import selflow.predicates as", "_TASKS =", "_STORAGES =",
                  "_FLOWS =", "TABLES =", "# selflow-version:", "# input-sha256:"):
        assert sum(line.startswith(start) for line in source.splitlines()) == 1, start


# --- the tables equal the model -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_compiled_tables_equal_the_model(name: str) -> None:
    system = RUNNABLE[name]()
    assert compile_tables(system) == expected_tables(system)


def test_full_system_details() -> None:
    tables = compile_tables(full_system(TEST_PREDICATES))
    main = tables.flows["main"]
    assert main.propagate_node_args == frozenset({"sub_flow", "_odd_Flow2"})
    assert main.propagate_parent == frozenset({"sub_flow"})
    assert main.propagate_finished == frozenset()
    assert [f.fallback for f in main.failures] == [("Notify",), None, ("Notify", "Cleanup")]
    assert main.failures[2].propagate_failure is True
    assert main.nowait == frozenset({"Notify", "Cleanup"}) and main.eager_failures == frozenset({"Store"})
    assert main.edges[2].foreach == ForeachSpec(ImportRef("myapp.iter", "chunks"), propagate_result=True)
    assert main.edges[4].selective == SelectiveSpec(("Cleanup",), True, ("sub_flow",))
    assert main.edges[3].from_nodes == ("Store", "Parse")
    assert tables.storages["Results"].configuration["options"]["offset"] == -1
    assert tables.storages["Archive"].cache.options == (("max_cache_size", 4),)
    assert [t.kind for t in tables.trace] == ["logging", "json", "function", "storage"]
    assert (tables.migration_dir, tables.default_task_queue, tables.default_dispatcher_queue) == (
        "migrations", "tasks", "dispatch")
    assert tables.selflow_version == selflow.__version__


def test_awkward_values_come_back_equal() -> None:
    configuration = {
        "inf": float("inf"), "ninf": float("-inf"), "negative_zero": -0.0, "big": 10**40, "negative": -7,
        "text": "it's \"quoted\"\n\tü ☃", "bytes": b"\x00\xff", "set": {3, 1, 2}, "frozen": frozenset("ba"),
        "nested": (1, (2,), [3, {"k": None}]), "mixed_keys": {1: "a", "x": 2, 2.5: 3},
    }
    storage = StorageSpec("S", ImportRef("m", "S"), configuration, CacheSpec(ImportRef("m", "C")))
    got = compile_tables(replace(linear_system(), storages=(storage,))).storages["S"].configuration
    assert got == configuration
    assert str(got["negative_zero"]) == "-0.0"
    assert type(got["set"]) is set and type(got["frozen"]) is frozenset and type(got["nested"][2]) is list


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_generated_file_loads_equal_to_in_memory(name: str, tmp_path: Path) -> None:
    system = RUNNABLE[name]()
    path = tmp_path / f"{name}_tables.py"
    path.write_text(emit_module(system), encoding="utf-8")
    assert load_tables(str(path)) == compile_tables(system)
    assert load_tables(path) == expected_tables(system)
    assert not (tmp_path / "__pycache__").exists()


def test_load_tables_by_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module_name = "selflow_test_emit_generated_tables"
    (tmp_path / f"{module_name}.py").write_text(emit_module(linear_system()), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_tables(module_name) == expected_tables(linear_system())
    finally:
        sys.modules.pop(module_name, None)


# --- conditions run correctly --------------------------------------------------------------------


def _conditions(tables: SystemTables, flow: str) -> dict[tuple[str, ...], Callable[[Any, Any], bool]]:
    return {e.to_nodes: e.condition for e in tables.flows[flow].edges}


@pytest.mark.parametrize(("result", "node_args", "accept", "reject", "audit"), [
    ({"status": "ok", "owner": "ann"}, {"mode": "fast", "owner": "ann"}, True, False, True),
    ({"status": "ok", "owner": "ann"}, {"mode": "slow", "owner": "bob"}, False, True, False),
    ({"status": "bad"}, {"mode": "fast"}, False, True, True),  # owner missing on both sides: equal
    (None, None, False, True, False),
])
def test_conditions_evaluate(result: Any, node_args: Any, accept: bool, reject: bool, audit: bool) -> None:
    conds = _conditions(compile_tables(conditions_system(TEST_PREDICATES)), "conditional")
    results = Results({"Check": result})
    assert conds[("Accept",)](results, node_args) is accept
    assert conds[("Reject",)](results, node_args) is reject
    assert conds[("Audit",)](results, node_args) is audit
    assert conds[("Check",)](results, node_args) is True  # unconditional edge


def test_fallback_condition_gets_node_args_only() -> None:
    (fallback,) = compile_tables(conditions_system(TEST_PREDICATES)).flows["conditional"].failures
    assert fallback.condition(Results({}), {"mode": "slow"}) is True
    assert fallback.condition(Results({}), {"mode": "fast"}) is False
    assert fallback.condition_str == "not arg_field_equal(key='mode', value='fast')"


def test_unconditional_fallback_is_always_true() -> None:
    failures = compile_tables(full_system(TEST_PREDICATES)).flows["main"].failures
    assert failures[1].condition(Results({}), None) is True
    assert failures[1].condition_str == "always_true()"


def test_argument_names_that_are_not_python_names() -> None:
    odd = leaf(TEST_PREDICATES, "items_match", "A", message=True, **{"class": 1, "a-b": [1, "x"], "plain": None})
    system = SystemSpec((task("A"), task("B")), (FlowSpec("f", (edge("f", ("A",), ("B",), odd),)),))
    source = emit_module(system)
    assert "**{'a-b': [1, 'x'], 'class': 1}" in source
    cond = compile_tables(system).flows["f"].edges[0].condition
    assert cond(Results({"A": {"class": 1, "a-b": [1, "x"], "plain": None}}), None) is True
    assert cond(Results({"A": {"class": 2, "a-b": [1, "x"], "plain": None}}), None) is False


def test_empty_and_single_item_groups() -> None:
    truthy = leaf(TEST_PREDICATES, "is_truthy", "A", message=True)
    system = SystemSpec((task("A"), task("B"), task("C"), task("D"), task("E")), (FlowSpec("f", (
        edge("f", ("A",), ("B",), AllOf(())),
        edge("f", ("A",), ("C",), AnyOf(())),
        edge("f", ("A",), ("D",), AllOf((truthy,))),
        edge("f", ("A",), ("E",), AnyOf((Negation(truthy),))),
    )),))
    conds = _conditions(compile_tables(system), "f")
    for value in ("x", ""):
        results = Results({"A": value})
        assert conds[("B",)](results, None) is True
        assert conds[("C",)](results, None) is False
        assert conds[("D",)](results, None) is bool(value)
        assert conds[("E",)](results, None) is (not value)


def _reference(cond: Condition, values: dict[str, Any]) -> bool:
    if isinstance(cond, PredicateLeaf):
        return bool(values.get(cond.node))
    if isinstance(cond, AllOf):
        return all(_reference(item, values) for item in cond.items)
    if isinstance(cond, AnyOf):
        return any(_reference(item, values) for item in cond.items)
    assert isinstance(cond, Negation)
    return not _reference(cond.item, values)


_NODES = ("A", "B", "C")
_truthy_leaves = st.sampled_from(_NODES).map(lambda n: leaf(TEST_PREDICATES, "is_truthy", n, message=True))
_trees = st.recursive(
    _truthy_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: AllOf(tuple(items))),
        st.lists(children, max_size=4).map(lambda items: AnyOf(tuple(items))),
        children.map(Negation),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=_trees, values=st.fixed_dictionaries({n: st.sampled_from([0, 1, "", "x", [], [0], None]) for n in _NODES}))
def test_conditions_match_a_reference_evaluator(cond: Condition, values: dict[str, Any]) -> None:
    system = SystemSpec(tuple(task(n) for n in (*_NODES, "D")),
                        (FlowSpec("f", (edge("f", _NODES, ("D",), cond),)),))
    condition = compile_tables(system).flows["f"].edges[0].condition
    assert condition(Results(values), None) is _reference(cond, values)


# --- names of generated functions ---------------------------------------------------------------


def test_function_names_stay_unique_and_valid() -> None:
    truthy = leaf(TEST_PREDICATES, "is_truthy", "A", message=True)
    falsy = Negation(truthy)
    # "_cond_" + "a_b" + "_" + "c" and "_cond_" + "a" + "_" + "b_c" are the same name; ids here are odd.
    system = SystemSpec((task("A"), task("B")), (
        FlowSpec("a_b", (EdgeSpec("c", ("A",), ("B",), truthy),)),
        FlowSpec("a", (EdgeSpec("b_c", ("A",), ("B",), falsy), EdgeSpec("b-c d", ("A",), ("B",), truthy))),
    ))
    source = emit_module(system)
    names = re.findall(r"^def (\w+)\(results, node_args\):", source, re.M)
    assert len(names) == len(set(names)) == 3
    assert all(name.isidentifier() for name in names)
    tables = compile_tables(system)
    results = Results({"A": "yes"})
    assert tables.flows["a_b"].edges[0].condition(results, None) is True
    assert tables.flows["a"].edges[0].condition(results, None) is False
    assert tables.flows["a"].edges[1].condition(results, None) is True


def test_predicate_modules_are_imported_once_each_in_sorted_order() -> None:
    system = SystemSpec((task("A"), task("B")), (FlowSpec("f", (
        edge("f", ("A",), ("B",), AllOf((leaf("zeta.preds", "p"), leaf("alpha", "q"), leaf("zeta.preds", "r"),
                                         leaf("alpha_", "s"), leaf("alpha", "t"))))
    ,)),))
    imports = [line for line in emit_module(system).splitlines() if line.startswith("import ")]
    assert imports == ["import alpha as _pred_alpha", "import alpha_ as _pred_alpha_",
                       "import zeta.preds as _pred_zeta_preds"]


# --- emit fails loudly ---------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "message"), [
    (lambda s: replace(s, input_hash="abc\nimport os"), "not hexadecimal"),
    (lambda s: replace(s, tasks=s.tasks + s.tasks[:1]), "two tasks are named"),
    (lambda s: replace(s, storages=(StorageSpec("S", ImportRef("m", "S"), {"x": object()},
                                                CacheSpec(ImportRef("m", "C"))),)), "cannot write a object"),
    (lambda s: replace(s, storages=(StorageSpec("S", ImportRef("m", "S"), {"x": 1j},
                                                CacheSpec(ImportRef("m", "C"))),)), "cannot write a complex"),
    (lambda s: replace(s, flows=(replace(s.flows[0], propagate=(("propagate_sideways", frozenset()),)),)),
     "unknown propagate flags"),
    (lambda s: _with_condition(s, leaf("m", "p", None, message=True)), "bound to no node"),
    (lambda s: _with_condition(s, leaf("m", "not-a-name")), "not a Python name"),
    (lambda s: _with_condition(s, leaf("m.2bad", "p")), "not a dotted Python name"),
    (lambda s: _with_condition(s, PredicateLeaf(ImportRef("m", "p"), None, (("message", 1),), False, False)),
     "bad argument name"),
])
def test_emit_rejects(make: Callable[[SystemSpec], SystemSpec], message: str) -> None:
    with pytest.raises(EmitError, match=message) as info:
        emit_module(make(linear_system()))
    assert isinstance(info.value, SelflowError)


def _with_condition(system: SystemSpec, cond: Condition) -> SystemSpec:
    flow = system.flows[0]
    first = replace(flow.edges[1], condition=cond)
    return replace(system, flows=(replace(flow, edges=(flow.edges[0], first, *flow.edges[2:])),))


def test_a_printer_bug_that_changes_meaning_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = emit_mod._layout

    def renumbers_an_edge(node: Any, indent: int, column: int) -> str:
        return real(node, indent, column).replace("index=2", "index=3")

    monkeypatch.setattr(emit_mod, "_layout", renumbers_an_edge)
    with pytest.raises(EmitError, match="differently from what it built"):
        emit_module(linear_system())


def test_a_printer_bug_that_breaks_syntax_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = emit_mod._layout
    monkeypatch.setattr(emit_mod, "_layout", lambda node, indent, column: real(node, indent, column) + ")")
    with pytest.raises(EmitError, match="invalid Python"):
        emit_module(linear_system())


def test_values_tables_cannot_rebuild_are_refused() -> None:
    @dataclass(frozen=True)
    class Stranger:  # a record that the generated module could not import
        x: int = 1

    bad = replace(linear_system(), storages=(StorageSpec("S", ImportRef("m", "S"), Stranger(),
                                                         CacheSpec(ImportRef("m", "C"))),))
    with pytest.raises(EmitError, match="not a record that selflow.tables exports"):
        emit_module(bad)


# --- loading tables fails clearly ----------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TablesError, match="cannot read"):
        load_tables(tmp_path / "nope.py")


@pytest.mark.parametrize(("text", "message"), [
    ("X = 1\n", "defines no TABLES"),
    ("TABLES = {'flows': {}}\n", "TABLES is a dict, not selflow.tables.SystemTables"),
    ("TABLES = (\n", "SyntaxError"),
    ("import selflow_no_such_module_anywhere\n", "ModuleNotFoundError"),
])
def test_load_bad_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tables.py"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TablesError, match=message):
        load_tables(path)


def test_load_bad_module_names() -> None:
    with pytest.raises(TablesError, match="cannot import tables module"):
        load_tables("selflow_no_such_module_anywhere.tables")
    with pytest.raises(TablesError, match="neither a path"):
        load_tables("not a module")
    with pytest.raises(TablesError, match="defines no TABLES"):
        load_tables("selflow.errors")


def test_compile_reports_a_missing_predicate_module() -> None:
    with pytest.raises(TablesError, match="selflow_no_such_predicates"):
        compile_tables(conditions_system("selflow_no_such_predicates"))


def test_errors_in_conditions_point_at_generated_source() -> None:
    broken = leaf(TEST_PREDICATES, "field_equal", "A", message=True)  # misses key and value
    system = SystemSpec((task("A"), task("B")), (FlowSpec("f", (edge("f", ("A",), ("B",), broken),)),),
                        input_hash=input_hash("broken"))
    cond = compile_tables(system).flows["f"].edges[0].condition
    with pytest.raises(TypeError) as info:
        cond(Results({}), None)
    frames = [entry for entry in info.traceback if entry.path == f"<selflow_tables_{system.input_hash[:12]}>"]
    assert frames and "field_equal" in str(frames[0].statement)


# --- no Celery in codegen ------------------------------------------------------------------------


def test_codegen_does_not_import_celery() -> None:
    script = textwrap.dedent("""
        import sys

        attempts = []

        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "celery":
                    attempts.append(name)
                return None

        sys.meta_path.insert(0, Watch())
        from selflow.codegen import compiled, emit
        from selflow.codegen.model import EdgeSpec, FlowSpec, ImportRef, SystemSpec, TaskSpec

        system = SystemSpec((TaskSpec("T", ImportRef("m", "T")),), (FlowSpec("f", (EdgeSpec("e", (), ("T",)),)),))
        emit.emit_module(system)
        compiled.compile_tables(system)
        assert "celery" not in sys.modules, "celery was imported"
        assert not attempts, attempts
        print("no celery")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no celery"
