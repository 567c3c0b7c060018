"""Draw each flow of a validated system as a Graphviz graph.

The picture uses Selinon's visual language so that people who know those drawings can read ours:
tasks are rounded boxes, sub-flows are grey, a condition is a node of its own (an octagon, a double
octagon for a ``foreach`` edge), storages are cylinders on dashed edges and fallbacks are red.

Node ids come from node names and from positions in the flow, never from ``id()``, so the same
system always gives the same dot source (which keeps rendered docs stable under review).
Writing ``dot`` needs only the Python ``graphviz`` package; any other format runs the ``dot``
binary, and we check for it first so the user gets a remedy instead of a traceback.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
from typing import Any, Mapping, Sequence

import graphviz

from selflow.codegen.model import Condition, FlowSpec, ForeachSpec, SystemSpec, condition_str
from selflow.codegen.yamlsource import Mark, YMap, mark_of, read_yaml_file
from selflow.errors import ConfigError, ConfigIssue, SelflowError

#: Output formats ``plot_system`` accepts; all but ``dot`` need the Graphviz ``dot`` binary.
FORMATS = ("svg", "png", "pdf", "dot")

#: Graphviz attributes per drawing element; a style file overrides them key by key.
DEFAULT_STYLE: dict[str, dict[str, str]] = {
    "graph": {
        "rankdir": "TB",
        "fontname": "Helvetica",
        "fontsize": "16",
        "labelloc": "t",
        "nodesep": "0.4",
        "ranksep": "0.45",
        "pad": "0.3",
    },
    "task": {"shape": "box", "style": "rounded", "fontname": "Helvetica", "fontsize": "12",
             "margin": "0.2,0.08"},
    "flow": {"shape": "box", "style": "rounded,filled", "fillcolor": "grey80", "color": "grey35",
             "fontname": "Helvetica-Bold", "fontsize": "12", "margin": "0.2,0.08"},
    "condition": {"shape": "octagon", "fontname": "Courier", "fontsize": "10", "color": "grey35",
                  "margin": "0.05,0.03"},
    "condition_foreach": {"shape": "doubleoctagon", "fontname": "Courier", "fontsize": "10",
                          "color": "grey35", "margin": "0.05,0.03"},
    "storage": {"shape": "cylinder", "fontname": "Helvetica", "fontsize": "11", "color": "grey35",
                "style": "filled", "fillcolor": "lightyellow"},
    "edge": {"arrowsize": "0.7", "color": "grey20", "fontname": "Helvetica", "fontsize": "9"},
    "store_edge": {"style": "dashed", "arrowhead": "none", "color": "grey45",
                   "fontname": "Helvetica", "fontsize": "9", "fontcolor": "grey35"},
    "fallback_edge": {"color": "red", "arrowsize": "0.7", "fontname": "Helvetica", "fontsize": "9"},
    "fallback_true": {"shape": "box", "style": "rounded,dashed", "color": "red", "fontcolor": "red",
                      "fontname": "Helvetica-Bold", "fontsize": "12"},
}

#: The small dot every starting edge leaves from; fixed, as it carries no information to style.
_START_ATTRS = {"shape": "circle", "style": "filled", "fillcolor": "black", "label": "",
                "width": "0.18", "fixedsize": "true"}
#: Where several sources meet on an edge with no condition: all of them must finish first.
_JOIN_ATTRS = {"shape": "point", "width": "0.09", "label": ""}
_JOIN_SUFFIX = "_join"

#: Labels longer than this are broken at top-level ``and``/``or`` to keep condition nodes narrow.
_WRAP_AT = 40


class PlotError(SelflowError):
    """A flow could not be drawn: unknown flow, unknown format or no Graphviz binary."""


# --- style --------------------------------------------------------------------------------


def merge_style(style: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, str]]:
    """``DEFAULT_STYLE`` with ``style`` laid over it attribute by attribute.

    Overrides add to the defaults rather than replace them, so ``task: {color: blue}`` keeps
    the rounded box. Unknown keys raise ``PlotError``, as a typo would otherwise do nothing.
    """
    merged = {key: dict(attrs) for key, attrs in DEFAULT_STYLE.items()}
    for key, attrs in (style or {}).items():
        if key not in merged:
            raise PlotError(f"unknown style key {key!r}{_did_you_mean(key, DEFAULT_STYLE)}")
        if not isinstance(attrs, Mapping):
            raise PlotError(f"style key {key!r} must map Graphviz attribute names to values")
        merged[key].update({str(name): _attr_str(value) for name, value in attrs.items()})
    return merged


def load_style(path: str) -> dict[str, dict[str, str]]:
    """Read a style file (a top-level ``style:`` mapping) and return the merged style.

    All mistakes are collected and raised as one ``ConfigError`` with ``path:line:col``.
    """
    data, _raw = read_yaml_file(path)
    top = mark_of(data, Mark(path, 1, 1))
    if not isinstance(data, YMap):
        raise ConfigError([top.issue("", "a style file must be a mapping with a 'style:' key")])
    issues: list[ConfigIssue] = []
    for key in data:
        if key != "style":
            issues.append(data.key_mark(key).issue(
                str(key), f"unknown top-level key{_did_you_mean(key, ('style',))}"))
    if "style" not in data:
        issues.append(data.mark.issue("", "missing the top-level 'style:' mapping"))
        raise ConfigError(issues)
    section = data["style"]
    if not isinstance(section, YMap):
        issues.append(data.mark_of("style").issue("style", "must be a mapping of style keys"))
        raise ConfigError(issues)
    overrides: dict[str, dict[str, str]] = {}
    for key, attrs in section.items():
        key_path = f"style.{key}"
        if key not in DEFAULT_STYLE:
            issues.append(section.key_mark(key).issue(
                key_path, f"unknown style key{_did_you_mean(key, DEFAULT_STYLE)}; "
                          f"known keys: {', '.join(sorted(DEFAULT_STYLE))}"))
            continue
        if not isinstance(attrs, YMap):
            issues.append(section.mark_of(key).issue(
                key_path, "must be a mapping of Graphviz attributes, e.g. {color: blue}"))
            continue
        for name, value in attrs.items():
            if isinstance(value, (dict, list)) or value is None:
                issues.append(attrs.mark_of(name).issue(
                    f"{key_path}.{name}", "a Graphviz attribute must be a plain value"))
            else:
                overrides.setdefault(str(key), {})[str(name)] = _attr_str(value)
    if issues:
        raise ConfigError(issues)
    return merge_style(overrides)


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):  # YAML ``true`` would otherwise become "True", which dot rejects
        return "true" if value else "false"
    return str(value)


def _did_you_mean(word: object, choices: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- one flow -----------------------------------------------------------------------------


def _node_id(prefix: str, name: str) -> str:
    """A stable dot id; names outside a safe alphabet are hashed (``:`` would be read as a port)."""
    if re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        return f"{prefix}_{name}"
    return f"{prefix}_h{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def _wrap(text: str) -> str:
    """Break a long condition at its top-level ``and``/``or`` so the octagon stays compact."""
    if len(text) <= _WRAP_AT:
        return graphviz.escape(text)
    parts: list[str] = []
    depth = start = 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        for word in (" and ", " or "):
            if depth == 1 and text.startswith(word, i):
                parts.append(text[start:i])
                start = i + 1
    parts.append(text[start:])
    return "\\n".join(graphviz.escape(part) for part in parts)


def _condition_label(cond: Condition | None, foreach: ForeachSpec | None) -> str:
    label = _wrap(condition_str(cond))
    if foreach is None:
        return label
    head = "foreach " + graphviz.escape(str(foreach.ref))
    if foreach.propagate_result:
        head += "\\n(propagate_result)"
    return head if cond is None else f"{head}\\nif {label}"


def _node_order(flow: FlowSpec) -> list[str]:
    """Nodes in order of first appearance, which gives dot a layout close to the YAML's."""
    names: list[str] = []
    for edge in flow.edges:
        names += [*edge.from_nodes, *edge.to_nodes]
    for failure in flow.failures:
        names += [*failure.nodes, *(failure.fallback or ())]
    return list(dict.fromkeys(names))


