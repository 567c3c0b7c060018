"""What goes in and out of the engine: a flow's state, the events it reacts to, the actions it asks for.

All of it is plain data that serialises to JSON (``to_dict``/``from_dict``), so the runtime can keep
it in Redis or memory and a test can write it by hand. A ``schema_version`` lets a newer worker read
state written by an older one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from selflow.errors import DecodeError

STATE_SCHEMA_VERSION = 1

#: flow status values
RUNNING, SUCCESS, FAILURE = "running", "success", "failure"


@dataclass
class FlowState:
    """Everything the dispatcher knows about one running flow.

    ``active`` maps node id -> node name for nodes scheduled and not yet reported; nowait nodes are
    never in it. ``finished``/``failed`` map node name -> ids in the order they were reported.
    ``parents`` keeps, per started node id, the parent mapping it was started with (what the task
    sees as ``self.parent``).
    """

    flow_id: str
    flow_name: str
    node_args: Any = None
    parent: dict[str, Any] = field(default_factory=dict)
    selective: dict[str, Any] | None = None
    parent_flow_id: str | None = None
    retried_count: int = 0
    status: str = RUNNING
    started: bool = False
    initial_node_args: Any = None
    node_args_replaced: bool = False
    active: dict[str, str] = field(default_factory=dict)
    finished: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    #: edge id -> how many times its condition was true (a dict, so recording one is O(1))
    triggered_edges: dict[str, int] = field(default_factory=dict)
    #: failed ids whose failure a fallback has handled (kept for the result, not for fallbacks)
    handled: dict[str, list[str]] = field(default_factory=dict)
    #: failed ids whose fallback ran with ``propagate_failure``: the flow still fails
    propagated: dict[str, list[str]] = field(default_factory=dict)
    #: the sampling strategy's previous answer, for strategies that adapt
    previous_tick: float | None = None
    #: the number of the flow's current chain of Dispatcher ticks (the runtime's, not the engine's):
    #: a tick message carrying another number is stale or a duplicate and does not re-schedule itself
    tick_seq: int = 0

    @staticmethod
    def new(flow_id: str, flow_name: str, node_args: Any = None, *, parent: dict[str, Any] | None = None,
            selective: dict[str, Any] | None = None, parent_flow_id: str | None = None) -> "FlowState":
        return FlowState(flow_id=flow_id, flow_name=flow_name, node_args=node_args, parent=dict(parent or {}),
                         selective=selective, parent_flow_id=parent_flow_id, initial_node_args=node_args)

    def result(self) -> dict[str, Any]:
        """The flow's result in Selinon's shape (also kept on failure, unlike Selinon)."""
        failed: dict[str, list[str]] = {}
        for source in (self.failed, self.handled, self.propagated):
            for name, ids in source.items():
                if ids:
                    failed.setdefault(name, []).extend(ids)
        return {
            "finished_nodes": {name: list(ids) for name, ids in sorted(self.finished.items()) if ids},
            "failed_nodes": {name: sorted(ids) for name, ids in sorted(failed.items())},
        }

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["schema_version"] = STATE_SCHEMA_VERSION
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "FlowState":
        if not isinstance(data, dict) or "flow_id" not in data or "flow_name" not in data:
            raise DecodeError("not a flow state", data)
        version = data.get("schema_version", STATE_SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise DecodeError(f"bad flow state schema version {version!r}", data)
        if version > STATE_SCHEMA_VERSION:
            raise DecodeError(f"flow state schema {version} is newer than this worker's "
                              f"({STATE_SCHEMA_VERSION}); upgrade selflow", data)
        known = {k: v for k, v in data.items() if k in FlowState.__dataclass_fields__}
        if isinstance(known.get("triggered_edges"), list):  # written before it became a dict
            known["triggered_edges"] = {edge: 1 for edge in known["triggered_edges"]}
        for name in _MAPPING_FIELDS:
            if name in known and not isinstance(known[name], dict):
                raise DecodeError(f"bad flow state: '{name}' is a {type(known[name]).__name__}, not a mapping", data)
        try:
            return FlowState(**known)
        except TypeError as exc:  # pragma: no cover - guarded by the filter above
            raise DecodeError(f"bad flow state: {exc}", data) from exc


_MAPPING_FIELDS = ("parent", "active", "finished", "failed", "triggered_edges", "handled", "propagated")


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSucceeded:
    """A node (task or sub-flow) of this flow ended well; its result is in the result store."""

    node_id: str


@dataclass(frozen=True)
class NodeFailed:
    """A node of this flow failed for good (retries used up, or a fatal error)."""

    node_id: str
    error: str = ""


Event = Union[NodeSucceeded, NodeFailed]


def event_to_dict(event: Event) -> dict[str, Any]:
    if isinstance(event, NodeSucceeded):
        return {"kind": "succeeded", "node_id": event.node_id}
    return {"kind": "failed", "node_id": event.node_id, "error": event.error}


def event_from_dict(data: dict[str, Any]) -> Event:
    try:
        if data["kind"] == "succeeded":
            return NodeSucceeded(data["node_id"])
        if data["kind"] == "failed":
            return NodeFailed(data["node_id"], data.get("error", ""))
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"bad event: {exc}", data) from exc
    raise DecodeError(f"unknown event kind {data.get('kind')!r}", data)


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTask:
    """Run task ``name`` as node ``node_id`` of flow ``flow_id``."""

    node_id: str
    name: str
    flow_id: str
    flow_name: str
    node_args: Any
    parent: dict[str, Any]


@dataclass(frozen=True)
class StartFlow:
    """Start sub-flow ``name``; its flow id is ``node_id``, and it reports back to ``parent_flow_id``."""

    node_id: str
    name: str
    parent_flow_id: str
    node_args: Any
    parent: dict[str, Any]
    selective: dict[str, Any] | None = None


@dataclass(frozen=True)
class Revoke:
    """Stop nodes that are no longer wanted (flow retry, eager failure)."""

    node_ids: tuple[str, ...]


@dataclass(frozen=True)
class FlowSucceeded:
    result: dict[str, Any]


@dataclass(frozen=True)
class FlowFailed:
    result: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class ScheduleTick:
    """Wake this flow's dispatcher after ``countdown`` seconds even if no node reports.

    With ``restart`` the flow is being retried from scratch and the tick starts it again.
    """

    countdown: float
    restart: bool = False


@dataclass(frozen=True)
class Note:
    """Something worth tracing (an edge condition that was false, a fallback that started...)."""

    event: str
    details: dict[str, Any]


Action = Union[StartTask, StartFlow, Revoke, FlowSucceeded, FlowFailed, ScheduleTick, Note]
