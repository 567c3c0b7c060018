"""YAML reading that keeps where every value came from, so each error can point at it.

PyYAML's composer already knows the line and column of every node; we construct plain Python
values from it and keep the marks beside them (``YMap``/``YList``), so the validator can say
``nodes.yml:12:9`` for any key or value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from selflow.errors import ConfigError, ConfigIssue


@dataclass(frozen=True)
class Mark:
    """A position in a source file; ``line`` and ``column`` are 1-based (0 when unknown)."""

    path: str
    line: int
    column: int

    @staticmethod
    def unknown(path: str = "") -> "Mark":
        return Mark(path, 0, 0)

    def issue(self, key_path: str, message: str) -> ConfigIssue:
        return ConfigIssue(self.path, self.line, self.column, key_path, message)


class YMap(dict):
    """A mapping read from YAML; knows its own mark and those of its keys and values."""

    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def mark_of(self, key: Any) -> Mark:
        """Where the value of ``key`` is (or where the key is, for a null value)."""
        return self.value_marks.get(key) or self.key_marks.get(key) or self.mark

    def key_mark(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)


class YList(list):
    """A sequence read from YAML; knows its own mark and those of its items."""

    mark: Mark
    item_marks: list[Mark]

    def mark_of(self, index: int) -> Mark:
        return self.item_marks[index] if 0 <= index < len(self.item_marks) else self.mark


def mark_of(value: Any, default: Mark) -> Mark:
    """The mark of a mapping or list value, or ``default`` for scalars."""
    return getattr(value, "mark", default)


def _mark(path: str, node: yaml.Node) -> Mark:
    return Mark(path, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, path: str):
        self.path = path
        self.constructor = yaml.constructor.SafeConstructor()
        self.issues: list[ConfigIssue] = []

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            items = YList(self.build(child) for child in node.value)
            items.mark = _mark(self.path, node)
            items.item_marks = [_mark(self.path, child) for child in node.value]
            return items
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode) -> YMap:
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        result = YMap()
        result.mark = _mark(self.path, node)
        result.key_marks, result.value_marks = {}, {}
        for key_node, value_node in node.value:
            key = self.build(key_node)
            key_mark = _mark(self.path, key_node)
            if isinstance(key, (YMap, YList)):
                self.issues.append(key_mark.issue("", "a mapping key must be a plain value"))
                continue
            if key in result:
                first = result.key_marks[key]
                self.issues.append(key_mark.issue(
                    str(key), f"duplicate key (first given at line {first.line})"))
                continue
            result[key] = self.build(value_node)
            result.key_marks[key] = key_mark
            result.value_marks[key] = _mark(self.path, value_node)
        return result


def _yaml_hint(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return " (indent with spaces, not tabs)"
    if "mapping values are not allowed" in problem:
        return " (is a ':' missing a space after it, or a value not quoted?)"
    return ""


def parse_yaml(text: str, path: str) -> Any:
    """Parse one YAML document, keeping marks. Raises ``ConfigError`` with the location."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError([ConfigIssue(path, line, column, "", f"invalid YAML: {problem}{_yaml_hint(problem)}")])
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks nearly all its errors
        raise ConfigError([ConfigIssue(path, 0, 0, "", f"invalid YAML: {exc}")])
    if node is None:
        return None
    builder = _Builder(path)
    try:
        value = builder.build(node)
    except yaml.MarkedYAMLError as exc:  # a bad scalar, e.g. an invalid timestamp or !!tag
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError([ConfigIssue(path, line, column, "", f"invalid YAML: {exc.problem or exc.context}")])
    if builder.issues:
        raise ConfigError(builder.issues)
    return value


def read_yaml_file(path: str) -> tuple[Any, bytes]:
    """Read and parse a file; returns the value and the raw bytes (for the input hash)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError([ConfigIssue(path, 0, 0, "", f"cannot read file: {exc.strerror}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(path, 0, 0, "", f"not UTF-8 text: {exc.reason}")])
    return parse_yaml(text, path), raw
