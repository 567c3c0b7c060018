"""The built-in predicates: one truth table over every canonical name and every Selinon alias."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import selflow.predicates as predicates
from selflow.predicates import BUILTIN_PREDICATES, SELINON_ALIASES, PredicateSignature, predicate_parameters


class Explodes:
    """A value whose comparison raises, to check that exceptions become False."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("boom")

    __hash__ = object.__hash__


#: One parent result (and, for the ``args_*`` rows, the same data as flow arguments).
DATA: dict[str, Any] = {
    "name": "selflow",
    "count": 3,
    "ratio": 0.5,
    "flag": True,
    "none": None,
    "items": [1, 2, 3],
    "meta": {"url": "https://example.org:8443/a/b?q=1", "tags": ["x", {"deep": 7}]},
    "odd": Explodes(),
}

#: Field rows: (suffix, key, extra args, expected). Each is checked as ``field_<suffix>`` on
#: ``message`` and as ``args_field_<suffix>`` on ``node_args``.
FIELD_ROWS: list[tuple[str, Any, dict[str, Any], bool]] = [
    ("exist", "name", {}, True),
    ("exist", "none", {}, True),
    ("exist", ["meta", "tags", 1, "deep"], {}, True),
    ("exist", "nope", {}, False),
    ("exist", ["meta", "nope"], {}, False),
    ("exist", ["meta", "tags", 5], {}, False),
    ("exist", ["name", 0], {}, False),  # a string is a leaf, not a list of characters
    ("equal", "name", {"value": "selflow"}, True),
    ("equal", ["meta", "tags", 0], {"value": "x"}, True),
    ("equal", ["meta", "tags", 1, "deep"], {"value": 7}, True),
    ("equal", "count", {"value": 4}, False),
    ("equal", "nope", {"value": None}, False),  # missing is not "equal to None"
    ("equal", "odd", {"value": 1}, False),  # __eq__ raises
    ("not_equal", "count", {"value": 4}, True),
    ("not_equal", "count", {"value": 3}, False),
    ("not_equal", "nope", {"value": 3}, False),  # missing key: False, not "not equal"
    ("greater", "count", {"value": 2}, True),
    ("greater", "count", {"value": 3}, False),
    ("greater", "name", {"value": 1}, False),  # str > int raises TypeError
    ("greater_equal", "count", {"value": 3}, True),
    ("greater_equal", "count", {"value": 4}, False),
    ("less", "count", {"value": 4}, True),
    ("less", "count", {"value": 3}, False),
    ("less_equal", "count", {"value": 3}, True),
    ("less_equal", "count", {"value": 2}, False),
    ("less_equal", "nope", {"value": 5}, False),
    ("contain", "items", {"value": 2}, True),
    ("contain", "name", {"value": "elf"}, True),
    ("contain", "items", {"value": 9}, False),
    ("contain", "count", {"value": 1}, False),  # int is not a container
    ("len_equal", "items", {"length": 3}, True),
    ("len_equal", "items", {"length": 2}, False),
    ("len_equal", "count", {"length": 1}, False),  # len(int) raises
    ("len_not_equal", "items", {"length": 2}, True),
    ("len_not_equal", "items", {"length": 3}, False),
    ("len_greater", "items", {"length": 2}, True),
    ("len_greater", "items", {"length": 3}, False),
    # Selinon's *LenGreaterEqual tested <= and *LenLessEqual did not exist: both directions here.
    ("len_greater_equal", "items", {"length": 2}, True),
    ("len_greater_equal", "items", {"length": 3}, True),
    ("len_greater_equal", "items", {"length": 4}, False),
    ("len_less", "items", {"length": 4}, True),
    ("len_less", "items", {"length": 3}, False),
    ("len_less_equal", "items", {"length": 4}, True),
    ("len_less_equal", "items", {"length": 3}, True),
    ("len_less_equal", "items", {"length": 2}, False),
    ("bool", "flag", {}, True),
    ("bool", "count", {}, False),
    ("dict", "meta", {}, True),
    ("dict", "items", {}, False),
    ("float", "ratio", {}, True),
    ("float", "count", {}, False),
    ("int", "count", {}, True),
    ("int", "flag", {}, False),  # a bool is not an int here
    ("int", "ratio", {}, False),
    ("list", "items", {}, True),
    ("list", "meta", {}, False),
    ("str", "name", {}, True),
    ("str", "count", {}, False),
    ("none", "none", {}, True),
    ("none", "count", {}, False),
    ("none", "nope", {}, False),
    ("url_scheme", ["meta", "url"], {"scheme": "https"}, True),
    ("url_scheme", ["meta", "url"], {"scheme": "http"}, False),
    ("url_scheme", "count", {"scheme": "https"}, False),  # not a URL
    ("url_netloc", ["meta", "url"], {"netloc": "example.org:8443"}, True),
    ("url_netloc", ["meta", "url"], {"netloc": "example.org"}, False),
    ("url_path", ["meta", "url"], {"path": "/a/b"}, True),
    ("url_path", ["meta", "url"], {"path": "/a"}, False),
]

