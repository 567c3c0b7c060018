"""Turning a storage's YAML ``configuration`` into constructor arguments, with typed ``{VAR}`` expansion.

The pool does this once per storage, when it builds the adapter, so adapters receive plain
values and never read the environment themselves.

* Every string is expanded with Selinon's syntax: ``{VAR}`` becomes the value of the
  environment variable ``VAR`` (``str.format`` rules, so ``{{`` and ``}}`` stand for single
  braces). A variable that is not set is an error naming it.
* A string that is *exactly* one placeholder (``"{REDIS_PORT}"``) is then converted to the type
  the adapter's parameter is annotated with: ``bool`` accepts true/false, yes/no, on/off, 1/0
  (any case), ``int`` and ``float`` their literals, and an optional (``X | None``) parameter
  takes an empty value as None. A parameter that also accepts ``str`` keeps any other text; one
  that does not is an error. So ``use_ssl: "{S3_USE_SSL}"`` with ``S3_USE_SSL=False`` gives
  ``False``, not the truthy string ``"False"``.
* Strings mixed with other text, strings inside nested lists and mappings, and values of
  parameters without an annotation stay strings.
"""

from __future__ import annotations

import inspect
import os
import re
import string
import types
import typing
from typing import Any, Callable, Mapping

from selflow.errors import StorageError

__all__ = ["StorageConfigError", "constructor_arguments", "expand"]

_WHOLE_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE_TEXT = frozenset({"", "none", "null"})
_ATOMS: Mapping[str, type] = {"bool": bool, "int": int, "float": float, "str": str,
                               "None": type(None), "NoneType": type(None)}


class StorageConfigError(StorageError):
    """A storage's ``configuration`` cannot be turned into constructor arguments."""

    def __init__(self, storage_name: str, key: str, message: str):
        self.storage_name = storage_name
        self.key = key
        super().__init__(f"storage '{storage_name}': configuration{'.' + key if key else ''}: {message}")


def constructor_arguments(configuration: Any, target: Callable[..., Any], *, storage_name: str,
                          environ: Mapping[str, str] | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return ``(args, kwargs)`` for ``target`` built from ``configuration``.

    A mapping becomes keyword arguments, None no argument at all, and any other value one
    positional argument (Selinon's rules, except that Selinon rejected a missing configuration).
    """
    env = os.environ if environ is None else environ
    types_by_name = _parameter_types(target)
    if configuration is None:
        return (), {}
    if isinstance(configuration, Mapping):
        kwargs = {}
        for key, value in configuration.items():
            kwargs[str(key)] = _expand_typed(value, types_by_name.get(str(key)), env, storage_name, str(key))
        return (), kwargs
    positional = _positional_names(target)
    annotation = types_by_name.get(positional[0]) if positional else None
    return (_expand_typed(configuration, annotation, env, storage_name, ""),), {}


def expand(value: Any, environ: Mapping[str, str] | None = None, *, storage_name: str = "?", key: str = "") -> Any:
    """Expand ``{VAR}`` in every string of ``value`` (recursively), with no type conversion."""
    return _expand(value, os.environ if environ is None else environ, storage_name, key)


def _expand_typed(value: Any, annotation: Any, env: Mapping[str, str], storage_name: str, key: str) -> Any:
    expanded = _expand(value, env, storage_name, key)
    if isinstance(value, str) and _WHOLE_PLACEHOLDER.match(value) and annotation is not None:
        return _convert(expanded, _atoms(annotation), storage_name, key, value)
    return expanded


def _expand(value: Any, env: Mapping[str, str], storage_name: str, key: str) -> Any:
    if isinstance(value, str):
        return _expand_string(value, env, storage_name, key)
    if isinstance(value, Mapping):
        return {k: _expand(v, env, storage_name, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_expand(v, env, storage_name, f"{key}[{i}]") for i, v in enumerate(value))
    return value


def _expand_string(text: str, env: Mapping[str, str], storage_name: str, key: str) -> str:
    if "{" not in text and "}" not in text:
        return text
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise StorageConfigError(storage_name, key, f"bad '{{...}}' placeholder in {text!r}: {exc}") from None
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            raise StorageConfigError(storage_name, key, f"'{{{field}}}' in {text!r} does not name an environment "
                                                        f"variable (write '{{{{' for a literal brace)")
        if name not in env:
            raise StorageConfigError(storage_name, key, f"environment variable {name} is not set "
                                                        f"(used as '{{{field}}}')")
    try:
        return text.format_map(env)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise StorageConfigError(storage_name, key, f"cannot expand {text!r}: {exc}") from None


def _convert(text: str, atoms: set[Any], storage_name: str, key: str, placeholder: str) -> Any:
    if not atoms or Any in atoms or object in atoms:
        return text
    lowered = text.strip().lower()
    if bool in atoms and lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    if int in atoms:
        try:
            return int(text.strip())
        except ValueError:
            pass
    if float in atoms:
        try:
            return float(text.strip())
        except ValueError:
            pass
    if str in atoms:
        return text
    if type(None) in atoms and lowered in _NONE_TEXT:
        return None
    wanted = " or ".join(sorted(getattr(atom, "__name__", str(atom)) for atom in atoms))
    raise StorageConfigError(storage_name, key, f"{placeholder} expands to {text!r}, which is not of type {wanted}")


def _atoms(annotation: Any) -> set[Any]:
    """The simple types an annotation allows: ``bool | None`` -> {bool, NoneType}; others are kept as is."""
    if isinstance(annotation, str):  # a hint that could not be resolved: read the names in it
        names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annotation)
        if "Any" in names or "object" in names:
            return {Any}
        known = {_ATOMS[name] for name in names if name in _ATOMS}
        unknown = [name for name in names if name not in _ATOMS and name not in ("Optional", "Union", "typing")]
        return known | ({Any} if unknown else set())
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        result: set[Any] = set()
        for argument in typing.get_args(annotation):
            result |= _atoms(argument)
        return result
    if annotation is None:
        return {type(None)}
    return {annotation}


def _parameter_types(target: Callable[..., Any]) -> dict[str, Any]:
    """Parameter name -> annotation (resolved where possible), for the parameters that have one."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    function = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - user classes may annotate with names we cannot resolve
        hints = {}
    found = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        if annotation is not inspect.Parameter.empty:
            found[name] = annotation
    return found


def _positional_names(target: Callable[..., Any]) -> list[str]:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
