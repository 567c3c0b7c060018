"""User code that the engine tests' YAML names: foreach functions, predicates, selective-run
functions and sampling strategies. Importable as ``engine_helpers`` (conftest puts this folder on
``sys.path``). Functions that the tests want to watch record their calls in ``CALLS``.
"""

from __future__ import annotations

from typing import Any

#: name -> list of call arguments, cleared before every test by conftest
CALLS: dict[str, list[Any]] = {}

#: selective-run answers: node name -> id of an earlier run to reuse (set by tests)
REUSE: dict[str, str] = {}


def _record(name: str, *args: Any) -> None:
    CALLS.setdefault(name, []).append(args)


# --- foreach functions: (results, node_args) -> iterable --------------------------------


def items_from_args(results: Any, node_args: Any) -> Any:
    """The flow arguments' ``items`` (None when missing)."""
    _record("items_from_args", node_args)
    return None if node_args is None else node_args.get("items")


def items_from_parent(results: Any, node_args: Any) -> Any:
    """The ``items`` of the result of the parent task ``Split``."""
    return (results.get("Split") or {}).get("items")


def count_from_args(results: Any, node_args: Any) -> Any:
    """``range(node_args['count'])``: a generator-like iterable, not a list."""
    return range(node_args["count"])


def broken_foreach(results: Any, node_args: Any) -> Any:
    raise RuntimeError("foreach exploded")


def not_iterable(results: Any, node_args: Any) -> Any:
    return 42


# --- predicates (global.predicates_module) -----------------------------------------------


def arg_is(node_args: Any, key: str, value: Any) -> bool:
    return isinstance(node_args, dict) and node_args.get(key) == value


def result_is(message: Any, key: str, value: Any) -> bool:
    return isinstance(message, dict) and message.get(key) == value


def explode(node_args: Any) -> bool:
    raise ValueError("predicate exploded")


def explode_on_result(message: Any) -> bool:
    raise ValueError("predicate exploded on a result")


# --- selective-run functions --------------------------------------------------------------


def reuse_from_table(flow_name: str, node_name: str, node_args: Any, task_names: Any, results: Any) -> Any:
    """Reuse the id in ``REUSE[node_name]`` if there is one, else run the task."""
    _record("reuse_from_table", flow_name, node_name, node_args, tuple(task_names))
    return REUSE.get(node_name)


def broken_selective(flow_name: str, node_name: str, node_args: Any, task_names: Any, results: Any) -> Any:
    raise RuntimeError("selective function exploded")


# --- sampling strategies --------------------------------------------------------------------


def fixed_tick(status: Any, seconds: float = 7) -> Any:
    """``seconds`` while anything is active; records what it saw."""
    _record("fixed_tick", dict(status))
    return seconds if status["active_nodes"] else None


def broken_strategy(status: Any) -> Any:
    raise RuntimeError("strategy exploded")