#: Whole-value rows: (name, value, expected), checked on ``message`` and, as ``args_<name>``, on ``node_args``.
VALUE_ROWS: list[tuple[str, Any, bool]] = [
    ("is_bool", True, True),
    ("is_bool", 1, False),
    ("is_dict", {}, True),
    ("is_dict", [], False),
    ("is_float", 1.5, True),
    ("is_float", 1, False),
    ("is_int", 1, True),
    ("is_int", True, False),
    ("is_int", 1.0, False),
    ("is_list", [], True),
    ("is_list", (), False),
    ("is_str", "", True),
    ("is_str", b"", False),
    ("is_none", None, True),
    ("is_none", 0, False),
    # Selinon's empty() was inverted; here it is True for an empty value.
    ("empty", None, True),
    ("empty", {}, True),
    ("empty", [], True),
    ("empty", "", True),
    ("empty", {"a": 1}, False),
    ("empty", [0], False),
    ("empty", "x", False),
    ("empty", 0, False),  # a number is a value, not an empty container
]

SERVER = "<test http server>"
SET_VAR, UNSET_VAR = "SELFLOW_TEST_PREDICATE_SET", "SELFLOW_TEST_PREDICATE_UNSET"

#: Rows for the predicates that read neither message nor node_args.
OTHER_ROWS: list[tuple[str, dict[str, Any], bool]] = [
    ("always_true", {}, True),
    ("always_false", {}, False),
    ("env_exist", {"env": SET_VAR}, True),
    ("env_exist", {"env": UNSET_VAR}, False),
    ("env_equal", {"env": SET_VAR, "value": "yes"}, True),
    ("env_equal", {"env": SET_VAR, "value": "no"}, False),
    ("env_equal", {"env": UNSET_VAR, "value": ""}, False),
    ("http_status", {"host": SERVER, "path": "/ok", "status": 200}, True),
    ("http_status", {"host": SERVER, "path": "ok", "status": 200}, True),
    ("http_status", {"host": SERVER, "path": "/ok", "status": 404}, False),
    ("http_status", {"host": SERVER, "path": "/missing", "status": 404}, True),
    ("http_status", {"host": SERVER, "path": "/moved", "status": 301}, True),  # not followed
    ("http_status", {"host": SERVER, "path": "/moved", "status": 200}, False),
]


def _truth_table() -> list[tuple[str, dict[str, Any], bool]]:
    rows: list[tuple[str, dict[str, Any], bool]] = []
    for suffix, key, extra, expected in FIELD_ROWS:
        rows.append((f"field_{suffix}", {"message": DATA, "key": key, **extra}, expected))
        rows.append((f"args_field_{suffix}", {"node_args": DATA, "key": key, **extra}, expected))
    for name, value, expected in VALUE_ROWS:
        rows.append((name, {"message": value}, expected))
        rows.append((f"args_{name}", {"node_args": value}, expected))
    rows.extend(OTHER_ROWS)
    canonical = list(rows)
    aliases = {name: alias for alias, name in SELINON_ALIASES.items()}
    rows.extend((aliases[name], kwargs, expected) for name, kwargs, expected in canonical if name in aliases)
    return rows


TRUTH_TABLE = _truth_table()


def _row_id(row: tuple[str, dict[str, Any], bool]) -> str:
    name, kwargs, expected = row
    shown = {k: v for k, v in kwargs.items() if k not in ("message", "node_args")}
    return f"{name}-{shown}-{expected}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 (name fixed by http.server)
        self.server.methods.append(self.command)  # type: ignore[attr-defined]
        if self.path == "/ok":
            self.send_response(200)
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/ok")
        else:
            self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.methods = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SET_VAR, "yes")
    monkeypatch.delenv(UNSET_VAR, raising=False)
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)


def test_truth_table_covers_every_name() -> None:
    # Given every canonical name and every Selinon alias
    names = set(BUILTIN_PREDICATES) | set(SELINON_ALIASES)
    # Then each has a row, and no row names something that does not exist
    assert {row[0] for row in TRUTH_TABLE} == names


def test_every_predicate_can_answer_both_ways() -> None:
    answers: dict[str, set[bool]] = {}
    for name, _, expected in TRUTH_TABLE:
        answers.setdefault(name, set()).add(expected)
    one_sided = {"always_true", "always_false", "alwaysTrue", "alwaysFalse"}
    assert {name for name, seen in answers.items() if seen != {True, False}} == one_sided


@pytest.mark.parametrize("row", TRUTH_TABLE, ids=_row_id)
def test_truth_table(row: tuple[str, dict[str, Any], bool], request: pytest.FixtureRequest) -> None:
    name, kwargs, expected = row
    if kwargs.get("host") == SERVER:
        server = request.getfixturevalue("http_server")
        kwargs = {**kwargs, "host": "%s:%d" % server.server_address[:2]}
    # When the predicate is looked up by name on the module, as the generated conditions do
    result = getattr(predicates, name)(**kwargs)
    # Then it answers exactly True or False
    assert result is expected


