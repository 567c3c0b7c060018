"""Property test: whatever a configuration file holds, the validator reports ``ConfigError``.

A valid single-file configuration is mutated at random (characters deleted, duplicated or
replaced, lines swapped or re-indented, YAML tokens inserted, keys renamed, scalars replaced by
values of other types) and loaded. Loading must either succeed or raise ``ConfigError``; any
other exception is a validator bug.
"""

from __future__ import annotations

import copy
import traceback

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selflow.codegen import load_system
from selflow.errors import ConfigError

BASE = """\
tasks:
  - name: Fetch
    import: acme.tasks
    storage: Results
    max_retry: 2
    retry_countdown: 5
    queue: '{SELFLOW_PROPERTY_QUEUE}_fetch'
    throttling: {seconds: 3}
  - name: Parse
    import: acme.tasks
    storage: Results
    storage_task_name: Parsed
  - name: Notify
    import: acme.tasks
    selective_run_function: {name: always_run, import: selinon.routines}
  - name: Cleanup
    import: acme.tasks

flows: [main, sub]

storages:
  - name: Results
    import: selinon.storages.memory
    classname: InMemoryStorage
    configuration: {echo: false}
    cache: {name: LRU, configuration: {max_cache_size: 8}}

global:
  default_dispatcher_queue: dispatch
  trace:
    - logging: true
    - storage: {name: Results, method: trace}

x-defaults: &defaults
  max_retry: 1

flow-definitions:
  - name: main
    nowait: Notify
    propagate_node_args: [sub]
    propagate_finished: sub
    sampling: {name: constant, args: {retry: 3}}
    cache: {name: LRU, configuration: {max_cache_size: 4}}
    edges:
      - from:
        to: Fetch
      - from: Fetch
        to: [Parse, sub]
        condition:
          and:
            - name: fieldExist
              args: {key: [payload, body]}
            - not: {name: argsFieldEqual, args: {key: dry_run, value: true}}
      - from: [Parse, sub]
        to: Notify
        condition: {name: fieldEqual, node: Parse, args: {key: ok, value: true}}
    failures:
      - nodes: Fetch
        fallback: Cleanup
        condition: {name: envExist, args: {env: HOME}}
      - nodes: [Parse]
        fallback: true
  - name: sub
    node_args_from_first: true
    eager_failures: Fetch
    edges:
      - from:
        to: Fetch
      - from: Fetch
        to: Parse
        foreach: {function: split, import: acme.foreach}
"""

LINES = BASE.splitlines(keepends=True)

#: Every key of the format, so a renamed key often lands on another real one.
KEYS = [
    "name", "import", "classname", "storage", "storage_readonly", "storage_task_name", "output_schema",
    "max_retry", "retry_countdown", "queue", "throttling", "selective_run_function", "configuration", "cache",
    "predicates_module", "default_task_queue", "default_dispatcher_queue", "migration_dir", "trace", "logging",
    "json", "function", "sentry", "dsn", "edges", "failures", "nowait", "eager_failures", "node_args_from_first",
    "propagate_node_args", "propagate_parent", "propagate_finished", "propagate_compound_finished",
    "propagate_failures", "propagate_compound_failures", "propagate_parent_failures", "sampling", "args", "from",
    "to", "condition", "foreach", "selective", "tasks", "follow_subflows", "run_subsequent", "nodes", "fallback",
    "propagate_failure", "and", "or", "not", "node", "flows", "storages", "global", "flow-definitions", "seconds",
    "max_cache_size", "propagate_result", "x-extra", "<<",
]

TOKENS = [
    ":", ": ", "- ", "-", "[", "]", "{", "}", ",", "\t", "&a ", "*a", "&b [1]", "<<: *a", "<<: *defaults",
    "!!python/object:os.system ", "!!python/name:os.system", "!!binary ", "!!set ", "!!int ", "!!float ",
    "!!timestamp ", "!!str ", "!!map ", "!!seq ", "? ", "|\n", ">\n", "#", "%YAML 1.1\n", "---\n", "...\n",
    "'", '"', "\\", "{", "null", "~", "true", "no", "0x1F", "1e400", ".nan", "-.inf", "2001-12-14",
    "2001-99-99", "\n", "  ", "\u00e9", "\u2028", "\ufeff", "\x00", "\x85", "💥", "%", "@", "`", "{HOME}", "{}",
    "{0}", "{!r}", "{a.b}", "{a[0]}",
]

SCALARS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "~", "[]", "{}", "[a, b]", "{a: 1}", "''", "-1", "0", ".inf",
                     "2020-01-01", "[[1]]", "{name: x}", "[Fetch, Fetch]", "Fetch", "main", "sub", "Cleanup",
                     "selinon.predicates", "os", "constant", "LRU", "'{UNSET_VAR_X}'", "'{'", "'}'"]),
    st.text(max_size=12).map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


