"""``emit``: the payload every tracer gets, and failure isolation; ``build_tracers`` from TraceSpecs."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from selflow.codegen.model import TraceSpec
from selflow.trace import TraceBackendError, TraceEvent, build_tracers, emit, json_safe, make_payload
from selflow.trace.function import FunctionTracer
from selflow.trace.jsonlines import JsonLinesTracer
from selflow.trace.logging import LoggingTracer
from selflow.trace.storage import StorageTracer

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        self.calls.append((event, details))


def broken(event: str, details: dict[str, Any]) -> None:
    raise RuntimeError("tracer is broken")


# --- the payload ------------------------------------------------------------------------------


def test_emit_adds_event_and_time_and_passes_the_name() -> None:
    recorder = Recorder()
    payload = emit([recorder], TraceEvent.TASK_END, {"flow_name": "order", "task_id": "t1"})
    [(event, details)] = recorder.calls
    assert event == "TASK_END" and type(event) is str
    assert details == payload
    assert list(details)[:2] == ["event", "time"]
    assert details["event"] == "TASK_END" and details["flow_name"] == "order" and details["task_id"] == "t1"
    when = datetime.fromisoformat(details["time"])
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 60


def test_a_name_string_works_like_the_member() -> None:
    recorder = Recorder()
    emit([recorder], "FLOW_END", {"result": {}})
    assert recorder.calls[0][0] == "FLOW_END"


def test_event_and_time_are_reserved() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    payload = make_payload("FLOW_END", {"event": "spoof", "time": "yesterday", "x": 1}, now=now)
    assert payload == {"event": "FLOW_END", "time": "2024-05-01T12:00:00.000000+00:00", "x": 1}


def test_no_tracers_costs_nothing() -> None:
    class Explodes(dict):
        def items(self):  # would be called if the payload were built
            raise AssertionError("payload built with no tracer")

    assert emit((), "FLOW_END", Explodes()) is None


def test_unknown_event_is_sent_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    name = f"NOT_AN_EVENT_{uuid.uuid4().hex[:6].upper()}"
    with caplog.at_level(logging.WARNING, logger="selflow.tracing"):
        emit([recorder], name, {})
        emit([recorder], name, {})
    assert [e for e, _ in recorder.calls] == [name, name]
    assert sum(name in r.getMessage() for r in caplog.records) == 1


def test_payload_is_json_safe() -> None:
    # Given details holding values json.dumps refuses (Selinon crashed on these)
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    class BadRepr:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    details = {
        "obj": Opaque(), "bytes": b"\x00ab", "tuple": (1, "a"), "set": {3, 1, 2}, "mixed_set": {1, "a"},
        "nan": math.nan, "inf": -math.inf, "keys": {1: "one", None: "none", (1, 2): "pair", False: "f"},
        "nested": {"deep": [{"x": Opaque()}]}, "exc": ValueError("bad"), "bad": BadRepr(),
        "date": datetime(2024, 5, 1, tzinfo=timezone.utc), "event_enum": TraceEvent.FLOW_END,
    }
    # When they are emitted
    recorder = Recorder()
    emit([recorder], "FLOW_END", details)
    payload = recorder.calls[0][1]
    # Then the payload is strict JSON, with repr for the rest
    json.dumps(payload, allow_nan=False)
    assert payload["obj"] == "<Opaque>"
    assert payload["bytes"] == repr(b"\x00ab")
    assert payload["tuple"] == [1, "a"]
    assert payload["set"] == [1, 2, 3]
    assert sorted(payload["mixed_set"], key=repr) == sorted([1, "a"], key=repr)
    assert payload["nan"] == "nan" and payload["inf"] == "-inf"
    assert payload["keys"] == {"1": "one", "null": "none", "(1, 2)": "pair", "false": "f"}
    assert payload["nested"] == {"deep": [{"x": "<Opaque>"}]}
    assert payload["exc"] == "ValueError('bad')"
    assert payload["bad"] == "<unrepresentable BadRepr>"
    assert payload["event_enum"] == "FLOW_END"
    # and the caller's details are untouched
    assert isinstance(details["tuple"], tuple) and isinstance(details["obj"], Opaque)


def test_self_referencing_values_do_not_recurse_forever() -> None:
    loop: list[Any] = []
    loop.append(loop)
    json.dumps(json_safe({"loop": loop}))


def test_each_tracer_gets_its_own_payload_dict() -> None:
    def vandal(event: str, details: dict[str, Any]) -> None:
        details.clear()

    recorder = Recorder()
    emit([vandal, recorder], "FLOW_END", {"x": 1})
    assert recorder.calls[0][1]["x"] == 1


# --- failure isolation -----------------------------------------------------------------------


def test_a_raising_tracer_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    # Given a broken tracer between two working ones
    first, last = Recorder(), Recorder()
    # When an event is emitted
    with caplog.at_level(logging.WARNING, logger="selflow.tracing"):
        payload = emit([first, broken, last], TraceEvent.TASK_FAILURE, {"what": "boom"})
    # Then emit did not raise, both working tracers got the event, and the failure is logged
    assert payload is not None
    assert len(first.calls) == len(last.calls) == 1
    [record] = [r for r in caplog.records if "failed on TASK_FAILURE" in r.getMessage()]
    assert "broken" in record.getMessage()
    assert record.exc_info and "tracer is broken" in str(record.exc_info[1])


# --- build_tracers ---------------------------------------------------------------------------


class TinyAdapter:
    def __init__(self) -> None:
        self.traced: list[tuple[str, dict[str, Any]]] = []

    def trace(self, event: str, details: dict[str, Any]) -> None:
        self.traced.append((event, details))

    def audit(self, event: str, details: dict[str, Any]) -> None:
        self.traced.append(("audit:" + event, details))


class TinyPool:
    def __init__(self, adapters: dict[str, Any]) -> None:
        self.adapters = adapters
        self.asked: list[str] = []

    def adapter_for_storage(self, name: str) -> Any:
        self.asked.append(name)
        return self.adapters[name]


@pytest.fixture
def trace_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module with a ``record`` trace function that appends to ``SEEN``."""
    name = f"trace_funcs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("SEEN = []\n\ndef record(event, details):\n    SEEN.append((event, details))\n"
                                         "\nNOT_CALLABLE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_build_tracers_makes_one_tracer_per_entry_in_order(trace_module: str) -> None:
    pool = TinyPool({"Orders": TinyAdapter()})
    specs = [
        TraceSpec("logging"),
        TraceSpec("json"),
        TraceSpec("function", (("import", trace_module), ("name", "record"))),
        TraceSpec("storage", (("method", "trace"), ("name", "Orders"))),
        TraceSpec("logging"),  # repeated: counts once
    ]
    tracers = build_tracers(specs, storage_pool=pool)
    assert [type(t) for t in tracers] == [LoggingTracer, JsonLinesTracer, FunctionTracer, StorageTracer]
    assert pool.asked == [], "the storage adapter is fetched on the first event, not before"


