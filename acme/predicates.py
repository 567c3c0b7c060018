"""acme's own condition predicates, used beside selflow's built-in ones.

``global.predicates_module: acme.predicates`` in ``config/nodes.yml`` makes the names below
available in conditions; selflow keeps its built-ins (``field_equal``, ``args_field_exist``, ...)
available as well, so this module only holds what acme adds.

A predicate is a plain function returning a bool. The parameter ``message`` receives the stored
result of the node the condition is bound to, ``node_args`` receives the flow arguments, and every
other parameter is given under ``args`` in the YAML. Like the built-ins, a predicate answers False
instead of raising when the data is not shaped as expected.
"""

from __future__ import annotations

from typing import Any, Iterable


def _lookup(message: Any, key: str | list[str]) -> Any:
    """``message[key]``, or a walk through nested mappings when ``key`` is a list of keys."""
    keys = [key] if isinstance(key, str) else list(key)
    value = message
    for part in keys:
        value = value[part]
    return value


def mentions_any(message: Any, key: str | list[str], words: Iterable[str]) -> bool:
    """True when the text at ``key`` contains any of ``words`` as a whole word (case-insensitive).

    Example, on the result of a text-extraction task::

        condition:
          name: mentions_any
          args: {key: text, words: [widget, gadget]}
    """
    try:
        text = _lookup(message, key)
        if not isinstance(text, str):
            return False
        present = {token.strip(".,:;!?()[]\"'").lower() for token in text.split()}
        return any(str(word).lower() in present for word in words)
    except (KeyError, IndexError, TypeError):
        return False
