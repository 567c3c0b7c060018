"""Shared tools for the dispatcher engine tests.

* ``tables_from_yaml(text)`` compiles a small configuration. The text needs only the
  ``flow-definitions`` (and whatever it wants to set explicitly): every node name that is not a
  flow becomes a task with a result storage, ``flows`` lists every defined flow, and
  ``global.predicates_module`` is ``engine_helpers`` (the custom predicates next to this file;
  the built-in predicates stay available). Tasks are never imported by the engine, so their
  module does not exist.
* ``Driver`` runs one flow through ``step``: node ids are ``n0, n1, ...`` in start order,
  results live in a dict, and helpers find started nodes by name and report them.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import engine_helpers  # noqa: E402

from selflow.codegen import load_system  # noqa: E402
from selflow.codegen.compiled import compile_tables  # noqa: E402
from selflow.dispatcher.engine import StepContext, step  # noqa: E402
from selflow.dispatcher.records import (  # noqa: E402
    Action,
    Event,
    FlowFailed,
    FlowState,
    FlowSucceeded,
    NodeFailed,
    NodeSucceeded,
    Note,
    Revoke,
    ScheduleTick,
    StartFlow,
    StartTask,
)
from selflow.errors import StorageError  # noqa: E402
from selflow.tables import SystemTables  # noqa: E402

MISSING_TASK_MODULE = "engine_tests_no_such_module"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_KEEP = object()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: compiles very large flows (about half a minute); "
                                       "deselect with -m 'not slow'")


@pytest.fixture(autouse=True)
def _clean_helpers():
    engine_helpers.CALLS.clear()
    engine_helpers.REUSE.clear()
    yield
    engine_helpers.CALLS.clear()
    engine_helpers.REUSE.clear()


def _names(value: Any) -> list[str]:
    if value is None or value is True or value is False:
        return []
    return [value] if isinstance(value, str) else list(value)


def complete_config(text: str) -> dict[str, Any]:
    """The configuration in ``text`` with the boilerplate sections filled in."""
    config = yaml.load(textwrap.dedent(text), Loader=_LOADER)
    definitions = config["flow-definitions"]
    flow_names = [flow["name"] for flow in definitions]
    used: dict[str, None] = {}
    for flow in definitions:
        for edge in flow.get("edges", ()):
            for name in (*_names(edge.get("from")), *_names(edge.get("to"))):
                used[name] = None
        for entry in flow.get("failures", ()) or ():
            for name in (*_names(entry.get("nodes")), *_names(entry.get("fallback"))):
                used[name] = None
    tasks = list(config.get("tasks") or [])
    declared = {task["name"] for task in tasks}
    for name in used:
        if name not in flow_names and name not in declared:
            tasks.append({"name": name, "import": MISSING_TASK_MODULE, "storage": "Results"})
    config["tasks"] = tasks
    config.setdefault("flows", flow_names)
    storages = list(config.get("storages") or [])
    if not any(storage["name"] == "Results" for storage in storages):
        storages.append({"name": "Results", "import": "engine_tests_no_such_storage", "classname": "Results"})
    config["storages"] = storages
    config.setdefault("global", {}).setdefault("predicates_module", "engine_helpers")
    return config


_files = itertools.count()


@pytest.fixture
def tables_from_yaml(tmp_path: Path) -> Callable[[str], SystemTables]:
    """Load and compile a configuration given as YAML text (see the module docstring)."""

    def build(text: str) -> SystemTables:
        path = tmp_path / f"config{next(_files)}.yml"
        path.write_text(yaml.dump(complete_config(text), Dumper=_DUMPER, sort_keys=False), encoding="utf-8")
        return compile_tables(load_system([str(path)]))

    return build


class Driver:
    """Drives one flow through ``step``, keeping results in a dict and ids deterministic."""

    def __init__(self, tables: SystemTables, flow: str, node_args: Any = None, *, parent: dict | None = None,
                 selective: dict | None = None, flow_id: str = "flow0", results: dict | None = None):
        self.tables = tables
        self.state = FlowState.new(flow_id, flow, node_args, parent=parent, selective=selective)
        self.results: dict[str, Any] = dict(results or {})
        self.broken_reads: set[str] = set()
        self.reads: list[str] = []
        self._ids = itertools.count()
        self.context = StepContext(results=self, new_id=lambda: f"n{next(self._ids)}")
        self.history: list[Action] = []
        self.last: list[Action] = []

    # the result reader the engine sees
    def result(self, node_id: str) -> Any:
        self.reads.append(node_id)
        if node_id in self.broken_reads:
            raise StorageError(f"cannot read {node_id}")
        return self.results.get(node_id)

    # --- driving --------------------------------------------------------------------------

    def step(self, *events: Event) -> list[Action]:
        self.state, self.last = step(self.tables, self.state, list(events), self.context)
        self.history.extend(self.last)
        return self.last

    def start(self) -> list[Action]:
        """The first step (or the tick that restarts a retried flow)."""
        return self.step()

    def succeed(self, *nodes: Any, result: Any = _KEEP) -> list[Action]:
        """Report nodes (ids or start actions) as finished in one step, each with ``result`` if
        given (otherwise whatever ``results`` already holds for it, or None)."""
        ids = [_id(node) for node in nodes]
        if result is not _KEEP:
            for node_id in ids:
                self.results[node_id] = result
        return self.step(*(NodeSucceeded(node_id) for node_id in ids))

    def fail(self, *nodes: Any, error: str = "boom") -> list[Action]:
        return self.step(*(NodeFailed(_id(node), error) for node in nodes))

    # --- looking at actions -----------------------------------------------------------------

    def starts(self, name: str | None = None, *, everything: bool = False) -> list[StartTask | StartFlow]:
        """Start actions of the last step (or of the whole run) for ``name`` (or all)."""
        actions = self.history if everything else self.last
        return [a for a in actions if isinstance(a, (StartTask, StartFlow)) and (name is None or a.name == name)]

    def started_names(self, *, everything: bool = False) -> list[str]:
        return [a.name for a in self.starts(everything=everything)]

    def one(self, name: str) -> StartTask | StartFlow:
        """The only start of ``name`` in the last step."""
        found = self.starts(name)
        assert len(found) == 1, f"expected one start of {name}, got {found} in {self.last}"
        return found[0]

    def of_type(self, kind: type, *, everything: bool = False) -> list[Any]:
        return [a for a in (self.history if everything else self.last) if isinstance(a, kind)]

    def notes(self, event: str, *, everything: bool = False) -> list[Note]:
        return [n for n in self.of_type(Note, everything=everything) if n.event == event]

    def work(self) -> list[Action]:
        """The last step's actions without the Notes (what the runtime has to carry out)."""
        return [a for a in self.last if not isinstance(a, Note)]

    @property
    def succeeded(self) -> FlowSucceeded | None:
        found = self.of_type(FlowSucceeded)
        return found[0] if found else None

    @property
    def failed(self) -> FlowFailed | None:
        found = self.of_type(FlowFailed)
        return found[0] if found else None

    @property
    def ended(self) -> bool:
        return bool(self.of_type(FlowSucceeded) or self.of_type(FlowFailed))

    def revoked(self) -> list[str]:
        return [node_id for a in self.of_type(Revoke) for node_id in a.node_ids]

    def ticks(self) -> list[ScheduleTick]:
        return self.of_type(ScheduleTick)


def _id(node: Any) -> str:
    return node if isinstance(node, str) else node.node_id


@pytest.fixture
def drive() -> Callable[..., Driver]:
    """``drive(tables, flow, node_args=None, parent=, selective=, flow_id=, results=)`` -> a Driver."""
    return Driver
