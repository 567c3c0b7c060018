"""The logging, JSON-lines, function and storage backends, each through ``emit``."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from selflow.trace import TraceBackendError, TraceEvent, emit
from selflow.trace.function import FunctionTracer
from selflow.trace.jsonlines import JsonLinesTracer
from selflow.trace.logging import LoggingTracer, is_colour_terminal
from selflow.trace.storage import StorageTracer

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def logger_name() -> Iterator[str]:
    name = f"selflow-test-trace-{uuid.uuid4().hex[:8]}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


# --- logging -----------------------------------------------------------------------------------


def test_logging_plain_on_a_file_like_stream(logger_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    tracer = LoggingTracer(logger_name, stream=stream)
    emit([tracer], TraceEvent.FLOW_START, {"flow_name": "order", "dispatcher_id": "d1", "node_args": {"x": 1}})
    [line] = stream.getvalue().splitlines()
    assert not ANSI.search(line)
    match = re.fullmatch(r"selflow@(\S+) FLOW_START (\{.*\})", line)
    assert match, line
    body = json.loads(match.group(2))
    assert body["flow_name"] == "order" and body["node_args"] == {"x": 1} and "time" in body
    assert "event" not in body  # it is the word before


def test_logging_coloured_on_a_terminal(logger_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTerminal()
    tracer = LoggingTracer(logger_name, stream=stream)
    emit([tracer], TraceEvent.TASK_START, {"task_name": "A"})
    emit([tracer], TraceEvent.TASK_FAILURE, {"task_name": "A", "what": "ValueError: x"})
    emit([tracer], TraceEvent.DISPATCHER_FAILURE, {"what": "bug"})
    info, warning, error = stream.getvalue().splitlines()
    assert all(ANSI.search(line) for line in (info, warning, error))
    # each severity in its own colour, and the text itself unchanged
    assert len({ANSI.findall(line)[1] for line in (info, warning, error)}) == 3
    assert ANSI.sub("", warning).startswith("selflow@") and " TASK_FAILURE {" in ANSI.sub("", warning)


def test_logging_no_color_turns_colours_off(logger_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = FakeTerminal()
    assert not is_colour_terminal(stream)
    emit([LoggingTracer(logger_name, stream=stream)], TraceEvent.TASK_START, {})
    assert not ANSI.search(stream.getvalue())


def test_logging_levels_follow_severity(logger_name: str, caplog: pytest.LogCaptureFixture) -> None:
    # Given a logger the application has set up (here: pytest's handler on the root logger)
    tracer = LoggingTracer(logger_name)
    assert logging.getLogger(logger_name).level == logging.INFO
    assert not logging.getLogger(logger_name).handlers, "the application's handlers are used, none is added"
    # When events of each severity are traced
    with caplog.at_level(logging.INFO, logger=logger_name):
        emit([tracer], TraceEvent.TASK_END, {"task_id": "t"})
        emit([tracer], TraceEvent.TASK_RETRY, {"task_id": "t"})
        emit([tracer], TraceEvent.DISPATCHER_FAILURE, {"dispatcher_id": "d"})
    # Then each is logged at its severity's level, with the payload attached
    records = [r for r in caplog.records if r.name == logger_name]
    assert [(r.levelno, r.selflow_event) for r in records] == [  # type: ignore[attr-defined]
        (logging.INFO, "TASK_END"), (logging.WARNING, "TASK_RETRY"), (logging.ERROR, "DISPATCHER_FAILURE")]
    assert records[0].selflow_payload["task_id"] == "t"  # type: ignore[attr-defined]


def test_logging_twice_on_one_logger_adds_one_handler(logger_name: str) -> None:
    stream = io.StringIO()
    LoggingTracer(logger_name, stream=stream)
    tracer = LoggingTracer(logger_name, stream=stream)
    emit([tracer], TraceEvent.TASK_START, {})
    assert len(stream.getvalue().splitlines()) == 1


def test_rainbow_logging_handler_imports() -> None:
    from rainbow_logging_handler import RainbowLoggingHandler

    assert issubclass(RainbowLoggingHandler, logging.StreamHandler)


# --- JSON lines --------------------------------------------------------------------------------


def test_json_lines_to_a_file(tmp_path: Path) -> None:
    # Given a JSON-lines tracer on a file
    path = tmp_path / "trace.jsonl"
    tracer = JsonLinesTracer(path)
    # When three events are emitted, one with a value JSON cannot hold
    emit([tracer], TraceEvent.FLOW_SCHEDULE, {"flow_name": "order", "dispatcher_id": "d1", "node_args": {"a": 1}})
    emit([tracer], TraceEvent.TASK_FAILURE, {"task_name": "A", "what": "ValueError: bad\nsecond line"})
    emit([tracer], TraceEvent.FLOW_END, {"result": {"finished_nodes": {"A": ["t1"]}}, "odd": object()})
    tracer.close()
    # Then the file has exactly one JSON object per line: event, time, host, details
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["FLOW_SCHEDULE", "TASK_FAILURE", "FLOW_END"]
    for record in records:
        assert set(record) == {"event", "time", "host", "details"}
        datetime.fromisoformat(record["time"])
        assert "event" not in record["details"] and "time" not in record["details"]
    assert records[0]["details"] == {"flow_name": "order", "dispatcher_id": "d1", "node_args": {"a": 1}}
    assert records[1]["details"]["what"] == "ValueError: bad\nsecond line"
    assert records[2]["details"]["odd"].startswith("<object object")


def test_json_lines_appends_and_survives_threads_and_several_writers(tmp_path: Path) -> None:
    # Given an existing file and two tracers on it (as two worker processes would have)
    path = tmp_path / "trace.jsonl"
    path.write_text('{"event": "EARLIER"}\n')
    tracers = [JsonLinesTracer(path), JsonLinesTracer(path)]
    padding = "x" * 3000  # long lines: a torn write would show

    def work(n: int) -> None:
        for i in range(100):
            emit([tracers[n % 2]], TraceEvent.TASK_END, {"thread": n, "i": i, "padding": padding})

    # When 8 threads emit 100 events each
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tracer in tracers:
        tracer.close()
    # Then every line is whole, and none is lost
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"event": "EARLIER"}'
    records = [json.loads(line) for line in lines[1:]]
    assert sorted((r["details"]["thread"], r["details"]["i"]) for r in records) == [
        (n, i) for n in range(8) for i in range(100)]


def test_json_lines_default_streams_split_by_severity(capsys: pytest.CaptureFixture[str]) -> None:
    tracer = JsonLinesTracer()
    emit([tracer], TraceEvent.TASK_START, {"task_id": "t"})
    emit([tracer], TraceEvent.TASK_RETRY, {"task_id": "t"})
    emit([tracer], TraceEvent.DISPATCHER_FAILURE, {"dispatcher_id": "d"})
    out, err = capsys.readouterr()
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["TASK_START"]
    assert [json.loads(line)["event"] for line in err.splitlines()] == ["TASK_RETRY", "DISPATCHER_FAILURE"]


def test_json_lines_to_a_stream() -> None:
    stream = io.StringIO()
    tracer = JsonLinesTracer(stream=stream)
    emit([tracer], TraceEvent.TASK_FAILURE, {"task_id": "t"})
    assert json.loads(stream.getvalue())["details"] == {"task_id": "t"}
    with pytest.raises(ValueError):
        JsonLinesTracer("x.jsonl", stream=stream)


def test_json_lines_after_close_fails_like_any_tracer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tracer = JsonLinesTracer(tmp_path / "t.jsonl")
    tracer.close()
    with caplog.at_level(logging.WARNING, logger="selflow.tracing"):
        emit([tracer], TraceEvent.TASK_START, {})
    assert any("failed on TASK_START" in r.getMessage() for r in caplog.records)


# --- function ----------------------------------------------------------------------------------


def test_function_tracer_calls_the_function() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    tracer = FunctionTracer(lambda event, details: calls.append((event, details)), name="mine")
    emit([tracer], TraceEvent.NODE_FAILURE, {"node_name": "A", "what": "boom"})
    [(event, details)] = calls
    assert event == "NODE_FAILURE" and details["node_name"] == "A" and details["event"] == "NODE_FAILURE"
    assert repr(tracer) == "FunctionTracer(mine)"


def test_function_tracer_from_options_imports_once() -> None:
    tracer = FunctionTracer.from_options({"import": "json", "name": "dumps"})
    assert tracer.func is json.dumps
    with pytest.raises(TraceBackendError):
        FunctionTracer(3)  # type: ignore[arg-type]


# --- storage -----------------------------------------------------------------------------------


class AuditAdapter:
    """A tiny storage adapter: the collaborator of the tracer under test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def trace(self, event: str, details: dict[str, Any]) -> None:
        self.calls.append((event, details))

    def write_audit(self, event: str, details: dict[str, Any]) -> None:
        self.calls.append(("audit", details))


