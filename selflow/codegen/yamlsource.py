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


_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _is_empty(node: yaml.Node) -> bool:
    """True for a value left out entirely (``key:`` with nothing after it)."""
    return isinstance(node, yaml.ScalarNode) and node.value == "" and node.style is None


class _Builder:
    def __init__(self, path: str):
        self.path = path
        self.constructor = yaml.constructor.SafeConstructor()
        self.issues: list[ConfigIssue] = []
        # a node reached again through an alias is built once and shared, as PyYAML does; this
        # keeps "billion laughs" aliases linear and lets us spot an alias inside its own anchor
        self.built: dict[int, Any] = {}
        self.building: set[int] = set()
        # pairs each mapping holds itself, not counting merge keys, taken before merging rewrites them
        self.own_pairs: dict[int, int] = {}

    def survey(self, root: yaml.Node) -> None:
        """Count every mapping's own pairs; call once before ``build``."""
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in self.own_pairs or not isinstance(node, yaml.CollectionNode):
                continue
            if isinstance(node, yaml.MappingNode):
                self.own_pairs[id(node)] = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
                stack.extend(child for pair in node.value for child in pair)
            else:
                self.own_pairs[id(node)] = 0
                stack.extend(node.value)

    def build(self, node: yaml.Node, key_path: str = "") -> Any:
        """Construct ``node``; ``key_path`` (like ``tasks[0].import``) is where it sits, for issues.

        A value that cannot be built (a bad tag, a scalar that does not fit its tag) is reported
        and built as None, so every such value in the file is reported at once.
        """
        if id(node) in self.built:
            return self.built[id(node)]
        if id(node) in self.building:
            return self._refuse(node, key_path, "an alias refers to the collection that holds it")
        if node.tag not in (_COLLECTION_TAGS if isinstance(node, yaml.CollectionNode)
                            else self.constructor.yaml_constructors):
            return self._refuse(node, key_path, f"the tag '{_short_tag(node.tag)}' is not supported here")
        self.building.add(id(node))
        try:
            value = self._build(node, key_path)
        finally:
            self.building.discard(id(node))
        self.built[id(node)] = value
        return value

    def _refuse(self, node: yaml.Node, key_path: str, problem: str) -> None:
        self.issues.append(_mark(self.path, node).issue(key_path, problem))
        return None

    def _build(self, node: yaml.Node, key_path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, key_path)
        if isinstance(node, yaml.SequenceNode):
            items = YList(self.build(child, f"{key_path}[{index}]") for index, child in enumerate(node.value))
            items.mark = _mark(self.path, node)
            items.item_marks = [_mark(self.path, child) for child in node.value]
            return items
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - e.g. `!!int abc` or an unquoted `2001-99-99`
            return self._refuse(node, key_path, f"cannot read {node.value!r} as {_short_tag(node.tag)} "
                                                "(quote it if it is meant as a string)")

    def _mapping(self, node: yaml.MappingNode, key_path: str) -> YMap:
        own_pairs = self.own_pairs.get(id(node), len(node.value))
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        merged_pairs = len(node.value) - own_pairs  # flattening puts the merged pairs first
        merged: set[Any] = set()  # keys whose value came from a merge; the mapping's own keys override them
        result = YMap()
        result.mark = _mark(self.path, node)
        result.key_marks, result.value_marks = {}, {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.build(key_node)
            key_mark = _mark(self.path, key_node)
            if isinstance(key, (YMap, YList)):
                self.issues.append(key_mark.issue(key_path, "a mapping key must be a plain value"))
                continue
            child_path = f"{key_path}.{key}" if key_path else str(key)
            if key in result and key not in merged:
                first = result.key_marks[key]
                self.issues.append(key_mark.issue(child_path, f"duplicate key (first given at line {first.line})"))
                continue
            if index < merged_pairs:
                merged.add(key)
            else:
                merged.discard(key)
            result.value_marks.pop(key, None)
            result[key] = self.build(value_node, child_path)
            result.key_marks[key] = key_mark
            if not _is_empty(value_node):  # an empty value is reported at its key
                result.value_marks[key] = _mark(self.path, value_node)
        return result


def _yaml_hint(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return " (indent with spaces, not tabs)"
    if "mapping values are not allowed" in problem:
        return " (is a ':' missing a space after it, or a value not quoted?)"
    return ""


def _yaml_context(exc: yaml.MarkedYAMLError) -> str:
    """Where the construct that went wrong began, e.g. the '[' that is never closed."""
    if not (exc.problem and exc.context and exc.context_mark and exc.problem_mark):
        return ""
    if exc.context_mark.line == exc.problem_mark.line and exc.context_mark.column == exc.problem_mark.column:
        return ""
    return f" ({exc.context} started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"


def parse_yaml(text: str, path: str) -> Any:
    """Parse one YAML document, keeping marks. Raises ``ConfigError`` with the location."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError([ConfigIssue(path, line, column, "",
                                       f"invalid YAML: {problem}{_yaml_hint(problem)}{_yaml_context(exc)}")])
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks nearly all its errors
        raise ConfigError([ConfigIssue(path, 0, 0, "", f"invalid YAML: {exc}")])
    if node is None:
        return None
    builder = _Builder(path)
    builder.survey(node)
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
