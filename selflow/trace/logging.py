"""The ``logging: true`` trace backend: one log line per event on the ``selflow.trace`` logger.

Each line reads ``selflow@<host> <EVENT> <JSON>`` (the JSON is the payload less ``event``), at
INFO, WARNING or ERROR after the event's severity. The record also carries ``selflow_event`` and
``selflow_payload`` attributes, for handlers that want structured data.

Where the lines go: when the application has configured logging (a Celery worker, the CLI), they
go to its handlers. When nothing is configured, the backend adds one handler of its own on
standard error: coloured by rainbow-logging-handler on a terminal (unless ``NO_COLOR`` is set),
plain otherwise. Either way the logger's level is set to INFO when it has none, since asking for
trace logging means asking for the INFO events.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from typing import IO, Any

from selflow.trace.events import severity_of

__all__ = ["LoggingTracer", "LOGGER_NAME", "trace_handler", "is_colour_terminal"]

LOGGER_NAME = "selflow.trace"
#: the format of the handler the backend adds itself: the message alone (it holds the time)
HANDLER_FORMAT = "%(message)s"


class LoggingTracer:
    """Log each event on ``logger`` (default ``selflow.trace``).

    Parameters:
        logger: a logger or a logger name.
        stream: log to this stream through a handler of the tracer's own (coloured when the
            stream is a terminal), and not to the application's handlers.
    """

    def __init__(self, logger: logging.Logger | str = LOGGER_NAME, *, stream: IO[str] | None = None):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.host = socket.gethostname()
        if stream is not None:
            _replace_own_handler(self.logger, trace_handler(stream))
            self.logger.propagate = False
        elif not self.logger.hasHandlers():
            _replace_own_handler(self.logger, trace_handler(sys.stderr))
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(logging.INFO)

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        level = severity_of(event).log_level
        if not self.logger.isEnabledFor(level):
            return
        body = {key: value for key, value in details.items() if key != "event"}
        self.logger.log(level, "selflow@%s %s %s", self.host, event, json.dumps(body, default=repr),
                        extra={"selflow_event": event, "selflow_payload": details})

    def __repr__(self) -> str:
        return f"LoggingTracer({self.logger.name!r})"


def is_colour_terminal(stream: Any) -> bool:
    """True when ``stream`` is a terminal and colours are not turned off by ``NO_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def trace_handler(stream: IO[str]) -> logging.Handler:
    """A handler for trace lines on ``stream``: rainbow-logging-handler on a terminal, plain otherwise."""
    handler: logging.Handler
    if is_colour_terminal(stream):
        from rainbow_logging_handler import RainbowLoggingHandler

        handler = RainbowLoggingHandler(stream)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(HANDLER_FORMAT))
    handler._selflow_trace = True  # type: ignore[attr-defined]  # marks the handlers added here
    return handler


def _replace_own_handler(logger: logging.Logger, handler: logging.Handler) -> None:
    """Add ``handler``, dropping one added earlier by this module (building tracers twice adds one)."""
    for old in [h for h in logger.handlers if getattr(h, "_selflow_trace", False)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
