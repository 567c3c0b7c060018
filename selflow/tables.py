"""Dispatch tables: the compiled form of a configuration that the dispatcher walks.

A generated module (``selflow compile``) builds one ``SystemTables`` named ``TABLES``; compiling
in memory runs the same generated source, so both give equal objects. Conditions are plain
Python functions ``condition(results, node_args) -> bool``, where ``results.get(name)`` is the
result of the parent node ``name`` the edge fired on.

Lookups the dispatcher needs on every event (edges by source node, fallbacks by failed set) are
derived once per process and cached, so the cost of an event does not grow with the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

from selflow.codegen.model import (
    CacheSpec,
    ForeachSpec,
    ImportRef,
    KeyedRateLimit,
    SamplingSpec,
    SelectiveSpec,
    StorageSpec,
    TaskSpec,
    TraceSpec,
)

__all__ = [
    "CacheSpec", "EdgeTable", "FallbackTable", "FlowTable", "ForeachSpec", "ImportRef", "KeyedRateLimit",
    "SamplingSpec",
    "SelectiveSpec", "StorageSpec", "SystemTables", "TaskSpec", "TraceSpec",
]

ConditionFn = Callable[[Any, Any], bool]


def _always_true(results: Any, node_args: Any) -> bool:
    return True


@dataclass(frozen=True)
class EdgeTable:
    """An edge ready to fire. Equality compares ``condition_str``, not the function object."""

    id: str
    index: int
    from_nodes: tuple[str, ...]
    to_nodes: tuple[str, ...]
    condition: ConditionFn = field(default=_always_true, compare=False, repr=False)
    condition_str: str = "always_true()"
    foreach: ForeachSpec | None = None
    selective: SelectiveSpec | None = None


@dataclass(frozen=True)
class FallbackTable:
    """What to start when exactly ``nodes`` failed; ``fallback`` is None for ``fallback: true``."""

    nodes: tuple[str, ...]
    fallback: tuple[str, ...] | None
    condition: ConditionFn = field(default=_always_true, compare=False, repr=False)
    condition_str: str = "always_true()"
    propagate_failure: bool = False


@dataclass(frozen=True)
class FlowTable:
    name: str
    edges: tuple[EdgeTable, ...]
    queue: str = "celery"
    failures: tuple[FallbackTable, ...] = ()
    nowait: frozenset[str] = frozenset()
    eager_failures: frozenset[str] = frozenset()
    max_retry: int = 0
    retry_countdown: float = 0
    node_args_from_first: bool = False
    propagate_node_args: frozenset[str] = frozenset()
    propagate_parent: frozenset[str] = frozenset()
    propagate_finished: frozenset[str] = frozenset()
    propagate_compound_finished: frozenset[str] = frozenset()
    propagate_failures: frozenset[str] = frozenset()
    propagate_compound_failures: frozenset[str] = frozenset()
    propagate_parent_failures: frozenset[str] = frozenset()
    sampling: SamplingSpec = SamplingSpec()
    throttling: float | None = None
    cache: CacheSpec = CacheSpec(ImportRef("selflow.caches", "LRU"))
    concurrency: int | None = None

    @cached_property
    def edges_by_id(self) -> Mapping[str, EdgeTable]:
        return {edge.id: edge for edge in self.edges}

    @cached_property
    def starting_edges(self) -> tuple[EdgeTable, ...]:
        return tuple(edge for edge in self.edges if not edge.from_nodes)

    @cached_property
    def edges_by_source(self) -> Mapping[str, tuple[EdgeTable, ...]]:
        """Node name -> the edges it is a source of, in table order."""
        index: dict[str, list[EdgeTable]] = {}
        for edge in self.edges:
            for name in dict.fromkeys(edge.from_nodes):
                index.setdefault(name, []).append(edge)
        return {name: tuple(edges) for name, edges in index.items()}

    def nodes_started(self) -> frozenset[str]:
        """Every node this flow can start: edge destinations and fallbacks."""
        names = {name for edge in self.edges for name in edge.to_nodes}
        names.update(name for entry in self.failures for name in entry.fallback or ())
        return frozenset(names)

    @cached_property
    def fallbacks_by_nodes(self) -> Mapping[frozenset[str], tuple[FallbackTable, ...]]:
        """Failed node set -> its fallback entries, in declaration order."""
        index: dict[frozenset[str], list[FallbackTable]] = {}
        for entry in self.failures:
            index.setdefault(frozenset(entry.nodes), []).append(entry)
        return {nodes: tuple(entries) for nodes, entries in index.items()}


@dataclass(frozen=True)
class SystemTables:
    """Everything a worker needs to run the configured flows."""

    selflow_version: str
    input_hash: str
    tasks: Mapping[str, TaskSpec]
    flows: Mapping[str, FlowTable]
    storages: Mapping[str, StorageSpec] = field(default_factory=dict)
    trace: tuple[TraceSpec, ...] = ()
    migration_dir: str | None = None
    default_task_queue: str = "celery"
    default_dispatcher_queue: str = "celery"

    def is_flow(self, name: str) -> bool:
        return name in self.flows

    def is_task(self, name: str) -> bool:
        return name in self.tasks