def _position(data: st.DataObject, text: str) -> int:
    return data.draw(st.integers(min_value=0, max_value=len(text)))


def _line_index(data: st.DataObject, lines: list[str]) -> int:
    return data.draw(st.integers(min_value=0, max_value=max(len(lines) - 1, 0)))


def mutate(data: st.DataObject, text: str) -> str:
    kind = data.draw(st.sampled_from([
        "delete", "duplicate", "replace_char", "swap_lines", "insert_token", "insert_text", "indent",
        "scalar", "rename_key", "drop_line", "duplicate_line",
    ]))
    lines = text.splitlines(keepends=True) or [""]
    if kind == "delete":
        start = _position(data, text)
        return text[:start] + text[start + data.draw(st.integers(1, 20)):]
    if kind == "duplicate":
        start = _position(data, text)
        end = min(len(text), start + data.draw(st.integers(1, 40)))
        return text[:end] + text[start:end] + text[end:]
    if kind == "replace_char":
        at = _position(data, text)
        return text[:at] + data.draw(st.characters()) + text[at + 1:]
    if kind == "swap_lines":
        i, j = _line_index(data, lines), _line_index(data, lines)
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    if kind == "insert_token":
        at = _position(data, text)
        return text[:at] + data.draw(st.sampled_from(TOKENS)) + text[at:]
    if kind == "insert_text":
        at = _position(data, text)
        return text[:at] + data.draw(st.text(max_size=8)) + text[at:]
    if kind == "indent":
        i = _line_index(data, lines)
        change = data.draw(st.integers(-4, 4))
        lines[i] = (" " * change + lines[i]) if change >= 0 else lines[i][min(-change, len(lines[i]) - len(
            lines[i].lstrip(" "))):]
        return "".join(lines)
    if kind == "scalar":
        candidates = [i for i, line in enumerate(lines) if ": " in line or line.rstrip().endswith(":")]
        if not candidates:
            return text
        i = data.draw(st.sampled_from(candidates))
        key, _, _ = lines[i].partition(":")
        return "".join(lines[:i] + [f"{key}: {data.draw(SCALARS)}\n"] + lines[i + 1:])
    if kind == "rename_key":
        candidates = [i for i, line in enumerate(lines) if ":" in line]
        if not candidates:
            return text
        i = data.draw(st.sampled_from(candidates))
        key, _, rest = lines[i].partition(":")
        indent = key[: len(key) - len(key.lstrip(" -"))]
        return "".join(lines[:i] + [f"{indent}{data.draw(st.sampled_from(KEYS))}:{rest}"] + lines[i + 1:])
    if kind == "drop_line":
        del lines[_line_index(data, lines)]
        return "".join(lines)
    i = _line_index(data, lines)  # duplicate_line
    lines.insert(i, lines[i])
    return "".join(lines)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("property") / "config.yml"


def test_base_config_is_valid(config_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFLOW_PROPERTY_QUEUE", "prop")
    config_path.write_text(BASE, encoding="utf-8")
    system = load_system([str(config_path)])
    assert [flow.name for flow in system.flows] == ["main", "sub"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_config_gives_config_error_or_loads(data: st.DataObject, config_path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFLOW_PROPERTY_QUEUE", "prop")
    text = BASE
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="mutations")):
        text = mutate(data, text)
    config_path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    try:
        load_system([str(config_path)])
    except ConfigError as error:
        assert error.issues, "a ConfigError must list at least one issue"
        for issue in error.issues:
            assert str(issue).startswith(str(config_path)), issue
    except Exception:  # noqa: BLE001 - anything else is the bug this test hunts for
        pytest.fail(f"load_system crashed on:\n{text}\n\n{traceback.format_exc()}")


# --- structural mutations: any value anywhere replaced by a value of another shape ----------------

NAMES = st.sampled_from(["Fetch", "Parse", "Notify", "Cleanup", "main", "sub", "Results", "Nope", "x-y", "1a"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=6) | NAMES,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


def _locations(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _locations(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _locations(child, path + (index,))


BASE_DOC = yaml.safe_load(BASE)
LOCATIONS = [path for path in _locations(BASE_DOC) if path]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_values_of_the_wrong_shape_give_config_error_or_load(data: st.DataObject, config_path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFLOW_PROPERTY_QUEUE", "prop")
    doc = copy.deepcopy(BASE_DOC)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="changes")):
        path = data.draw(st.sampled_from(LOCATIONS), label="where")
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if data.draw(st.booleans(), label="delete"):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(VALUES, label="value")
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or reshaped this place
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    config_path.write_text(text, encoding="utf-8")
    try:
        load_system([str(config_path)])
    except ConfigError as error:
        assert error.issues, "a ConfigError must list at least one issue"
    except Exception:  # noqa: BLE001 - anything else is the bug this test hunts for
        pytest.fail(f"load_system crashed on:\n{text}\n\n{traceback.format_exc()}")
