"""Every trace event selflow knows, with its severity and payload, in one table.

``TraceEvent`` names the events; ``EVENTS`` documents each of them (severity, the fields its
payload may carry, what it means, which part of selflow emits it) and ``FIELDS`` says what each
field holds. docs/tracing.md's tables are generated from these two dicts
(``python -m selflow.trace``) and a test checks that the page matches them.

The first 53 members keep Selinon's names, so trace consumers written for Selinon keep working;
the rest are selflow's own. A member's value is its name, and values never change.
"""

from __future__ import annotations

import enum
import logging
import sys
from dataclasses import dataclass

__all__ = ["TraceEvent", "Severity", "EventInfo", "EVENTS", "FIELDS", "SELINON_EVENT_COUNT",
           "event_info", "severity_of", "events_markdown", "fields_markdown"]


class TraceEvent(str, enum.Enum):
    """A trace event; its value is its name (``TraceEvent.FLOW_END.value == "FLOW_END"``)."""

    def __str__(self) -> str:
        return str(self.value)

    # --- Selinon's events, in Selinon's order ----------------------------------------------
    DISPATCHER_WAKEUP = "DISPATCHER_WAKEUP"
    FLOW_SCHEDULE = "FLOW_SCHEDULE"
    FLOW_START = "FLOW_START"
    TASK_SCHEDULE = "TASK_SCHEDULE"
    TASK_START = "TASK_START"
    SUBFLOW_SCHEDULE = "SUBFLOW_SCHEDULE"
    TASK_END = "TASK_END"
    NODE_SUCCESSFUL = "NODE_SUCCESSFUL"
    TASK_DISCARD_RESULT = "TASK_DISCARD_RESULT"
    TASK_FAILURE = "TASK_FAILURE"
    TASK_RETRY = "TASK_RETRY"
    FLOW_FAILURE = "FLOW_FAILURE"
    DISPATCHER_FAILURE = "DISPATCHER_FAILURE"
    NODE_FAILURE = "NODE_FAILURE"
    FALLBACK_START = "FALLBACK_START"
    DISPATCHER_RETRY = "DISPATCHER_RETRY"
    FLOW_END = "FLOW_END"
    STORAGE_CONNECT = "STORAGE_CONNECT"
    STORAGE_DISCONNECT = "STORAGE_DISCONNECT"
    STORAGE_RETRIEVE = "STORAGE_RETRIEVE"
    STORAGE_RETRIEVED = "STORAGE_RETRIEVED"
    STORAGE_STORE = "STORAGE_STORE"
    STORAGE_STORED = "STORAGE_STORED"
    EDGE_COND_FALSE = "EDGE_COND_FALSE"
    FOREACH_RESULT = "FOREACH_RESULT"
    NODE_STATE_CACHE_GET = "NODE_STATE_CACHE_GET"
    NODE_STATE_CACHE_ADD = "NODE_STATE_CACHE_ADD"
    NODE_STATE_CACHE_MISS = "NODE_STATE_CACHE_MISS"
    NODE_STATE_CACHE_HIT = "NODE_STATE_CACHE_HIT"
    TASK_RESULT_CACHE_GET = "TASK_RESULT_CACHE_GET"
    TASK_RESULT_CACHE_ADD = "TASK_RESULT_CACHE_ADD"
    TASK_RESULT_CACHE_MISS = "TASK_RESULT_CACHE_MISS"
    TASK_RESULT_CACHE_HIT = "TASK_RESULT_CACHE_HIT"
    SELECTIVE_OMIT_EDGE = "SELECTIVE_OMIT_EDGE"
    SELECTIVE_OMIT_NODE = "SELECTIVE_OMIT_NODE"
    SELECTIVE_RUN_FUNC = "SELECTIVE_RUN_FUNC"
    SELECTIVE_TASK_REUSE = "SELECTIVE_TASK_REUSE"
    STORAGE_STORE_ERROR = "STORAGE_STORE_ERROR"
    STORAGE_OMIT_STORE_ERROR = "STORAGE_OMIT_STORE_ERROR"
    FALLBACK_COND_FALSE = "FALLBACK_COND_FALSE"
    FALLBACK_COND_TRUE = "FALLBACK_COND_TRUE"
    NODE_STATE_CACHE_ISSUE = "NODE_STATE_CACHE_ISSUE"
    TASK_RESULT_CACHE_ISSUE = "TASK_RESULT_CACHE_ISSUE"
    STORAGE_ISSUE = "STORAGE_ISSUE"
    RESULT_BACKEND_ISSUE = "RESULT_BACKEND_ISSUE"
    FLOW_RETRY = "FLOW_RETRY"
    MIGRATION = "MIGRATION"
    MIGRATION_SKEW = "MIGRATION_SKEW"
    MIGRATION_TAINTED_FLOW = "MIGRATION_TAINTED_FLOW"
    MIGRATION_ERROR = "MIGRATION_ERROR"
    EAGER_FAILURE = "EAGER_FAILURE"
    STORAGE_DELETE = "STORAGE_DELETE"
    STORAGE_DELETED = "STORAGE_DELETED"

    # --- selflow's own events --------------------------------------------------------------
    DISPATCHER_INLINE_STEP = "DISPATCHER_INLINE_STEP"
    WAKEUP_DEFERRED = "WAKEUP_DEFERRED"
    SAFETY_TICK = "SAFETY_TICK"
    NODE_REVOKE = "NODE_REVOKE"
    TASK_SKIPPED = "TASK_SKIPPED"
    THROTTLED = "THROTTLED"
    CONCURRENCY_WAIT = "CONCURRENCY_WAIT"
    RATE_LIMITED = "RATE_LIMITED"


