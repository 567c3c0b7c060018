"""``FilesystemStorage``: one JSON file per result, at ``<path>/<flow>/<task>/<task_id>.json``."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from selflow.storages.base import DataStorage, RecordNotFound, check_exc_info, to_json

__all__ = ["FilesystemStorage"]


class FilesystemStorage(DataStorage):
    """Writes each result as JSON to ``<path>/<flow_name>/<task_name>/<task_id>.json``.

    A file holds the result alone. Writes are atomic: the JSON goes to a temporary file in the
    same directory, which then replaces the target (``os.replace``), so a reader - in this or any
    other process - sees either no file, the previous content, or the whole new content, never a
    partial file. Errors from ``store_error`` go to ``<task_id>.error.json`` next to it.

    Parameters:
        path: the root directory, created on ``connect`` if missing; ``None`` means the current
            directory at connect time (Selinon's default ``{PWD}``).
        fsync: also flush each file to disk before it replaces the target (slower; survives a
            power loss, not just a crash of the process).
        file_mode: permission bits of the result files (temporary files start private).
    """

    def __init__(self, path: str | None = None, fsync: bool = False, file_mode: int = 0o644):
        self.path = path
        self.fsync = fsync
        self.file_mode = file_mode
        self._root: str | None = None

    def connect(self) -> None:
        root = os.path.abspath(self.path if self.path is not None else os.getcwd())
        os.makedirs(root, exist_ok=True)
        self._root = root

    def is_connected(self) -> bool:
        return self._root is not None

    def disconnect(self) -> None:
        self._root = None

    def store(self, node_args: Any, flow_name: str, task_name: str, task_id: str, result: Any) -> str:
        return self._write(self._file(flow_name, task_name, task_id, ".json"), to_json(result))

    def retrieve(self, flow_name: str, task_name: str, task_id: str) -> Any:
        return self._read(flow_name, task_name, task_id, ".json")

    def delete(self, flow_name: str, task_name: str, task_id: str) -> None:
        try:
            os.remove(self._file(flow_name, task_name, task_id, ".json"))
        except FileNotFoundError:
            raise RecordNotFound(flow_name, task_name, task_id) from None

    def store_error(self, node_args: Any, flow_name: str, task_name: str, task_id: str,
                    exc_info: dict[str, str]) -> str:
        text = to_json({"node_args": node_args, "error": check_exc_info(exc_info)})
        return self._write(self._file(flow_name, task_name, task_id, ".error.json"), text)

    def retrieve_error(self, flow_name: str, task_name: str, task_id: str) -> dict[str, str]:
        """The ``exc_info`` stored by ``store_error`` (not part of the adapter interface)."""
        return dict(self._read(flow_name, task_name, task_id, ".error.json")["error"])

    # --- files ------------------------------------------------------------------------------

    def _file(self, flow_name: str, task_name: str, task_id: str, suffix: str) -> str:
        if self._root is None:
            raise RuntimeError("FilesystemStorage is not connected")
        for part in (flow_name, task_name, task_id):
            if not part or part in (".", "..") or "/" in part or os.sep in part or "\0" in part:
                raise ValueError(f"{part!r} cannot be used as a file name")
        return os.path.join(self._root, flow_name, task_name, task_id + suffix)

    def _read(self, flow_name: str, task_name: str, task_id: str, suffix: str) -> Any:
        try:
            with open(self._file(flow_name, task_name, task_id, suffix), encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise RecordNotFound(flow_name, task_name, task_id) from None

    def _write(self, target: str, text: str) -> str:
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), self.file_mode)
                handle.write(text)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            try:
                os.remove(temporary)
            except FileNotFoundError:
                pass
            raise
        return target
