"""``MemoryStorage``: results in a dict of this process (tests, the embedded runner, demos)."""

from __future__ import annotations

import json as _json
import sys
import threading
from typing import Any

from selflow.storages.base import DataStorage, RecordNotFound, check_exc_info, make_record, record_matches, to_json

__all__ = ["MemoryStorage"]


class MemoryStorage(DataStorage):
    """Keeps records in a dict guarded by a lock; nothing survives the process.

    Parameters:
        echo: also print each stored record as one JSON line: ``True`` or ``"stdout"`` to standard
            output, ``"stderr"`` to standard error, ``False`` not at all.
        json: keep results as JSON text and decode them on every read, so a result that is not
            JSON data fails at ``store`` (as it would in a real storage) and a reader can never
            change the stored copy.
    """

    def __init__(self, echo: bool | str = False, json: bool = False):
        if echo not in (False, True, "stdout", "stderr"):
            raise ValueError(f"echo must be false, true, 'stdout' or 'stderr', not {echo!r}")
        self.echo = echo
        self.json = json
        self._records: dict[str, dict[str, Any]] = {}
        self._errors: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._connected = False

    def connect(self) -> None:
        self._connected = True

    def is_connected(self) -> bool:
        return self._connected

    def disconnect(self) -> None:
        self._connected = False

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        record = make_record(node_args, flow_name, task_name, task_id, result=to_json(result) if self.json else result)
        with self._lock:
            self._records[task_id] = record
        self._echo(record)
        return task_id

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        with self._lock:
            record = self._records.get(task_id)
        if not record_matches(record, flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        assert record is not None
        return _json.loads(record["result"]) if self.json else record["result"]

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        with self._lock:
            if not record_matches(self._records.get(task_id), flow_name, task_name):
                raise RecordNotFound(flow_name, task_name, task_id)
            del self._records[task_id]

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> str:
        record = make_record(node_args, flow_name, task_name, task_id, error=check_exc_info(exc_info))
        with self._lock:
            self._errors[task_id] = record
        self._echo(record)
        return task_id

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        with self._lock:
            record = self._errors.get(task_id)
        if not record_matches(record, flow_name, task_name):
            raise RecordNotFound(flow_name, task_name, task_id)
        assert record is not None
        return dict(record["error"])

    def _echo(self, record: dict[str, Any]) -> None:
        if self.echo:
            stream = sys.stderr if self.echo == "stderr" else sys.stdout
            print(_json.dumps(record, default=repr), file=stream, flush=True)