#: how many of TraceEvent's members are Selinon's (they come first, in Selinon's order)
SELINON_EVENT_COUNT = 53


class Severity(str, enum.Enum):
    """How bad an event is; the logging backend logs it at ``log_level``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def log_level(self) -> int:
        return {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[self.value]


@dataclass(frozen=True)
class EventInfo:
    """The documentation of one event: ``fields`` are the payload keys it may carry."""

    severity: Severity
    fields: tuple[str, ...]
    description: str
    #: the part of selflow that emits it: engine, runtime, envelope, storage, cache, migrations, throttling
    emitter: str


#: Every payload field any event may carry, and what it holds. ``event`` and ``time`` are added to
#: every payload by ``selflow.trace.emit``; the others come from the emitter.
FIELDS: dict[str, str] = {
    "event": "the event's name (every payload)",
    "time": "when it was emitted: ISO 8601, UTC, e.g. `2024-05-01T12:00:00.123456+00:00` (every payload)",
    "flow_name": "the flow's name",
    "dispatcher_id": "the flow's id (the task id of its Dispatcher messages)",
    "node_args": "the flow's (or the task's) arguments",
    "parent": "the node's parents: parent task name to node id (for sub-flows: their node ids)",
    "selective": "the selective run a flow is part of (`task_names`, `follow_subflows`, `run_subsequent`)",
    "retried_count": "how many times the task (or flow) was retried before this attempt",
    "max_retry": "how many retries the task (or flow) is allowed",
    "countdown": "seconds until the next attempt, message or tick",
    "user_retry": "true when the task asked for the retry itself (`SelflowTask.retry`); such retries are not counted",
    "queue": "the queue the message is sent to",
    "task_name": "the task's name in the configuration",
    "task_id": "the node id of a task run",
    "node_name": "a node's name: a task or a sub-flow",
    "node_id": "a node's id: a task run or a sub-flow's flow id",
    "node_ids": "the ids of several nodes",
    "nodes": "node names, e.g. the failed nodes a fallback handles",
    "fallback": "the fallback nodes started (`[true]` for `fallback: true`)",
    "child_flow_name": "the name of the sub-flow started",
    "child_dispatcher_id": "the flow id of the sub-flow started",
    "edge": "the edge's stable id (see codegen.md)",
    "condition_str": "the condition, as text",
    "foreach_str": "the foreach function, as `module:name`",
    "count": "how many items the foreach function returned",
    "result": "the flow's result: its finished and failed nodes",
    "reason": "why the flow failed, is retried, or was cancelled",
    "what": "the error: `Type: message`, or a traceback",
    "operation": "what the storage or cache was doing when it failed (`retrieve`, `store`, `connect`, ...)",
    "function": "the selective-run function, as `module:name`",
    "storage_name": "the storage's name in the configuration",
    "storage_task_name": "the name the task's result is stored under (`storage_task_name`, else the task name)",
    "record_id": "the id the storage gave the stored record",
    "events": "how many node events the step handled",
    "tick": "true when the message was the flow's safety tick, false for a node's wake-up",
    "limit": "the concurrency limit that made the task wait",
    "rate": "the rate limit that delayed the task",
    "key": "the value of the task's `keyed_rate_limit` key in its node_args, as JSON text",
    "migration_version": "the migration version of the flow's stored state",
    "latest_migration_version": "the newest migration version the worker knows",
    "tainted": "true when a migration touched a part of the flow that already ran",
    "tainting_nodes": "the nodes whose edges a migration changed after they ran",
    "tainted_flow_strategy": "what the migration does with a tainted flow: IGNORE, RETRY or FAIL",
}

_FLOW = ("flow_name", "dispatcher_id")
_TASK = ("flow_name", "dispatcher_id", "task_name", "task_id")
_STORE = _TASK + ("storage_name", "storage_task_name")
_CACHE = _TASK + ("storage_name", "storage_task_name")
_NODE_CACHE = _FLOW + ("node_name", "node_id")
_MIGRATION = _FLOW + ("migration_version", "latest_migration_version")

_I, _W, _E = Severity.INFO, Severity.WARNING, Severity.ERROR

#: The documentation of every event. A test fails when a member of TraceEvent is missing here.
EVENTS: dict[TraceEvent, EventInfo] = {
    TraceEvent.DISPATCHER_WAKEUP: EventInfo(
        _I, _FLOW + ("tick",), "a Dispatcher message for the flow arrived: its start or a safety tick", "runtime"),
    TraceEvent.FLOW_SCHEDULE: EventInfo(
        _I, _FLOW + ("node_args", "parent", "selective", "countdown"),
        "a flow was created and its first Dispatcher message sent", "runtime"),
    TraceEvent.FLOW_START: EventInfo(
        _I, _FLOW + ("node_args", "parent", "retried_count", "selective"),
        "the flow's first step: its starting edges are evaluated", "engine"),
    TraceEvent.TASK_SCHEDULE: EventInfo(
        _I, _TASK + ("parent", "queue", "countdown"), "a task's message was sent to its queue", "runtime"),
    TraceEvent.TASK_START: EventInfo(
        _I, _TASK + ("parent", "node_args", "retried_count"), "a worker started running a task", "envelope"),
    TraceEvent.SUBFLOW_SCHEDULE: EventInfo(
        _I, _FLOW + ("child_flow_name", "child_dispatcher_id", "node_args", "parent", "selective"),
        "a flow started a sub-flow", "runtime"),
    TraceEvent.TASK_END: EventInfo(
        _I, _TASK + ("storage_name", "record_id"), "a task finished and its result was kept", "envelope"),
    TraceEvent.NODE_SUCCESSFUL: EventInfo(
        _I, _FLOW + ("node_name", "node_id"), "the flow handled the success of a node (task or sub-flow)", "engine"),
    TraceEvent.TASK_DISCARD_RESULT: EventInfo(
        _W, _TASK + ("reason",),
        "a task finished after its node was revoked (eager failure, flow retry, cancel): its result is dropped",
        "envelope"),
    TraceEvent.TASK_FAILURE: EventInfo(
        _W, _TASK + ("what", "retried_count", "max_retry"), "a task failed for good: no retry is left", "envelope"),
    TraceEvent.TASK_RETRY: EventInfo(
        _W, _TASK + ("countdown", "user_retry", "retried_count", "max_retry", "what"),
        "a task failed (or asked for a retry) and will run again after `countdown` seconds", "envelope"),
    TraceEvent.FLOW_FAILURE: EventInfo(
        _W, _FLOW + ("reason", "result"), "a flow ended in failure, or was cancelled", "engine, runtime"),
    TraceEvent.DISPATCHER_FAILURE: EventInfo(
        _E, _FLOW + ("what",),
        "a Dispatcher step itself failed (not a node): undecodable state or a bug; the flow cannot go on", "runtime"),
    TraceEvent.NODE_FAILURE: EventInfo(
        _W, _FLOW + ("node_name", "node_id", "what"), "the flow handled the failure of a node", "engine"),
    TraceEvent.FALLBACK_START: EventInfo(
        _I, _FLOW + ("nodes", "fallback"), "fallbacks start for failed nodes", "engine"),
    TraceEvent.DISPATCHER_RETRY: EventInfo(
        _I, _FLOW + ("countdown", "what"), "a Dispatcher step will be tried again after a transient error", "runtime"),
    TraceEvent.FLOW_END: EventInfo(
        _I, _FLOW + ("result",), "a flow ended successfully", "engine"),
    TraceEvent.STORAGE_CONNECT: EventInfo(
        _I, ("storage_name",), "a storage adapter is connecting (on its first use)", "storage"),
    TraceEvent.STORAGE_DISCONNECT: EventInfo(
        _I, ("storage_name",), "a storage adapter disconnected", "storage"),
    TraceEvent.STORAGE_RETRIEVE: EventInfo(
        _I, _STORE + ("record_id",), "a task's result is being read from its storage", "storage"),
    TraceEvent.STORAGE_RETRIEVED: EventInfo(
        _I, _STORE + ("record_id",), "a task's result was read from its storage", "storage"),
    TraceEvent.STORAGE_STORE: EventInfo(
        _I, _STORE, "a task's result is being written to its storage", "storage"),
    TraceEvent.STORAGE_STORED: EventInfo(
        _I, _STORE + ("record_id",), "a task's result was written to its storage", "storage"),
    TraceEvent.EDGE_COND_FALSE: EventInfo(
        _I, _FLOW + ("edge", "condition_str"), "an edge's condition was false: the edge did not fire", "engine"),
    TraceEvent.FOREACH_RESULT: EventInfo(
        _I, _FLOW + ("edge", "foreach_str", "count"), "a foreach edge's function returned its items", "engine"),
    TraceEvent.NODE_STATE_CACHE_GET: EventInfo(
        _I, _NODE_CACHE, "a sub-flow's state is looked up in the flow's node-state cache", "cache"),
    TraceEvent.NODE_STATE_CACHE_ADD: EventInfo(
        _I, _NODE_CACHE, "a finished sub-flow's state was added to the node-state cache", "cache"),
    TraceEvent.NODE_STATE_CACHE_MISS: EventInfo(
        _I, _NODE_CACHE, "the node-state cache did not hold the sub-flow's state", "cache"),
    TraceEvent.NODE_STATE_CACHE_HIT: EventInfo(
        _I, _NODE_CACHE, "the node-state cache held the sub-flow's state", "cache"),
    TraceEvent.TASK_RESULT_CACHE_GET: EventInfo(
        _I, _CACHE, "a task result is looked up in its storage's cache", "cache"),
    TraceEvent.TASK_RESULT_CACHE_ADD: EventInfo(
        _I, _CACHE, "a task result was added to its storage's cache", "cache"),
    TraceEvent.TASK_RESULT_CACHE_MISS: EventInfo(
        _I, _CACHE, "the storage's cache did not hold the task result", "cache"),
    TraceEvent.TASK_RESULT_CACHE_HIT: EventInfo(
        _I, _CACHE, "the storage's cache held the task result", "cache"),
    TraceEvent.SELECTIVE_OMIT_EDGE: EventInfo(
        _I, _FLOW + ("edge",), "a selective run skipped an edge that leads to no requested node", "engine"),
    TraceEvent.SELECTIVE_OMIT_NODE: EventInfo(
        _I, _FLOW + ("edge", "node_name"),
        "a selective run did not start a destination of a firing edge: it leads to no requested node", "engine"),
    TraceEvent.SELECTIVE_RUN_FUNC: EventInfo(
        _I, _FLOW + ("node_name", "function", "node_id"),
        "a task's selective-run function answered: `node_id` is the run to reuse, or null to run the task",
        "engine"),
    TraceEvent.SELECTIVE_TASK_REUSE: EventInfo(
        _I, _FLOW + ("node_name", "node_id"), "a selective run reused an earlier result instead of running the task",
        "engine"),
    TraceEvent.STORAGE_STORE_ERROR: EventInfo(
        _I, _STORE + ("what", "record_id"), "a failed task's error is being written to its storage", "storage"),
    TraceEvent.STORAGE_OMIT_STORE_ERROR: EventInfo(
        _W, _STORE + ("what",), "a failed task's storage cannot keep errors: the error is not stored", "storage"),
    TraceEvent.FALLBACK_COND_FALSE: EventInfo(
        _I, _FLOW + ("condition_str", "nodes"), "a fallback's condition was false: that fallback does not run",
        "engine"),
    TraceEvent.FALLBACK_COND_TRUE: EventInfo(
        _I, _FLOW + ("condition_str", "nodes"), "a fallback's condition was true", "engine"),
    TraceEvent.NODE_STATE_CACHE_ISSUE: EventInfo(
        _W, _NODE_CACHE + ("what",), "the node-state cache failed; the state store is read instead", "cache"),
    TraceEvent.TASK_RESULT_CACHE_ISSUE: EventInfo(
        _W, _CACHE + ("operation", "what"), "a storage's result cache failed; the storage is read instead", "cache"),
    TraceEvent.STORAGE_ISSUE: EventInfo(
        _W, _STORE + ("record_id", "operation", "what"), "a storage adapter failed to connect, read or write",
        "storage"),
    TraceEvent.RESULT_BACKEND_ISSUE: EventInfo(
        _W, _TASK + ("countdown", "what"),
        "the state store (selflow's result backend) failed; the step or the node runs again after `countdown`",
        "runtime"),
    TraceEvent.FLOW_RETRY: EventInfo(
        _W, _FLOW + ("reason", "retried_count", "max_retry", "countdown"),
        "a flow failed and starts again from the beginning", "engine"),
    TraceEvent.MIGRATION: EventInfo(
        _I, _MIGRATION + ("tainted",), "a flow's stored state was migrated to the newest configuration", "migrations"),
    TraceEvent.MIGRATION_SKEW: EventInfo(
        _W, _MIGRATION,
        "a flow's state is newer than the migrations this worker knows: the worker runs an old configuration",
        "migrations"),
    TraceEvent.MIGRATION_TAINTED_FLOW: EventInfo(
        _I, _MIGRATION + ("tainting_nodes", "tainted_flow_strategy"),
        "a migration changed edges of nodes that already ran; the flow is handled by its tainted-flow strategy",
        "migrations"),
    TraceEvent.MIGRATION_ERROR: EventInfo(
        _W, _MIGRATION + ("what",), "a flow's state could not be migrated", "migrations"),
    TraceEvent.EAGER_FAILURE: EventInfo(
        _W, _FLOW + ("node_name", "node_id"), "a node listed in `eager_failures` failed: the flow fails at once",
        "engine"),
    TraceEvent.STORAGE_DELETE: EventInfo(
        _I, _STORE + ("record_id",), "a task's result is being deleted from its storage", "storage"),
    TraceEvent.STORAGE_DELETED: EventInfo(
        _I, _STORE + ("record_id",), "a task's result was deleted from its storage", "storage"),
    TraceEvent.DISPATCHER_INLINE_STEP: EventInfo(
        _I, _FLOW + ("task_id", "events"),
        "a finished node's envelope took its flow's lock and stepped the flow itself, with no Dispatcher message",
        "runtime"),
    TraceEvent.WAKEUP_DEFERRED: EventInfo(
        _I, _FLOW + ("task_id", "tick", "countdown"),
        "the flow's lock was taken: the holder handles the new event before it lets go "
        "(a safety tick sends itself again after `countdown`)", "runtime"),
    TraceEvent.SAFETY_TICK: EventInfo(
        _I, _FLOW + ("countdown",),
        "the flow's sampling strategy asked for the next safety tick in `countdown` seconds", "runtime"),
    TraceEvent.NODE_REVOKE: EventInfo(
        _I, _FLOW + ("node_ids", "reason"), "running nodes were revoked (eager failure, flow retry, cancel)",
        "runtime"),
    TraceEvent.TASK_SKIPPED: EventInfo(
        _I, _TASK, "a task's message arrived after its node was revoked: the task did not run", "envelope"),
    TraceEvent.THROTTLED: EventInfo(
        _I, _FLOW + ("node_name", "node_id", "countdown"),
        "a node's start waits `countdown` seconds for its `throttling` interval", "throttling"),
    TraceEvent.CONCURRENCY_WAIT: EventInfo(
        _I, _TASK + ("limit", "countdown"),
        "a task waits because `limit` runs of it are already running", "throttling"),
    TraceEvent.RATE_LIMITED: EventInfo(
        _I, _TASK + ("rate", "key", "countdown"), "a task waits `countdown` seconds for its rate limit", "throttling"),
}


def event_info(event: TraceEvent | str) -> EventInfo | None:
    """The documentation of ``event`` (a member or a name), or None for an unknown name."""
    try:
        return EVENTS.get(TraceEvent(event))
    except ValueError:
        return None


def severity_of(event: TraceEvent | str) -> Severity:
    """The severity of ``event``; an unknown name counts as info."""
    info = event_info(event)
    return info.severity if info is not None else Severity.INFO


def events_markdown() -> str:
    """The event table of docs/tracing.md."""
    lines = ["| event | severity | emitted by | payload fields | meaning |", "|---|---|---|---|---|"]
    for event in TraceEvent:
        info = EVENTS[event]
        fields = ", ".join(f"`{name}`" for name in info.fields)
        lines.append(f"| `{event.value}` | {info.severity.value} | {info.emitter} | {fields} | {info.description} |")
    return "\n".join(lines) + "\n"


def fields_markdown() -> str:
    """The payload field table of docs/tracing.md."""
    lines = ["| field | holds |", "|---|---|"]
    lines.extend(f"| `{name}` | {text} |" for name, text in FIELDS.items())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the generated tables: ``python -m selflow.trace [events] [fields]``."""
    tables = {"events": events_markdown, "fields": fields_markdown}
    which = (argv if argv is not None else sys.argv[1:]) or list(tables)
    unknown = [name for name in which if name not in tables]
    if unknown:
        sys.stderr.write(f"usage: python -m selflow.trace [events] [fields] (not {', '.join(unknown)})\n")
        return 2
    for name in which:
        sys.stdout.write(tables[name]())
    return 0
