"""Finding and reading configuration files in Selinon's layout.

A configuration is any mix of: a nodes file (``tasks``, ``flows``, ``storages``, ``global``),
flow files (``flow-definitions``), a single file holding both, or a directory holding
``nodes.yaml``/``nodes.yml`` and every YAML file under ``flows/``. Each file is read once even
when it is named twice (Selinon users pass one file as both ``-n`` and ``-f``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from selflow.codegen.issues import FREE_KEY_PREFIX, Issues, suggestion, type_name
from selflow.codegen.yamlsource import Mark, YList, YMap, read_yaml_file
from selflow.errors import ConfigError

NODES_KEYS = ("tasks", "flows", "storages", "global")
FLOWS_KEY = "flow-definitions"
TOP_LEVEL_KEYS = NODES_KEYS + (FLOWS_KEY,)
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class RawConfig:
    """The top-level sections of every file, merged, each item still carrying its marks."""

    tasks: list[tuple[Any, Mark]] = field(default_factory=list)
    flows: list[tuple[Any, Mark]] = field(default_factory=list)
    storages: list[tuple[Any, Mark]] = field(default_factory=list)
    global_: YMap | None = None
    flow_definitions: list[tuple[Any, Mark]] = field(default_factory=list)
    has_tasks: bool = False
    has_flows: bool = False
    first_mark: Mark = Mark.unknown()
    input_hash: str = ""


def _yaml_files_under(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.normpath(os.path.join(root, f)) for f in sorted(files)
                  if f.endswith(YAML_SUFFIXES) and not f.startswith(".")]
    return found


def _expand(path: str, issues: Issues, *, flows_only: bool) -> list[tuple[str, bool]]:
    """Files for one command-line path, each with "must hold flow-definitions"."""
    if os.path.isdir(path):
        if flows_only:
            return [(f, True) for f in _yaml_files_under(path)]
        nodes = [os.path.normpath(os.path.join(path, n)) for n in ("nodes.yaml", "nodes.yml")
                 if os.path.isfile(os.path.join(path, n))]
        if len(nodes) > 1:
            issues.error(Mark.unknown(path), "", "holds both nodes.yaml and nodes.yml; keep one")
        if not nodes:
            issues.error(Mark.unknown(path), "", "directory has no nodes.yaml or nodes.yml")
        flows_dir = os.path.join(path, "flows")
        flow_files = _yaml_files_under(flows_dir) if os.path.isdir(flows_dir) else []
        return [(n, False) for n in nodes[:1]] + [(f, True) for f in flow_files]
    if os.path.isfile(path):
        return [(path, flows_only)]
    issues.error(Mark.unknown(path), "", "no such file or directory")
    return []


def collect_files(configs: Sequence[str], nodes: str | None, flows: Sequence[str],
                  issues: Issues) -> list[tuple[str, bool]]:
    """The files to read, in order, each once."""
    entries: list[tuple[str, bool]] = []
    if nodes is not None:
        entries += _expand(nodes, issues, flows_only=False)
    for path in configs:
        entries += _expand(path, issues, flows_only=False)
    for path in flows:
        entries += _expand(path, issues, flows_only=True)
    seen: dict[str, int] = {}
    result: list[tuple[str, bool]] = []
    for path, must_hold_flows in entries:
        key = os.path.realpath(path)
        if key in seen:
            index = seen[key]
            result[index] = (result[index][0], result[index][1] or must_hold_flows)
            continue
        seen[key] = len(result)
        result.append((path, must_hold_flows))
    return result


def _section_list(doc: YMap, key: str, issues: Issues) -> list[tuple[Any, Mark]]:
    value = doc[key]
    if not isinstance(value, YList):
        issues.error(doc.mark_of(key), key, f"must be a list, not {type_name(value)}")
        return []
    return [(item, value.mark_of(i)) for i, item in enumerate(value)]


def read_config(configs: Sequence[str] = (), *, nodes: str | None = None, flows: Sequence[str] = (),
                issues: Issues | None = None) -> RawConfig:
    """Read and merge every file.

    Raises ``ConfigError`` at once for what makes further checks meaningless (a missing file, a
    YAML syntax error, no tasks or flows section); other mistakes go to ``issues`` and the
    validator carries on, so one run reports them all.
    """
    issues = issues if issues is not None else Issues()
    files = collect_files(configs, nodes, flows, issues)
    if not files and not issues.found:
        issues.error(Mark.unknown("<config>"), "", "no configuration given")
    raw = RawConfig()
    digest = hashlib.sha256()
    global_mark: Mark | None = None
    fatal = bool(issues.found)  # unreadable paths
    for path, must_hold_flows in files:
        try:
            doc, content = read_yaml_file(path)
        except ConfigError as exc:
            issues.found.extend(exc.issues)
            fatal = True
            continue
        digest.update(hashlib.sha256(content).digest())
        if doc is None:
            issues.error(Mark(path, 1, 1), "", "file is empty")
            continue
        if not isinstance(doc, YMap):
            issues.error(getattr(doc, "mark", Mark(path, 1, 1)), "",
                         f"top level must be a mapping of sections, not {type_name(doc)}")
            continue
        if raw.first_mark.line == 0:
            raw.first_mark = doc.mark
        for key in doc:
            if key in TOP_LEVEL_KEYS or (isinstance(key, str) and key.startswith(FREE_KEY_PREFIX)):
                continue
            issues.error(doc.key_mark(key), str(key),
                         f"unknown top-level key '{key}'"
                         + (suggestion(key, TOP_LEVEL_KEYS) or
                            f" (keys starting with '{FREE_KEY_PREFIX}' are free for YAML anchors)"))
        if must_hold_flows and FLOWS_KEY not in doc:
            issues.error(doc.mark, "", f"a flow file needs a '{FLOWS_KEY}' list")
        if not any(key in doc for key in TOP_LEVEL_KEYS):
            if not must_hold_flows:
                issues.error(doc.mark, "", "nothing to load: expected tasks, flows, storages, global "
                                           f"or {FLOWS_KEY}")
            continue
        if "tasks" in doc:
            raw.has_tasks = True
            if doc["tasks"] is None or doc["tasks"] == []:
                issues.error(doc.mark_of("tasks"), "tasks", "no tasks defined (the list is empty)")
            else:
                raw.tasks += _section_list(doc, "tasks", issues)
        if "flows" in doc:
            raw.has_flows = True
            if doc["flows"] is None or doc["flows"] == []:
                issues.error(doc.mark_of("flows"), "flows", "no flows listed (the list is empty)")
            else:
                raw.flows += _section_list(doc, "flows", issues)
        if "storages" in doc and doc["storages"] is not None:
            raw.storages += _section_list(doc, "storages", issues)
        if FLOWS_KEY in doc:
            if doc[FLOWS_KEY] is None:
                issues.error(doc.mark_of(FLOWS_KEY), FLOWS_KEY, "no flow definitions (the list is empty)")
            else:
                raw.flow_definitions += _section_list(doc, FLOWS_KEY, issues)
        if "global" in doc and doc["global"] is not None:
            if global_mark is not None:
                issues.error(doc.key_mark("global"), "global",
                             f"'global' is given twice (first in {global_mark.path}:{global_mark.line})")
            elif isinstance(doc["global"], YMap):
                raw.global_, global_mark = doc["global"], doc.key_mark("global")
            else:
                issues.error(doc.mark_of("global"), "global", f"must be a mapping, not {type_name(doc['global'])}")
    if fatal or (raw.first_mark.line == 0 and issues.found):  # nothing readable: no point going on
        issues.raise_if_any()
    if not raw.has_tasks:
        issues.error(raw.first_mark, "tasks", "no 'tasks' section in any file (is the nodes file missing?)")
    if not raw.has_flows:
        issues.error(raw.first_mark, "flows", "no 'flows' section in any file (is the nodes file missing?)")
    if not (raw.has_tasks and raw.has_flows):
        issues.raise_if_any()
    raw.input_hash = digest.hexdigest()
    return raw