def flow_graph(system: SystemSpec, flow_name: str,
               style: Mapping[str, Mapping[str, str]] | None = None) -> graphviz.Digraph:
    """Build the graph of one flow; the caller chooses how to render it."""
    flow = system.flow(flow_name)
    if flow is None:
        raise PlotError(f"unknown flow {flow_name!r}"
                        f"{_did_you_mean(flow_name, [f.name for f in system.flows])}")
    st = merge_style(style)
    graph = graphviz.Digraph(name=flow.name)
    graph.attr("graph", label=graphviz.escape(flow.name), **st["graph"])

    flow_names = {f.name for f in system.flows}
    ids: dict[str, str] = {}
    for name in _node_order(flow):
        ids[name] = _node_id("node", name)
        is_subflow = system.task(name) is None and name in flow_names
        graph.node(ids[name], label=graphviz.escape(name), **st["flow" if is_subflow else "task"])

    if any(not edge.from_nodes for edge in flow.edges):
        graph.node("start", **_START_ATTRS)

    for index, edge in enumerate(flow.edges):
        sources = [ids[n] for n in edge.from_nodes] or ["start"]
        targets = [ids[n] for n in edge.to_nodes]
        if edge.condition is not None or edge.foreach is not None:
            kind = "condition" if edge.foreach is None else "condition_foreach"
            hub = f"edge{index}_{'cond' if edge.foreach is None else 'foreach'}"
            graph.node(hub, label=_condition_label(edge.condition, edge.foreach), **st[kind])
        elif len(sources) > 1:
            hub = f"edge{index}{_JOIN_SUFFIX}"
            graph.node(hub, **_JOIN_ATTRS)
        else:
            hub = None
        _connect(graph, sources, hub, targets, st["edge"])

    _draw_failures(graph, flow, ids, st)
    _draw_storages(graph, system, flow, ids, st)
    return graph