# Selinon's names, written out from its documentation rather than derived from ours.
SELINON_NAMES = {
    "alwaysTrue", "alwaysFalse", "empty", "argsEmpty", "envExist", "envEqual", "httpStatus",
    *(
        f"{prefix}{suffix}"
        for prefix in ("field", "argsField")
        for suffix in (
            "Exist", "Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual", "Contain",
            "LenEqual", "LenNotEqual", "LenGreater", "LenGreaterEqual", "LenLess", "LenLessEqual",
            "Bool", "Dict", "Float", "Int", "List", "Str", "None", "UrlScheme", "UrlNetloc", "UrlPath",
        )
    ),
    *(
        f"{prefix}{kind}"
        for prefix in ("is", "argsIs")
        for kind in ("Bool", "Dict", "Float", "Int", "List", "Str", "None")
    ),
}


def test_selinon_names_are_all_aliases() -> None:
    assert set(SELINON_ALIASES) == SELINON_NAMES - {"empty"}
    assert set(SELINON_ALIASES.values()) | {"empty"} == set(BUILTIN_PREDICATES)


def test_names_and_aliases_are_module_attributes() -> None:
    for name, function in BUILTIN_PREDICATES.items():
        assert getattr(predicates, name) is function
        assert function.__name__ == name
    for alias, name in SELINON_ALIASES.items():
        assert getattr(predicates, alias) is BUILTIN_PREDICATES[name]
    assert predicates.fieldLenLessEqual is predicates.field_len_less_equal
    assert predicates.fieldLenGreaterEqual is predicates.field_len_greater_equal


def test_wrong_arguments_raise_instead_of_answering() -> None:
    # A call that does not match the signature is a bug in the caller, not a False.
    with pytest.raises(TypeError):
        predicates.field_equal(message={}, key="a")
    with pytest.raises(TypeError):
        predicates.always_true(unexpected=1)


def test_positional_call_matches_signature_order() -> None:
    assert predicates.field_len_greater_equal({"a": [1, 2, 3]}, "a", 2) is True
    assert predicates.args_field_equal({"a": 1}, "a", 1) is True


def test_http_status_sends_head(http_server: http.server.ThreadingHTTPServer) -> None:
    http_server.methods.clear()  # type: ignore[attr-defined]
    host, port = http_server.server_address[:2]
    assert predicates.http_status(host=f"http://{host}:{port}/", path="/ok", status=200) is True
    assert http_server.methods == ["HEAD"]  # type: ignore[attr-defined]


def test_http_status_is_false_when_nobody_answers() -> None:
    # Given a port that refuses connections
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert predicates.http_status(host=f"127.0.0.1:{closed_port}", path="/", status=200, timeout=1) is False
    # Given a server that accepts the connection but never replies
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        answered = predicates.http_status(host="%s:%d" % silent.getsockname(), path="/", status=200, timeout=0.3)
    # Then the timeout bounds the wait and the answer is False
    assert answered is False
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("name", sorted(BUILTIN_PREDICATES))
def test_parameters_of_every_builtin(name: str) -> None:
    signature = predicate_parameters(BUILTIN_PREDICATES[name])
    reads_result = name.startswith(("field_", "is_")) or name == "empty"
    assert signature.uses_message is reads_result
    assert signature.uses_node_args is name.startswith("args_")
    if "field_" in name:
        assert "key" in signature.required
    assert "message" not in signature.required | signature.optional
    assert "node_args" not in signature.required | signature.optional


def test_parameters_of_selected_builtins() -> None:
    assert predicate_parameters(predicates.field_equal) == PredicateSignature(
        uses_message=True, uses_node_args=False, required=frozenset({"key", "value"}), optional=frozenset()
    )
    assert predicate_parameters(predicates.argsFieldLenLessEqual) == PredicateSignature(
        uses_message=False, uses_node_args=True, required=frozenset({"key", "length"}), optional=frozenset()
    )
    assert predicate_parameters(predicates.http_status) == PredicateSignature(
        uses_message=False,
        uses_node_args=False,
        required=frozenset({"host", "path", "status"}),
        optional=frozenset({"timeout"}),
    )
    assert predicate_parameters(predicates.always_true).required == frozenset()


def test_parameters_of_custom_predicates() -> None:
    def above(message, node_args, threshold, *, scale=1.0):  # type: ignore[no-untyped-def]
        return message * scale > threshold

    def anything(message, **options):  # type: ignore[no-untyped-def]
        return True

    def positional(message, threshold, /):  # type: ignore[no-untyped-def]
        return True

    assert predicate_parameters(above) == PredicateSignature(
        uses_message=True, uses_node_args=True, required=frozenset({"threshold"}), optional=frozenset({"scale"})
    )
    assert predicate_parameters(anything).accepts_any_args is True
    assert predicate_parameters(above).accepts_any_args is False
    with pytest.raises(TypeError, match="positional-only"):
        predicate_parameters(positional)


def test_no_celery_import() -> None:
    code = (
        "import sys, selflow.predicates, selflow.strategies, selflow.routines, selflow.modulepaths;"
        "assert 'celery' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