def test_build_tracers_of_nothing() -> None:
    assert build_tracers(()) == ()


def test_storage_entry_needs_a_pool() -> None:
    with pytest.raises(TraceBackendError, match=r"trace storage 'Orders' needs a storage pool"):
        build_tracers([TraceSpec("storage", (("method", "trace"), ("name", "Orders")))])


def test_function_entry_that_does_not_import(trace_module: str) -> None:
    with pytest.raises(TraceBackendError, match=r"trace function no_such_module_xyz:record: cannot import"):
        build_tracers([TraceSpec("function", (("import", "no_such_module_xyz"), ("name", "record")))])
    with pytest.raises(TraceBackendError, match=r"has no attribute 'missing'"):
        build_tracers([TraceSpec("function", (("import", trace_module), ("name", "missing")))])
    with pytest.raises(TraceBackendError, match=r"is not callable"):
        build_tracers([TraceSpec("function", (("import", trace_module), ("name", "NOT_CALLABLE")))])


def test_unknown_kind() -> None:
    with pytest.raises(TraceBackendError, match=r"unknown trace backend 'carrier_pigeon'"):
        build_tracers([TraceSpec("carrier_pigeon")])


def test_trace_entries_of_a_loaded_configuration(tmp_path: Path, trace_module: str) -> None:
    # Given a configuration whose global.trace has a function and a storage entry
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables

    (tmp_path / "traced.yml").write_text(textwrap.dedent(f"""
        tasks:
          - {{name: T, import: shop.tasks, storage: Audit}}
        storages:
          - {{name: Audit, import: shop.storages}}
        flows: [f]
        flow-definitions:
          - name: f
            edges:
              - {{from: , to: T}}
        global:
          trace:
            - function: {{name: record, import: {trace_module}}}
            - storage: {{name: Audit, method: audit}}
    """))
    tables = compile_tables(load_system([str(tmp_path / "traced.yml")]))
    adapter = TinyAdapter()
    # When its tracers are built and an event is emitted
    tracers = build_tracers(tables.trace, storage_pool=TinyPool({"Audit": adapter}))
    emit(tracers, TraceEvent.FLOW_START, {"flow_name": "f", "dispatcher_id": "d1"})
    # Then the function and the storage method got it
    seen = sys.modules[trace_module].SEEN
    assert [(e, d["dispatcher_id"]) for e, d in seen] == [("FLOW_START", "d1")]
    assert [(e, d["dispatcher_id"]) for e, d in adapter.traced] == [("audit:FLOW_START", "d1")]


# --- import hygiene ----------------------------------------------------------------------------


def test_tracing_imports_neither_celery_nor_sentry() -> None:
    script = textwrap.dedent("""
        import sys
        from selflow.codegen.model import TraceSpec
        from selflow.trace import build_tracers, emit
        emit(build_tracers([TraceSpec("logging"), TraceSpec("json")]), "FLOW_END", {})
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("celery", "kombu", "sentry_sdk")))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
