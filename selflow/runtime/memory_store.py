"""A ``FlowStore`` in process memory, for the embedded run and for tests.

Values are kept as JSON text, as Redis keeps them, so a result that would not survive a
distributed run fails here too instead of only in production.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from selflow.dispatcher.records import RUNNING, Event, FlowState, event_from_dict, event_to_dict
from selflow.runtime.store import LOCK_TTL_S, NOTHING, Claim, FlowStore, Report


class MemoryStore(FlowStore):
    def __init__(self) -> None:
        self._guard = threading.Condition()
        self._results: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._states: dict[str, str] = {}
        #: flow id -> status, kept beside the JSON so that ``status`` needs no decoding
        self._statuses: dict[str, str] = {}
        self._inboxes: dict[str, list[str]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._revoked: set[str] = set()

    def save_result(self, node_id: str, result: Any) -> None:
        text = json.dumps(result)
        with self._guard:
            self._results[node_id] = text

    def load_result(self, node_id: str) -> Any:
        with self._guard:
            text = self._results.get(node_id)
        return None if text is None else json.loads(text)

    def save_error(self, node_id: str, error: dict[str, Any]) -> None:
        text = json.dumps(error)
        with self._guard:
            self._errors[node_id] = text

    def load_error(self, node_id: str) -> dict[str, Any] | None:
        with self._guard:
            text = self._errors.get(node_id)
        return None if text is None else json.loads(text)

    def create_flow(self, state: FlowState) -> None:
        text = json.dumps(state.to_dict())
        with self._guard:
            self._states[state.flow_id] = text
            self._statuses[state.flow_id] = state.status

    def status(self, flow_id: str) -> str | None:
        """The flow's status (``running``, ``success``, ``failure``), ``None`` for an unknown flow.

        Not part of ``FlowStore``: the embedded runner asks it after every job, and decoding the
        whole state each time would make a flow of n nodes cost n squared.
        """
        with self._guard:
            return self._statuses.get(flow_id)

    def load_state(self, flow_id: str) -> FlowState | None:
        with self._guard:
            text = self._states.get(flow_id)
        return None if text is None else FlowState.from_dict(json.loads(text))

    def push_event(self, flow_id: str, event: Event) -> None:
        text = json.dumps(event_to_dict(event))
        with self._guard:
            self._inboxes.setdefault(flow_id, []).append(text)

    def read_events(self, flow_id: str) -> list[Event]:
        with self._guard:
            texts = list(self._inboxes.get(flow_id, ()))
        return [event_from_dict(json.loads(text)) for text in texts]

    def has_events(self, flow_id: str) -> bool:
        with self._guard:
            return bool(self._inboxes.get(flow_id))

    def commit(self, state: FlowState, consumed: int) -> None:
        text = json.dumps(state.to_dict())
        with self._guard:
            self._commit(state, text, consumed)

    def _commit(self, state: FlowState, text: str, consumed: int) -> None:
        self._states[state.flow_id] = text
        self._statuses[state.flow_id] = state.status
        inbox = self._inboxes.get(state.flow_id)
        if inbox is not None:
            del inbox[:consumed]
        if state.status != RUNNING:
            self._guard.notify_all()

    def try_lock(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> bool:
        with self._guard:
            return self._try_lock(flow_id, token, ttl)

    def _try_lock(self, flow_id: str, token: str, ttl: float) -> bool:
        now = time.monotonic()
        holder = self._locks.get(flow_id)
        if holder is not None and holder[1] > now:
            return False
        self._locks[flow_id] = (token, now + ttl)
        return True

    def unlock(self, flow_id: str, token: str) -> None:
        with self._guard:
            self._unlock(flow_id, token)

    def _unlock(self, flow_id: str, token: str) -> None:
        holder = self._locks.get(flow_id)
        if holder is not None and holder[0] == token:
            del self._locks[flow_id]

    # --- compound calls, each under one hold of the guard --------------------------------

    def _claim(self, flow_id: str, token: str, ttl: float) -> tuple[str | None, list[str]] | None:
        if not self._try_lock(flow_id, token, ttl):
            return None
        return self._states.get(flow_id), list(self._inboxes.get(flow_id, ()))

    @staticmethod
    def _decode_claim(raw: tuple[str | None, list[str]] | None) -> Claim | None:
        if raw is None:
            return None
        text, events = raw
        return Claim(None if text is None else FlowState.from_dict(json.loads(text)),
                     [event_from_dict(json.loads(event)) for event in events])

    def lock_and_load(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> Claim | None:
        with self._guard:
            raw = self._claim(flow_id, token, ttl)
        return self._decode_claim(raw)

    def commit_and_continue(self, state: FlowState, consumed: int, token: str, *, result: Any = NOTHING,
                            ttl: float = LOCK_TTL_S) -> Claim | None:
        flow_id = state.flow_id
        text = json.dumps(state.to_dict())
        result_text = None if result is NOTHING else json.dumps(result)
        with self._guard:
            if result_text is not None:
                self._results[flow_id] = result_text
            self._commit(state, text, consumed)
            holder = self._locks.get(flow_id)
            mine = holder is not None and holder[0] == token
            pending = list(self._inboxes.get(flow_id, ())) if state.status == RUNNING and mine else []
            if not pending:
                self._unlock(flow_id, token)
                return None
            self._locks[flow_id] = (token, time.monotonic() + ttl)
        return Claim(state, [event_from_dict(json.loads(event)) for event in pending])

    def report(self, flow_id: str, event: Event, token: str, *, result: Any = NOTHING,
               error: dict[str, Any] | None = None, check_revoked: bool = True,
               ttl: float = LOCK_TTL_S) -> Report:
        node_id = event.node_id
        result_text = None if result is NOTHING else json.dumps(result)
        error_text = None if error is None else json.dumps(error)
        event_text = json.dumps(event_to_dict(event))
        with self._guard:
            if check_revoked and node_id in self._revoked:
                return Report(revoked=True)
            if result_text is not None:
                self._results[node_id] = result_text
            if error_text is not None:
                self._errors[node_id] = error_text
            self._inboxes.setdefault(flow_id, []).append(event_text)
            raw = self._claim(flow_id, token, ttl)
        return Report(claim=self._decode_claim(raw))

    def revoke(self, node_ids: list[str]) -> None:
        with self._guard:
            self._revoked.update(node_ids)

    def is_revoked(self, node_id: str) -> bool:
        with self._guard:
            return node_id in self._revoked

    def announce_end(self, flow_id: str) -> None:
        with self._guard:
            self._guard.notify_all()

    def wait_for_end(self, flow_id: str, timeout: float | None) -> FlowState | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._guard:
            while True:
                text = self._states.get(flow_id)
                state = None if text is None else FlowState.from_dict(json.loads(text))
                if state is not None and state.status != RUNNING:
                    return state
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return state
                self._guard.wait(remaining)
