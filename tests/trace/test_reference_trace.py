"""The JSON-lines trace of a reference flow, checked line by line.

``analyze_page`` (config/) runs embedded on ``https://shop.acme.test/broken``: FetchPage fails,
is retried once, fails for good, and the fallback RecordDeadLink records the dead link. A
``JsonLinesTracer`` writes every event to a file; the test reads the file back and checks each
line: the event, and its whole payload. Ids are random, so they are checked for consistency
instead: a placeholder such as ``{flow}`` takes the value it first meets, every later use must
be the same value, and two placeholders never share a value.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.runtime.embedded import EmbeddedRunner
from selflow.trace.jsonlines import JsonLinesTracer

ROOT = Path(__file__).resolve().parents[2]
URL = "https://shop.acme.test/broken"
ERROR = f"PageFetchError: {URL}: connection reset by peer"
FLOW = {"flow_name": "analyze_page", "dispatcher_id": "{flow}"}
FETCH = {**FLOW, "task_name": "FetchPage", "task_id": "{fetch}"}
DEAD = {**FLOW, "task_name": "RecordDeadLink", "task_id": "{dead}"}
STORE = {"storage_name": "Results", "flow_name": "analyze_page", "storage_task_name": "RecordDeadLink",
         "task_name": "RecordDeadLink", "task_id": "{dead}"}


def _traceback_of_the_fetch_error(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("Traceback (most recent call last):") \
        and text.rstrip("\n").endswith(f"acme.tasks.{ERROR}")


#: Every line of the trace, in order: the event and its whole payload (less `event` and `time`).
EXPECTED: list[tuple[str, dict[str, Any]]] = [
    ("FLOW_SCHEDULE", {**FLOW, "node_args": {"url": URL}, "parent": None}),
    ("DISPATCHER_WAKEUP", {"dispatcher_id": "{flow}"}),
    ("FLOW_START", {**FLOW, "node_args": {"url": URL}, "parent": {}, "retried_count": 0}),
    ("TASK_SCHEDULE", {**FETCH, "parent": {}, "queue": "celery"}),
    ("SAFETY_TICK", {**FLOW, "countdown": 2.0}),
    # the first attempt fails; max_retry: 1 with no countdown runs it again at once
    ("TASK_START", {**FETCH, "parent": {}, "node_args": {"url": URL}, "retried_count": 0}),
    ("TASK_RETRY", {**FETCH, "countdown": 0, "retried_count": 0, "max_retry": 1, "what": ERROR}),
    ("TASK_START", {**FETCH, "parent": {}, "node_args": {"url": URL}, "retried_count": 1}),
    # the second attempt fails for good: its error goes to the Results storage (connected now)
    ("STORAGE_CONNECT", {"storage_name": "Results"}),
    ("STORAGE_STORE_ERROR", {"storage_name": "Results", "flow_name": "analyze_page", "task_name": "FetchPage",
                             "task_id": "{fetch}", "storage_task_name": "FetchPage", "record_id": "{fetch}",
                             "what": _traceback_of_the_fetch_error}),
    ("TASK_FAILURE", {**FETCH, "what": ERROR}),
    ("DISPATCHER_INLINE_STEP", {**FLOW, "task_id": "{fetch}", "events": 1}),
    ("NODE_FAILURE", {**FLOW, "node_name": "FetchPage", "node_id": "{fetch}", "what": ERROR}),
    ("FALLBACK_COND_TRUE", {**FLOW, "condition_str": "always_true()", "nodes": ["FetchPage"]}),
    ("FALLBACK_START", {**FLOW, "nodes": ["FetchPage"], "fallback": ["RecordDeadLink"]}),
    ("TASK_SCHEDULE", {**DEAD, "parent": {"FetchPage": "{fetch}"}, "queue": "celery"}),
    ("TASK_START", {**DEAD, "parent": {"FetchPage": "{fetch}"}, "node_args": {"url": URL}, "retried_count": 0}),
    ("STORAGE_STORE", STORE),
    ("STORAGE_STORED", {**STORE, "record_id": "{dead}"}),
    ("TASK_END", {**DEAD, "storage_name": "Results", "record_id": "{dead}"}),
    ("DISPATCHER_INLINE_STEP", {**FLOW, "task_id": "{dead}", "events": 1}),
    ("NODE_SUCCESSFUL", {**FLOW, "node_name": "RecordDeadLink", "node_id": "{dead}"}),
    ("FLOW_END", {**FLOW, "result": {"finished_nodes": {"RecordDeadLink": ["{dead}"]},
                                     "failed_nodes": {"FetchPage": ["{fetch}"]}}}),
]


class Ids:
    """Binds ``{name}`` placeholders to the ids they meet, one distinct id per placeholder."""

    def __init__(self) -> None:
        self.bound: dict[str, str] = {}

    def match(self, expected: Any, actual: Any, where: str) -> None:
        if callable(expected):
            assert expected(actual), f"{where}: unexpected value {actual!r}"
        elif isinstance(expected, str) and expected.startswith("{") and expected.endswith("}"):
            assert isinstance(actual, str) and len(actual) == 32 and int(actual, 16) >= 0, f"{where}: {actual!r}"
            if expected in self.bound:
                assert actual == self.bound[expected], f"{where}: {expected} was {self.bound[expected]}, now {actual}"
            else:
                assert actual not in self.bound.values(), f"{where}: {actual} is already another id"
                self.bound[expected] = actual
        elif isinstance(expected, dict):
            got = sorted(actual) if isinstance(actual, dict) else actual
            assert isinstance(actual, dict) and set(actual) == set(expected), f"{where}: {got!r}, not {sorted(expected)}"
            for key in expected:
                self.match(expected[key], actual[key], f"{where}.{key}")
        elif isinstance(expected, list):
            assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
            for index, (want, got) in enumerate(zip(expected, actual)):
                self.match(want, got, f"{where}[{index}]")
        else:
            assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


@pytest.fixture(scope="module")
def trace_lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Any]:
    path = tmp_path_factory.mktemp("reference-trace") / "analyze_page.jsonl"
    tables = compile_tables(load_system([str(ROOT / "config")]))
    tracer = JsonLinesTracer(path)
    try:
        state = EmbeddedRunner(tables, tracers=(tracer,)).run_flow("analyze_page", {"url": URL}, timeout=30)
    finally:
        tracer.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines], state


def test_the_flow_succeeds_through_its_fallback(trace_lines: tuple[list[dict[str, Any]], Any]) -> None:
    _, state = trace_lines
    assert state.status == "success"
    result = state.result()
    assert sorted(result["finished_nodes"]) == ["RecordDeadLink"] and sorted(result["failed_nodes"]) == ["FetchPage"]


def test_event_names_in_order(trace_lines: tuple[list[dict[str, Any]], Any]) -> None:
    records, _ = trace_lines
    assert [record["event"] for record in records] == [event for event, _ in EXPECTED]


def test_each_line_event_by_event(trace_lines: tuple[list[dict[str, Any]], Any]) -> None:
    records, state = trace_lines
    assert len(records) == len(EXPECTED)
    ids = Ids()
    for index, (record, (event, details)) in enumerate(zip(records, EXPECTED)):
        where = f"line {index + 1} ({event})"
        assert set(record) == {"event", "time", "host", "details"}, where
        assert record["event"] == event, where
        assert record["host"] == socket.gethostname(), where
        ids.match(details, record["details"], where)
    # the placeholders are the run's real ids
    result = state.result()
    assert ids.bound == {"{flow}": state.flow_id, "{fetch}": result["failed_nodes"]["FetchPage"][0],
                         "{dead}": result["finished_nodes"]["RecordDeadLink"][0]}


def test_times_are_utc_and_in_order(trace_lines: tuple[list[dict[str, Any]], Any]) -> None:
    records, _ = trace_lines
    times = [datetime.fromisoformat(record["time"]) for record in records]
    assert all(time.utcoffset() is not None and time.utcoffset().total_seconds() == 0 for time in times)
    assert times == sorted(times)


def test_the_fetch_failure_and_its_retry(trace_lines: tuple[list[dict[str, Any]], Any]) -> None:
    records, _ = trace_lines
    fetch: Callable[[str], list[dict[str, Any]]] = lambda event: [  # noqa: E731
        r["details"] for r in records if r["event"] == event and r["details"].get("task_name") == "FetchPage"]
    retry, = fetch("TASK_RETRY")
    failure, = fetch("TASK_FAILURE")
    assert retry["what"] == failure["what"] == ERROR
    assert [start["retried_count"] for start in fetch("TASK_START")] == [0, 1]
    assert not fetch("TASK_END")
