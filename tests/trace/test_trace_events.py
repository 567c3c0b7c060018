"""The event table is complete and true: every event documented, every emitted name a member.

Three checks keep ``selflow.trace.events`` in step with the code that emits events:

* statically: every event name the source passes to ``trace(...)``, ``note(...)``, ``emit(...)``
  or ``Note(...)``, and every detail keyword it passes with it, is a documented member/field;
* dynamically: the events of real embedded runs (the reference flows, and a flow that fails
  eagerly and retries) carry only documented names and fields;
* docs/tracing.md's tables are exactly the generated ones.
"""

from __future__ import annotations

import ast
import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from selflow.trace.events import (
    EVENTS,
    FIELDS,
    SELINON_EVENT_COUNT,
    Severity,
    TraceEvent,
    event_info,
    events_markdown,
    fields_markdown,
    main,
    severity_of,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "selflow"
DOC = ROOT / "docs" / "tracing.md"

#: Selinon's events in Selinon's order (its numbering is part of its API)
SELINON_ORDER = """
DISPATCHER_WAKEUP FLOW_SCHEDULE FLOW_START TASK_SCHEDULE TASK_START SUBFLOW_SCHEDULE TASK_END
NODE_SUCCESSFUL TASK_DISCARD_RESULT TASK_FAILURE TASK_RETRY FLOW_FAILURE DISPATCHER_FAILURE NODE_FAILURE
FALLBACK_START DISPATCHER_RETRY FLOW_END STORAGE_CONNECT STORAGE_DISCONNECT STORAGE_RETRIEVE
STORAGE_RETRIEVED STORAGE_STORE STORAGE_STORED EDGE_COND_FALSE FOREACH_RESULT NODE_STATE_CACHE_GET
NODE_STATE_CACHE_ADD NODE_STATE_CACHE_MISS NODE_STATE_CACHE_HIT TASK_RESULT_CACHE_GET TASK_RESULT_CACHE_ADD
TASK_RESULT_CACHE_MISS TASK_RESULT_CACHE_HIT SELECTIVE_OMIT_EDGE SELECTIVE_OMIT_NODE SELECTIVE_RUN_FUNC
SELECTIVE_TASK_REUSE STORAGE_STORE_ERROR STORAGE_OMIT_STORE_ERROR FALLBACK_COND_FALSE FALLBACK_COND_TRUE
NODE_STATE_CACHE_ISSUE TASK_RESULT_CACHE_ISSUE STORAGE_ISSUE RESULT_BACKEND_ISSUE FLOW_RETRY MIGRATION
MIGRATION_SKEW MIGRATION_TAINTED_FLOW MIGRATION_ERROR EAGER_FAILURE STORAGE_DELETE STORAGE_DELETED
""".split()

#: Selinon's warning events
SELINON_WARNINGS = {
    "NODE_FAILURE", "TASK_DISCARD_RESULT", "TASK_RETRY", "TASK_FAILURE", "FLOW_FAILURE", "STORAGE_OMIT_STORE_ERROR",
    "NODE_STATE_CACHE_ISSUE", "TASK_RESULT_CACHE_ISSUE", "STORAGE_ISSUE", "RESULT_BACKEND_ISSUE", "FLOW_RETRY",
    "MIGRATION_SKEW", "MIGRATION_ERROR", "EAGER_FAILURE",
}

#: selflow's own events that the brief of the tracing work asks for
OWN_EVENTS = {"DISPATCHER_INLINE_STEP", "WAKEUP_DEFERRED", "SAFETY_TICK", "THROTTLED", "CONCURRENCY_WAIT",
              "RATE_LIMITED"}

#: fields ``emit`` adds to every payload: an event need not (and must not) list them
ADDED_FIELDS = {"event", "time"}


# --- the table itself --------------------------------------------------------------------------


def test_selinon_events_come_first_in_selinon_order() -> None:
    assert len(SELINON_ORDER) == SELINON_EVENT_COUNT == 53
    assert [e.value for e in TraceEvent][:SELINON_EVENT_COUNT] == SELINON_ORDER


def test_own_events_and_storage_and_migration_events_exist() -> None:
    names = set(TraceEvent.__members__)
    assert OWN_EVENTS <= names
    assert {"STORAGE_STORED", "STORAGE_RETRIEVED", "STORAGE_DELETED"} <= names
    assert {n for n in names if n.startswith("MIGRATION")} == {
        "MIGRATION", "MIGRATION_SKEW", "MIGRATION_TAINTED_FLOW", "MIGRATION_ERROR"}


@pytest.mark.parametrize("event", list(TraceEvent), ids=lambda e: e.value)
def test_every_event_is_documented(event: TraceEvent) -> None:
    assert event.value == event.name, "values are the names, and never change"
    assert str(event) == event.name
    info = EVENTS.get(event)
    assert info is not None, f"{event.name} has no EventInfo in selflow.trace.events.EVENTS"
    assert isinstance(info.severity, Severity)
    assert info.description and info.emitter
    assert info.fields, f"{event.name} documents no payload field"
    assert len(set(info.fields)) == len(info.fields), f"{event.name} lists a field twice"
    undocumented = [f for f in info.fields if f not in FIELDS]
    assert not undocumented, f"{event.name}: fields missing from FIELDS: {undocumented}"
    assert not set(info.fields) & ADDED_FIELDS, f"{event.name}: event and time are added by emit"


def test_events_has_no_stray_keys_and_every_field_is_used() -> None:
    assert set(EVENTS) == set(TraceEvent)
    used = {f for info in EVENTS.values() for f in info.fields} | ADDED_FIELDS
    assert set(FIELDS) == used, f"FIELDS describes fields no event carries: {sorted(set(FIELDS) - used)}"


def test_severities_follow_selinon() -> None:
    for event in TraceEvent:
        if event.value == "DISPATCHER_FAILURE":
            expected = Severity.ERROR
        elif event.value in SELINON_WARNINGS:
            expected = Severity.WARNING
        else:
            expected = Severity.INFO
        assert severity_of(event) is expected, event
        assert severity_of(event.value) is expected, event


def test_unknown_names() -> None:
    assert event_info("NO_SUCH_EVENT") is None
    assert severity_of("NO_SUCH_EVENT") is Severity.INFO


# --- emitted names and fields: static check over the source ---------------------------------


def _emitted() -> list[tuple[str, int, str, set[str]]]:
    """(file, line, event name, detail keywords) of every trace/_trace/note/emit/Note call in selflow/."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if "trace" in path.relative_to(SOURCE).parts[:1]:
            continue  # the tracing package itself only passes names through
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            position = {"trace": 0, "_trace": 0, "note": 0, "Note": 0, "emit": 1}.get(name)
            if position is None or len(node.args) <= position:
                continue
            names = [c.value for c in ast.walk(node.args[position])
                     if isinstance(c, ast.Constant) and isinstance(c.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+",
                                                                                                   c.value)]
            names += [a.attr for a in ast.walk(node.args[position])
                      if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "TraceEvent"]
            keywords = {k.arg for k in node.keywords if k.arg is not None}
            if name == "_trace":
                keywords = set()  # the storage pool passes a dict: its names are checked, not its fields
            if name == "note":
                keywords |= {"flow_name", "dispatcher_id"}  # the engine's note() adds them
            rel = str(path.relative_to(ROOT))
            found.extend((rel, node.lineno, event, keywords) for event in names)
    return found


def test_the_source_emits_events() -> None:
    names = {event for _, _, event, _ in _emitted()}
    assert len(names) >= 20, f"the scan found too few emitted events ({sorted(names)}): is it still looking right?"


def test_every_emitted_name_is_a_member() -> None:
    unknown = [f"{file}:{line}: {event}" for file, line, event, _ in _emitted() if event not in TraceEvent.__members__]
    assert not unknown, ("events emitted in the source but not in TraceEvent (add them, with an EventInfo):\n"
                         + "\n".join(unknown))


def test_every_emitted_detail_is_a_documented_field() -> None:
    wrong = []
    for file, line, event, keywords in _emitted():
        if event in TraceEvent.__members__:
            extra = keywords - set(EVENTS[TraceEvent(event)].fields)
            if extra:
                wrong.append(f"{file}:{line}: {event} passes {sorted(extra)}")
    assert not wrong, "details not documented for their event (add them to its EventInfo.fields):\n" + "\n".join(wrong)


# --- emitted names and fields: dynamic check on real runs -----------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        self.events.append((event, dict(details)))


def _check(recorded: list[tuple[str, dict[str, Any]]]) -> set[str]:
    problems = []
    for event, details in recorded:
        info = event_info(event)
        if info is None:
            problems.append(f"{event}: not a TraceEvent member")
            continue
        extra = set(details) - set(info.fields) - ADDED_FIELDS
        if extra:
            problems.append(f"{event}: undocumented fields {sorted(extra)}")
    assert not problems, "\n".join(sorted(set(problems)))
    return {event for event, _ in recorded}


def test_a_reference_run_emits_only_documented_events_and_fields() -> None:
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables
    from selflow.runtime.embedded import EmbeddedRunner

    # Given the reference configuration, traced by a recorder
    recorder = Recorder()
    runner = EmbeddedRunner(compile_tables(load_system([str(ROOT / "config")])), tracers=(recorder,))
    # When site_audit runs to its end
    state = runner.run_flow("site_audit", {"site": "https://shop.acme.test", "notify": "#web-audit"}, timeout=60)
    # Then every event it emitted is a documented member with documented fields
    assert state.status == "success"
    seen = _check(recorder.events)
    assert {"FLOW_SCHEDULE", "FLOW_START", "TASK_SCHEDULE", "TASK_START", "TASK_END", "NODE_SUCCESSFUL",
            "SUBFLOW_SCHEDULE", "FLOW_END"} <= seen


def test_a_failing_run_emits_only_documented_events_and_fields(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables
    from selflow.runtime.embedded import EmbeddedRunner

    # Given a flow that retries once, whose Flaky task fails at once (eagerly) and Steady succeeds:
    #
    #   (start) --> Flaky  (eager failure, retried once, then the flow fails)
    #           --> Steady
    module = f"trace_tasks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        from selflow import FatalTaskError

        def flaky(node_args):
            raise FatalTaskError("always broken")

        def steady(node_args):
            return {"ok": True}
    """))
    (tmp_path / "flow.yml").write_text(textwrap.dedent(f"""
        tasks:
          - {{name: flaky, import: {module}}}
          - {{name: steady, import: {module}}}
        flows: [fragile]
        flow-definitions:
          - name: fragile
            max_retry: 1
            retry_countdown: 0
            eager_failures: flaky
            edges:
              - from:
                to: [flaky, steady]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    recorder = Recorder()
    runner = EmbeddedRunner(compile_tables(load_system([str(tmp_path / "flow.yml")])), tracers=(recorder,))
    # When it runs
    state = runner.run_flow("fragile", {"n": 1}, timeout=60)
    # Then it failed, and every event was a documented member with documented fields
    assert state.status == "failure"
    seen = _check(recorder.events)
    assert {"TASK_FAILURE", "NODE_FAILURE", "EAGER_FAILURE", "FLOW_RETRY", "FLOW_FAILURE"} <= seen


# --- docs/tracing.md ---------------------------------------------------------------------------


def _between(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}: start -->\n(.*?)<!-- {name}: end -->", text, re.DOTALL)
    assert match, f"docs/tracing.md lacks the <!-- {name}: start --> ... <!-- {name}: end --> markers"
    return match.group(1)


def test_docs_event_table_is_generated_from_events() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert _between(text, "events") == events_markdown(), (
        "docs/tracing.md's event table is out of date: paste `python -m selflow.trace events` between "
        "its '<!-- events: start -->' and '<!-- events: end -->' lines")


def test_docs_field_table_is_generated_from_fields() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert _between(text, "fields") == fields_markdown(), (
        "docs/tracing.md's field table is out of date: paste `python -m selflow.trace fields` between "
        "its '<!-- fields: start -->' and '<!-- fields: end -->' lines")


def test_generated_table_has_one_row_per_event() -> None:
    rows = events_markdown().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [e.value for e in TraceEvent]


def test_main_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events"]) == 0
    assert capsys.readouterr().out == events_markdown()
    assert main([]) == 0
    assert capsys.readouterr().out == events_markdown() + fields_markdown()
    assert main(["nope"]) == 2
    assert "usage" in capsys.readouterr().err
