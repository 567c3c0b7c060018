"""The ``json: true`` trace backend: one JSON object per line, ``{"event", "time", "host", "details"}``.

Without a file, info events go to standard output and warning and error events to standard
error (as Selinon did). With a file, every event goes to it: the file is opened for appending and
each line is written with a single ``write`` call, so the lines of several threads, and of several
worker processes appending to the same file, never interleave.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import IO, Any

from selflow.trace.events import Severity, severity_of

__all__ = ["JsonLinesTracer", "format_line"]


def format_line(event: str, details: dict[str, Any], *, host: str) -> str:
    """One event as a JSON line (with its newline); ``details`` are the payload less ``event``/``time``."""
    body = {key: value for key, value in details.items() if key not in ("event", "time")}
    record = {"event": event, "time": details.get("time"), "host": host, "details": body}
    return json.dumps(record, default=repr, sort_keys=False) + "\n"


class JsonLinesTracer:
    """Write each event as a JSON line.

    Parameters:
        path: append to this file (created if missing).
        stream: write every event to this stream instead.
        Without either: stdout for info events, stderr for the others (looked up at each event,
        so a redirected ``sys.stdout`` is honoured).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, stream: IO[str] | None = None):
        if path is not None and stream is not None:
            raise ValueError("give a path or a stream, not both")
        self.host = socket.gethostname()
        self.path = os.fspath(path) if path is not None else None
        self._stream = stream
        self._fd: int | None = None
        self._lock = threading.Lock()
        if self.path is not None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        line = format_line(event, details, host=self.host)
        if self.path is not None:
            data = line.encode("utf-8")
            with self._lock:
                if self._fd is None:
                    raise ValueError(f"trace file {self.path} is closed")
                written = os.write(self._fd, data)
                while written < len(data):  # only on a full disk or a signal; rare
                    written += os.write(self._fd, data[written:])
            return
        stream = self._stream
        if stream is None:
            stream = sys.stdout if severity_of(event) is Severity.INFO else sys.stderr
        with self._lock:
            stream.write(line)
            stream.flush()

    def close(self) -> None:
        """Close the file, if the tracer opened one."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        target = self.path or ("stream" if self._stream is not None else "stdout/stderr")
        return f"JsonLinesTracer({target})"