def _connect(graph: graphviz.Digraph, sources: list[str], hub: str | None, targets: list[str],
             attrs: Mapping[str, str]) -> None:
    """Sources -> hub -> targets, or straight across when there is no hub.

    Edges into a join point have no arrowhead, so the point reads as "these meet here".
    """
    if hub is None:
        for source in sources:
            for target in targets:
                graph.edge(source, target, **attrs)
        return
    into_hub = dict(attrs, arrowhead="none") if hub.endswith(_JOIN_SUFFIX) else attrs
    for source in sources:
        graph.edge(source, hub, **into_hub)
    for target in targets:
        graph.edge(hub, target, **attrs)


def _draw_failures(graph: graphviz.Digraph, flow: FlowSpec, ids: Mapping[str, str],
                   st: Mapping[str, Mapping[str, str]]) -> None:
    for index, failure in enumerate(flow.failures):
        sources = [ids[n] for n in failure.nodes]
        if failure.fallback is None:
            true_id = f"failure{index}_true"
            graph.node(true_id, **{"label": "True", **st["fallback_true"]})
            targets = [true_id]
        else:
            targets = [ids[n] for n in failure.fallback]
        if failure.condition is not None:
            hub: str | None = f"failure{index}_cond"
            # a fallback's condition wears the fallback colour, so it is not read as a normal edge
            attrs = dict(st["condition"], color=st["fallback_edge"].get("color", "red"))
            graph.node(hub, label=_condition_label(failure.condition, None), **attrs)
        elif len(sources) > 1:
            hub = f"failure{index}{_JOIN_SUFFIX}"
            graph.node(hub, **dict(_JOIN_ATTRS, color=st["fallback_edge"].get("color", "red")))
        else:
            hub = None
        _connect(graph, sources, hub, targets, st["fallback_edge"])


def _draw_storages(graph: graphviz.Digraph, system: SystemSpec, flow: FlowSpec,
                   ids: Mapping[str, str], st: Mapping[str, Mapping[str, str]]) -> None:
    """One cylinder per storage used in the flow; read-only tasks get their own edge label."""
    used: dict[str, list[str]] = {}
    for name in ids:
        task = system.task(name)
        if task is not None and task.storage:
            used.setdefault(task.storage, []).append(name)
    for storage in sorted(used):
        storage_id = _node_id("storage", storage)
        graph.node(storage_id, label=graphviz.escape(storage), **st["storage"])
        for name in used[storage]:
            task = system.task(name)
            extra = {"label": "read-only"} if task and task.storage_readonly else {}
            graph.edge(ids[name], storage_id, **{**st["store_edge"], **extra})


# --- whole system -------------------------------------------------------------------------


def plot_system(system: SystemSpec, *, flows: Sequence[str] | None = None, fmt: str = "svg",
                output_dir: str = ".",
                style: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Write ``<output_dir>/<flow>.<fmt>`` for each flow (all by default); return the paths, sorted."""
    if fmt not in FORMATS:
        raise PlotError(f"unknown format {fmt!r}{_did_you_mean(fmt, FORMATS)}; "
                        f"choose one of {', '.join(FORMATS)}")
    known = [f.name for f in system.flows]
    names = list(known if flows is None else ([flows] if isinstance(flows, str) else flows))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlotError("; ".join(f"unknown flow {n!r}{_did_you_mean(n, known)}" for n in unknown))
    if fmt != "dot" and shutil.which("dot") is None:
        raise PlotError(f"rendering {fmt} needs the Graphviz 'dot' program, which is not on PATH: "
                        "install Graphviz (e.g. 'apt-get install graphviz') "
                        "or use '--format dot' to write the dot source only")
    st = merge_style(style)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for name in dict.fromkeys(names):
        graph = flow_graph(system, name, st)
        path = os.path.join(output_dir, f"{name}.{fmt}")
        if fmt == "dot":
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(graph.source)
        else:
            try:
                data = graph.pipe(format=fmt)
            except graphviz.ExecutableNotFound as exc:  # removed between the check and here
                raise PlotError(f"Graphviz 'dot' not found: {exc}; install Graphviz "
                                "('apt-get install graphviz') or use '--format dot'") from exc
            except subprocess.CalledProcessError as exc:
                raise PlotError(f"Graphviz failed to draw flow {name!r}: {exc.stderr!r}") from exc
            with open(path, "wb") as handle:
                handle.write(data)
        written.append(path)
    return sorted(written)