class CountingPool:
    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.asked = 0

    def adapter_for_storage(self, name: str) -> Any:
        assert name == "Audit"
        self.asked += 1
        return self.adapter


def test_storage_tracer_calls_the_adapter_method_and_fetches_it_once() -> None:
    adapter = AuditAdapter()
    pool = CountingPool(adapter)
    tracer = StorageTracer(pool, "Audit")
    assert pool.asked == 0
    emit([tracer], TraceEvent.TASK_END, {"task_id": "t1"})
    emit([tracer], TraceEvent.FLOW_END, {"result": {}})
    assert pool.asked == 1
    assert [(e, d["event"]) for e, d in adapter.calls] == [("TASK_END", "TASK_END"), ("FLOW_END", "FLOW_END")]


def test_storage_tracer_with_another_method() -> None:
    adapter = AuditAdapter()
    emit([StorageTracer(CountingPool(adapter), "Audit", method="write_audit")], TraceEvent.TASK_END, {})
    assert [e for e, _ in adapter.calls] == ["audit"]


def test_storage_tracer_without_the_method(caplog: pytest.LogCaptureFixture) -> None:
    tracer = StorageTracer(CountingPool(object()), "Audit", method="nope")
    with pytest.raises(TraceBackendError, match=r"storage 'Audit' \(object\) has no method 'nope'"):
        tracer("TASK_END", {})
    with caplog.at_level(logging.WARNING, logger="selflow.tracing"):
        emit([tracer], TraceEvent.TASK_END, {})  # through emit: logged, not raised
    assert any("failed on TASK_END" in r.getMessage() for r in caplog.records)
