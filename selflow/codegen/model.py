"""The validated configuration: frozen records built by the validator, read by emit and plot.

This is what the YAML *says*, checked and normalised (defaults filled in, ``true`` expanded to
explicit node sets, Selinon module paths mapped to selflow's own). Conditions are still trees
here; ``emit`` compiles them to Python functions in the dispatch tables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Union

from selflow.codegen.yamlsource import Mark


@dataclass(frozen=True)
class ImportRef:
    """A Python object named by module and attribute, imported only when it is used."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class CacheSpec:
    """A result cache (under a storage) or a node-state cache (under a flow)."""

    ref: ImportRef
    options: tuple[tuple[str, Any], ...] = (("max_cache_size", 0),)


# --- conditions -------------------------------------------------------------------------


@dataclass(frozen=True)
class PredicateLeaf:
    """One predicate call; ``node`` is the source whose result is ``message``, if any."""

    ref: ImportRef
    node: str | None
    args: tuple[tuple[str, Any], ...]
    uses_message: bool
    uses_node_args: bool


@dataclass(frozen=True)
class AllOf:
    items: tuple["Condition", ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple["Condition", ...]


@dataclass(frozen=True)
class Negation:
    item: "Condition"


Condition = Union[PredicateLeaf, AllOf, AnyOf, Negation]


def condition_str(cond: Condition | None) -> str:
    """A short human-readable form, used in traces, plots and edge ids."""
    if cond is None:
        return "always_true()"
    if isinstance(cond, AllOf):
        return "(" + " and ".join(condition_str(c) for c in cond.items) + ")"
    if isinstance(cond, AnyOf):
        return "(" + " or ".join(condition_str(c) for c in cond.items) + ")"
    if isinstance(cond, Negation):
        return "not " + condition_str(cond.item)
    args = []
    if cond.uses_message:
        args.append(f"message={cond.node}")
    args += [f"{k}={v!r}" for k, v in cond.args]
    return f"{cond.ref.name}({', '.join(args)})"


# --- nodes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageSpec:
    name: str
    ref: ImportRef
    configuration: Any
    cache: CacheSpec
    mark: Mark = field(compare=False, repr=False, default=Mark.unknown())


@dataclass(frozen=True)
class KeyedRateLimit:
    """At most one start per ``interval`` seconds for each value of ``key`` in the node_args."""

    key: tuple[str, ...]
    interval: float


@dataclass(frozen=True)
class TaskSpec:
    name: str
    ref: ImportRef
    storage: str | None = None
    storage_readonly: bool = False
    storage_task_name: str | None = None
    #: the JSON Schema itself (read from the file the YAML names), or None
    output_schema: Any = None
    max_retry: int = 0
    retry_countdown: float = 0
    queue: str = "celery"
    throttling: float | None = None
    selective_run_function: ImportRef = ImportRef("selflow.routines", "always_run")
    #: Celery controls: message priority, soft and hard time limits (seconds), late acks, and
    #: Celery's own per-worker rate limit string ("10/m")
    priority: int | None = None
    soft_time_limit: float | None = None
    time_limit: float | None = None
    acks_late: bool = True
    rate_limit: str | None = None
    #: cluster-wide limits: at most ``concurrency`` running at once; a rate per node_args key
    concurrency: int | None = None
    keyed_rate_limit: KeyedRateLimit | None = None
    mark: Mark = field(compare=False, repr=False, default=Mark.unknown())


@dataclass(frozen=True)
class ForeachSpec:
    ref: ImportRef
    propagate_result: bool = False


@dataclass(frozen=True)
class SelectiveSpec:
    tasks: tuple[str, ...]
    follow_subflows: bool = False
    run_subsequent: bool | tuple[str, ...] = False


@dataclass(frozen=True)
class EdgeSpec:
    """One edge; ``id`` is derived from its content, so it is stable across unrelated edits."""

    id: str
    from_nodes: tuple[str, ...]
    to_nodes: tuple[str, ...]
    condition: Condition | None = None
    foreach: ForeachSpec | None = None
    selective: SelectiveSpec | None = None
    mark: Mark = field(compare=False, repr=False, default=Mark.unknown())


@dataclass(frozen=True)
class FailureSpec:
    """A fallback for a set of failed nodes; ``fallback`` is ``None`` for ``fallback: true``."""

    nodes: tuple[str, ...]
    fallback: tuple[str, ...] | None
    condition: Condition | None = None
    propagate_failure: bool = False
    mark: Mark = field(compare=False, repr=False, default=Mark.unknown())


@dataclass(frozen=True)
class SamplingSpec:
    ref: ImportRef = ImportRef("selflow.strategies", "biexponential_increase")
    args: tuple[tuple[str, Any], ...] = (("max_retry", 120), ("start_retry", 2))


#: Names of the propagate_* flags, in the order they appear in a flow definition.
PROPAGATE_FLAGS = (
    "propagate_node_args",
    "propagate_parent",
    "propagate_finished",
    "propagate_compound_finished",
    "propagate_failures",
    "propagate_compound_failures",
    "propagate_parent_failures",
)


@dataclass(frozen=True)
class FlowSpec:
    name: str
    edges: tuple[EdgeSpec, ...]
    queue: str = "celery"
    failures: tuple[FailureSpec, ...] = ()
    nowait: frozenset[str] = frozenset()
    eager_failures: frozenset[str] = frozenset()
    max_retry: int = 0
    retry_countdown: float = 0
    node_args_from_first: bool = False
    #: flag name -> the sub-flows it covers (``true`` is expanded to every sub-flow it can cover)
    propagate: tuple[tuple[str, frozenset[str]], ...] = ()
    sampling: SamplingSpec = SamplingSpec()
    throttling: float | None = None
    cache: CacheSpec = CacheSpec(ImportRef("selflow.caches", "LRU"))
    #: at most this many instances of the flow running at once, cluster-wide
    concurrency: int | None = None
    mark: Mark = field(compare=False, repr=False, default=Mark.unknown())

    def propagates(self, flag: str) -> frozenset[str]:
        return dict(self.propagate).get(flag, frozenset())

    @property
    def nodes(self) -> frozenset[str]:
        """Every node named in this flow: edge ends and fallbacks."""
        names: set[str] = set()
        for edge in self.edges:
            names.update(edge.from_nodes)
            names.update(edge.to_nodes)
        for failure in self.failures:
            names.update(failure.nodes)
            names.update(failure.fallback or ())
        return frozenset(names)


@dataclass(frozen=True)
class TraceSpec:
    """One ``global.trace`` entry: ``kind`` is logging, json, function, storage or sentry."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class GlobalSpec:
    predicates_modules: tuple[str, ...] = ("selflow.predicates",)
    default_task_queue: str = "celery"
    default_dispatcher_queue: str = "celery"
    migration_dir: str | None = None
    trace: tuple[TraceSpec, ...] = ()


@dataclass(frozen=True)
class SystemSpec:
    """A whole validated configuration."""

    tasks: tuple[TaskSpec, ...]
    flows: tuple[FlowSpec, ...]
    storages: tuple[StorageSpec, ...] = ()
    global_: GlobalSpec = GlobalSpec()
    #: sha256 of the input files' bytes, in a fixed order; goes in the generated header
    input_hash: str = ""

    def task(self, name: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.name == name), None)

    def flow(self, name: str) -> FlowSpec | None:
        return next((f for f in self.flows if f.name == name), None)

    def storage(self, name: str) -> StorageSpec | None:
        return next((s for s in self.storages if s.name == name), None)


def edge_id(flow: str, from_nodes: tuple[str, ...], to_nodes: tuple[str, ...], cond: Condition | None,
            foreach: ForeachSpec | None, selective: SelectiveSpec | None) -> str:
    """A short content hash: same edge, same id, wherever it sits in the list."""
    content = {
        "flow": flow,
        "from": sorted(from_nodes),
        "to": list(to_nodes),
        "condition": condition_str(cond) if cond else None,
        "foreach": [str(foreach.ref), foreach.propagate_result] if foreach else None,
        "selective": repr(selective) if selective else None,
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()
    return "e" + digest[:10]
