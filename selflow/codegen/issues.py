"""Collecting configuration mistakes, and reading typed values that report their own errors.

The validator never stops at the first mistake: every check appends a ``ConfigIssue`` here and
returns a usable fallback value, so one run reports everything at once.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import string
from typing import Any, Iterable

from selflow.codegen.yamlsource import Mark, YList, YMap, mark_of
from selflow.errors import ConfigError, ConfigIssue

NODE_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
MODULE_PATH = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*(\.[_a-zA-Z][_a-zA-Z0-9]*)*$")

#: keys starting with this prefix are free for YAML anchors, as in Compose files
FREE_KEY_PREFIX = "x-"


def suggestion(name: object, candidates: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for a close match, else an empty string."""
    if not isinstance(name, str):
        return ""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def first_at(first: Mark, here: Mark) -> str:
    """Where an earlier definition is: ``line 3`` in the same file, else ``path:3``."""
    return f"line {first.line}" if first.path == here.path else f"{first.path}:{first.line}"


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Issues:
    """The mistakes found so far, and typed readers that add to them."""

    def __init__(self) -> None:
        self.found: list[ConfigIssue] = []

    def error(self, mark: Mark, key_path: str, message: str) -> None:
        self.found.append(mark.issue(key_path, message))

    def raise_if_any(self) -> None:
        if self.found:
            unique = sorted(set(self.found), key=lambda i: (i.path, i.line, i.column, i.key_path, i.message))
            raise ConfigError(unique)

    # --- shapes -------------------------------------------------------------------------

    def mapping(self, value: Any, mark: Mark, key_path: str, what: str) -> YMap | None:
        if isinstance(value, YMap):
            return value
        self.error(mark_of(value, mark), key_path, f"{what} must be a mapping, not {type_name(value)}")
        return None

    def keys(self, data: YMap, key_path: str, allowed: Iterable[str], required: Iterable[str] = (),
             what: str = "option") -> None:
        """Report unknown keys (with a suggestion) and missing required ones."""
        allowed = list(allowed)
        for key in data:
            if key in allowed or (isinstance(key, str) and key.startswith(FREE_KEY_PREFIX)):
                continue
            self.error(data.key_mark(key), _join(key_path, key),
                       f"unknown {what} '{key}'{suggestion(key, allowed)}")
        for key in required:
            if key not in data:
                self.error(data.mark, key_path, f"missing required key '{key}'")

    # --- scalars ------------------------------------------------------------------------

    def string(self, data: YMap, key: str, key_path: str, default: str | None = None, *,
               required: bool = False) -> str | None:
        """A non-empty string; ``default`` when the key is absent or left empty.

        With ``required``, a key given with no value is an issue (a missing key is reported by
        ``keys``).
        """
        value = data.get(key)
        if value is None:
            if required and key in data:
                self.error(data.mark_of(key), _join(key_path, key), "needs a value")
            return default
        if isinstance(value, str) and value:
            return value
        self.error(data.mark_of(key), _join(key_path, key), f"must be a non-empty string, not {type_name(value)}")
        return default

    def boolean(self, data: YMap, key: str, key_path: str, default: bool = False) -> bool:
        value = data.get(key, default)
        if isinstance(value, bool):
            return value
        self.error(data.mark_of(key), _join(key_path, key), f"must be true or false, not {type_name(value)}")
        return default

    def count(self, data: YMap, key: str, key_path: str, default: int = 0) -> int:
        value = data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.error(data.mark_of(key), _join(key_path, key), f"must be a whole number >= 0, not {value!r}")
        return default

    def seconds(self, data: YMap, key: str, key_path: str, default: float = 0) -> float:
        value = data.get(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
            return value
        self.error(data.mark_of(key), _join(key_path, key), f"must be a number of seconds >= 0, not {value!r}")
        return default

    def names(self, data: YMap, key: str, key_path: str) -> list[tuple[str, Mark]]:
        """A name or a list of names (Selinon accepts both), each with its mark."""
        value = data.get(key)
        mark = data.mark_of(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [(value, mark)]
        if isinstance(value, YList):
            result = []
            for index, item in enumerate(value):
                if isinstance(item, str):
                    result.append((item, value.mark_of(index)))
                else:
                    self.error(value.mark_of(index), f"{_join(key_path, key)}[{index}]",
                               f"must be a name (a string), not {type_name(item)}")
            return result
        self.error(mark, _join(key_path, key), f"must be a name or a list of names, not {type_name(value)}")
        return []

    def expand_env(self, value: str, mark: Mark, key_path: str) -> str:
        """Selinon's ``{VAR}`` environment expansion; a missing variable is an issue."""
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            self.error(mark, key_path, f"bad '{{...}}' environment placeholder: {exc}")
            return value
        missing = [name for name in fields if name not in os.environ]
        if missing:
            names = ", ".join(sorted(set(missing)))
            self.error(mark, key_path, f"environment variable {names} is not set (used as '{{{missing[0]}}}')")
            return value
        try:
            return value.format(**os.environ)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            self.error(mark, key_path, f"bad '{{...}}' environment placeholder: {exc}")
            return value


def _join(key_path: str, key: object) -> str:
    return f"{key_path}.{key}" if key_path else str(key)


join_path = _join
