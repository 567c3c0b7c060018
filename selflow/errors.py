"""One error tree for selflow: every failure a user can meet is a ``SelflowError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


class SelflowError(Exception):
    """Root of every error raised on purpose by selflow."""


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One mistake in a configuration, with where it is.

    ``line`` and ``column`` are 1-based, as editors show them; 0 means "unknown".
    """

    path: str
    line: int
    column: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(SelflowError):
    """A configuration is invalid; ``issues`` lists every mistake found in one pass."""

    def __init__(self, issues: Iterable[ConfigIssue]):
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class UnknownFlowError(SelflowError):
    """A flow name that the configuration does not define."""


class SelectiveNoPathError(SelflowError):
    """A selective run asked for a node that no path of the flow reaches."""


class DecodeError(SelflowError):
    """A message or stored state could not be decoded."""

    def __init__(self, message: str, data: object = None):
        super().__init__(message)
        self.data = data


class StorageError(SelflowError):
    """A storage adapter failed to read or write."""


class FlowError(SelflowError):
    """A flow ended in failure; ``state`` keeps its finished and failed nodes."""

    def __init__(self, message: str, state: dict | None = None):
        super().__init__(message)
        self.state = state or {}


class FatalTaskError(SelflowError):
    """Raised by a task to fail at once, skipping any retries left."""


class MigrationError(SelflowError):
    """A migration could not be created or applied."""


class NoParentNodeError(SelflowError):
    """A task asked for the result of a parent it does not have."""


class RequestError(SelflowError):
    """A request that cannot be answered, e.g. the exception of a parent that did not fail."""
