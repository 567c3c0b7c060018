"""Validation of condition trees and the predicates they call.

Leaves are looked up in the custom predicate modules of ``global.predicates_module`` first, then
in selflow's built-ins, so a custom module *adds* predicates (and may override one by name).
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any, Callable

from selflow.codegen.issues import Issues, join_path, suggestion, type_name
from selflow.codegen.model import AllOf, AnyOf, Condition, GlobalSpec, ImportRef, Negation, PredicateLeaf
from selflow.codegen.validate_nodes import _plain, describe_import_error, import_user_module
from selflow.codegen.yamlsource import Mark, YList, YMap
from selflow.predicates import BUILTIN_PREDICATES, SELINON_ALIASES, predicate_parameters

BUILTIN_MODULE = "selflow.predicates"
LEAF_KEYS = ("name", "node", "args")
COMBINATORS = ("and", "or", "not")


class PredicateCatalog:
    """Every predicate a condition may name: custom modules first, then the built-ins."""

    def __init__(self, issues: Issues, global_spec: GlobalSpec, global_data: YMap | None):
        self.custom: list[tuple[str, ModuleType]] = []
        for module_name in global_spec.predicates_modules:
            if module_name == BUILTIN_MODULE:
                continue
            try:
                self.custom.append((module_name, import_user_module(module_name)))
            except Exception as exc:  # noqa: BLE001 - a broken user module is a config issue
                mark = global_data.mark_of("predicates_module") if global_data is not None else Mark.unknown()
                issues.error(mark, "global.predicates_module",
                             f"cannot import predicates module '{module_name}': {describe_import_error(exc)}")

    def lookup(self, name: str) -> tuple[ImportRef, Callable[..., Any]] | None:
        for module_name, module in self.custom:
            if name in _predicates_of(module):
                return ImportRef(module_name, name), getattr(module, name)
        canonical = SELINON_ALIASES.get(name, name)
        if canonical in BUILTIN_PREDICATES:
            return ImportRef(BUILTIN_MODULE, canonical), BUILTIN_PREDICATES[canonical]
        return None

    def names(self) -> set[str]:
        names = set(BUILTIN_PREDICATES) | set(SELINON_ALIASES)
        for _, module in self.custom:
            names.update(_predicates_of(module))
        return names


def _predicates_of(module: ModuleType) -> set[str]:
    """The predicates a custom module offers: its ``__all__``, else the functions it defines itself."""
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return {name for name in exported if callable(getattr(module, name, None))}
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == module.__name__}


class ConditionReader:
    """Reads one condition tree in the context of its edge (or failure entry)."""

    def __init__(self, issues: Issues, catalog: PredicateCatalog, *, sources: tuple[str, ...],
                 flows: set[str], allow_results: bool):
        self.issues = issues
        self.catalog = catalog
        self.sources = sources
        self.flows = flows
        self.allow_results = allow_results

    def read(self, value: Any, mark: Mark, path: str) -> Condition | None:
        issues = self.issues
        node = issues.mapping(value, mark, path, "a condition")
        if node is None:
            return None
        forms = [key for key in ("name",) + COMBINATORS if key in node]
        if len(forms) != 1:
            issues.error(node.mark, path, "a condition needs exactly one of 'name' (a predicate), "
                                          "'and', 'or' or 'not'" + (f"; found {', '.join(forms)}" if forms else
                                                                    suggestion(next(iter(node), ""),
                                                                               ("name",) + COMBINATORS)))
            return None
        form = forms[0]
        if form == "name":
            return self._leaf(node, path)
        issues.keys(node, path, (form,), what="key beside '" + form + "'")
        sub_path = join_path(path, form)
        if form == "not":
            if isinstance(node["not"], YList):
                issues.error(node.mark_of("not"), sub_path, "'not' takes one condition, not a list")
                return None
            item = self.read(node["not"], node.mark_of("not"), sub_path)
            return Negation(item) if item is not None else None
        items = node[form]
        if not isinstance(items, YList) or not items:
            issues.error(node.mark_of(form), sub_path, f"'{form}' takes a non-empty list of conditions, "
                                                       f"not {type_name(items)}")
            return None
        read = [self.read(item, items.mark_of(i), f"{sub_path}[{i}]") for i, item in enumerate(items)]
        if any(item is None for item in read):
            return None
        return AllOf(tuple(read)) if form == "and" else AnyOf(tuple(read))  # type: ignore[arg-type]

    def _leaf(self, leaf: YMap, path: str) -> PredicateLeaf | None:
        issues = self.issues
        issues.keys(leaf, path, LEAF_KEYS, what="predicate key")
        name = issues.string(leaf, "name", path, required=True)
        if name is None:
            return None
        found = self.catalog.lookup(name)
        if found is None:
            issues.error(leaf.mark_of("name"), join_path(path, "name"),
                         f"unknown predicate '{name}'{suggestion(name, self.catalog.names())}")
            return None
        ref, func = found
        try:
            signature = predicate_parameters(func)
        except TypeError as exc:  # a custom predicate that cannot be called by keyword
            issues.error(leaf.mark_of("name"), join_path(path, "name"), str(exc))
            return None
        args: dict[str, Any] = {}
        if leaf.get("args") is not None:
            given = issues.mapping(leaf["args"], leaf.mark_of("args"), join_path(path, "args"), "predicate args")
            args = _plain(given) if given is not None else {}
            for arg in args:
                if arg not in signature.required and arg not in signature.optional \
                        and not signature.accepts_any_args:
                    issues.error(given.key_mark(arg), join_path(path, f"args.{arg}"),
                                 f"predicate '{name}' takes no argument '{arg}'"
                                 f"{suggestion(arg, signature.required | signature.optional)}")
        missing = sorted(signature.required - set(args))
        if missing:
            issues.error(leaf.mark_of("args") if "args" in leaf else leaf.mark, join_path(path, "args"),
                         f"predicate '{name}' needs argument(s) {', '.join(missing)}")
        bound = self._bound_node(leaf, path)
        if signature.uses_message and not self._check_message(leaf, path, name, bound):
            return None
        return PredicateLeaf(ref=ref, node=bound if signature.uses_message else None,
                             args=tuple(sorted(args.items())), uses_message=signature.uses_message,
                             uses_node_args=signature.uses_node_args)

    def _bound_node(self, leaf: YMap, path: str) -> str | None:
        node = self.issues.string(leaf, "node", path)
        if node is None:
            return self.sources[0] if len(self.sources) == 1 else None
        if node not in self.sources:
            where = f"its sources are {', '.join(self.sources)}" if self.sources else "it is a starting edge"
            self.issues.error(leaf.mark_of("node"), join_path(path, "node"),
                              f"'{node}' is not a source of this edge ({where}){suggestion(node, self.sources)}")
            return None
        return node

    def _check_message(self, leaf: YMap, path: str, name: str, bound: str | None) -> bool:
        """A predicate that reads a result needs exactly one task parent to read it from."""
        if not self.allow_results:
            self.issues.error(leaf.mark_of("name"), join_path(path, "name"),
                              f"predicate '{name}' reads a result, but fallback conditions see no results; "
                              "use an args_* or env_* predicate")
            return False
        if bound is None:
            if leaf.get("node") is not None:
                return False  # already reported by _bound_node
            reason = ("a starting edge has no parent result to test; use an args_* predicate"
                      if not self.sources else
                      f"this edge has several sources ({', '.join(self.sources)}); say which with 'node'")
            self.issues.error(leaf.mark_of("name"), join_path(path, "name"), f"predicate '{name}' reads a result: "
                                                                             + reason)
            return False
        if bound in self.flows:
            key = "node" if leaf.get("node") is not None else "name"
            self.issues.error(leaf.mark_of(key), join_path(path, key),
                              f"'{bound}' is a sub-flow; conditions can only test the results of tasks")
            return False
        return True
