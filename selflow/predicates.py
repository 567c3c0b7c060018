"""Built-in predicates for edge conditions, kept in one table.

Selinon ships about seventy one-function files. Two of them shadowed each other unnoticed
(``fieldLenLessEqual`` was missing and ``fieldLenGreaterEqual`` tested ``<=``). Here every
predicate is built from a short row in a table, so a typo shows up next to its neighbours, and
one parametrised test covers every name.

Conventions that the validator and the generated conditions rely on:

* A parameter named ``message`` receives the stored result of the parent node.
* A parameter named ``node_args`` receives the flow's arguments.
* Every other parameter comes from the YAML ``args`` of the condition leaf.
* ``key`` is one key, or a list of keys that walks into nested dicts and lists.
  ``['a', 0]`` means ``message['a'][0]``.
* A predicate always returns a ``bool``. An exception raised while it is evaluated (a missing
  key, a comparison between unrelated types, a network error) becomes ``False``, because a
  condition that cannot be decided must not fire an edge. A call with wrong arguments still
  raises ``TypeError``: that is a bug in the caller, not an answer.

Names are snake_case (``field_equal``). Selinon's camelCase names (``fieldEqual``) are aliases of
the same functions. Both kinds are module attributes, so a Selinon configuration that names
``fieldEqual`` keeps working.

Two of Selinon's defects are fixed on purpose. ``empty``/``args_empty`` are True when the value
*is* empty. ``*_len_less_equal`` and ``*_len_greater_equal`` both exist and test what their
names say. Also, unlike Selinon, ``field_int``/``is_int`` do not count ``True``/``False`` as
integers.
"""

from __future__ import annotations

import functools
import inspect
import operator
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

Predicate = Callable[..., bool]

#: Default limit in seconds for ``http_status``. The request runs inside the dispatcher, so a
#: slow server must not stall the flow for long.
DEFAULT_HTTP_TIMEOUT_S = 5.0


# --- helpers --------------------------------------------------------------------------------


def _lookup(value: Any, key: Any) -> Any:
    """Walk ``key`` (one key or a list of keys) into nested dicts and lists.

    A missing key raises, and the predicate wrapper turns that into False. Strings are treated
    as leaves, so ``'abc'[0]`` is never a match.
    """
    for part in key if isinstance(key, (list, tuple)) else (key,):
        if isinstance(value, (str, bytes)):
            raise KeyError(part)
        value = value[part]
    return value


def _guard(func: Callable[..., Any], signature: inspect.Signature, name: str, doc: str) -> Predicate:
    """Wrap ``func`` so that it answers a bool and turns a failed evaluation into False."""

    @functools.wraps(func)
    def predicate(*args: Any, **kwargs: Any) -> bool:
        bound = signature.bind(*args, **kwargs)  # outside the try: a wrong call must raise
        bound.apply_defaults()
        try:
            return bool(func(*bound.args, **bound.kwargs))
        except Exception:
            return False

    predicate.__signature__ = signature  # type: ignore[attr-defined]
    predicate.__name__ = predicate.__qualname__ = name
    predicate.__doc__ = doc
    predicate.__module__ = __name__
    return predicate


def _builtin(func: Callable[..., Any]) -> Predicate:
    """Decorator for the predicates written out by hand; they get the same guard."""
    return _guard(func, inspect.signature(func), func.__name__, func.__doc__ or "")


def _signature(params: Sequence[str]) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(p, kind) for p in params], return_annotation=bool)


def _on_len(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda value, length: compare(len(value), length)


def _instance_of(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_empty(value: Any) -> bool:
    # None and zero-length values are empty; 0 and False are values, and len() on them raises.
    return value is None or len(value) == 0


def _url_part(part: str) -> Callable[[Any, Any], bool]:
    return lambda value, expected: getattr(urllib.parse.urlparse(value), part) == expected


# --- the tables -----------------------------------------------------------------------------

#: Tests on one field, found by ``key``: (name suffix, extra parameters, test, what it checks).
#: Each row gives ``field_<suffix>`` (on ``message``) and ``args_field_<suffix>`` (on ``node_args``).
_FIELD_TESTS: tuple[tuple[str, tuple[str, ...], Callable[..., Any], str], ...] = (
    ("exist", (), lambda value: True, "exists"),
    ("equal", ("value",), operator.eq, "== value"),
    ("not_equal", ("value",), operator.ne, "exists and != value"),
    ("greater", ("value",), operator.gt, "> value"),
    ("greater_equal", ("value",), operator.ge, ">= value"),
    ("less", ("value",), operator.lt, "< value"),
    ("less_equal", ("value",), operator.le, "<= value"),
    ("contain", ("value",), lambda value, item: item in value, "contains value (``value in field``)"),
    ("len_equal", ("length",), _on_len(operator.eq), "has len() == length"),
    ("len_not_equal", ("length",), _on_len(operator.ne), "has len() != length"),
    ("len_greater", ("length",), _on_len(operator.gt), "has len() > length"),
    ("len_greater_equal", ("length",), _on_len(operator.ge), "has len() >= length"),
    ("len_less", ("length",), _on_len(operator.lt), "has len() < length"),
    ("len_less_equal", ("length",), _on_len(operator.le), "has len() <= length"),
    ("bool", (), _instance_of(bool), "is a bool"),
    ("dict", (), _instance_of(dict), "is a dict"),
    ("float", (), _instance_of(float), "is a float"),
    ("int", (), _is_int, "is an int (not a bool)"),
    ("list", (), _instance_of(list), "is a list"),
    ("str", (), _instance_of(str), "is a str"),
    ("none", (), lambda value: value is None, "exists and is None"),
    ("url_scheme", ("scheme",), _url_part("scheme"), "is a URL whose scheme == scheme"),
    ("url_netloc", ("netloc",), _url_part("netloc"), "is a URL whose netloc == netloc"),
    ("url_path", ("path",), _url_part("path"), "is a URL whose path == path"),
)

#: Tests on the whole value: (name, test, what it checks). Each row gives ``<name>`` (on
#: ``message``) and ``args_<name>`` (on ``node_args``).
_VALUE_TESTS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("is_bool", _instance_of(bool), "is a bool"),
    ("is_dict", _instance_of(dict), "is a dict"),
    ("is_float", _instance_of(float), "is a float"),
    ("is_int", _is_int, "is an int (not a bool)"),
    ("is_list", _instance_of(list), "is a list"),
    ("is_str", _instance_of(str), "is a str"),
    ("is_none", lambda value: value is None, "is None"),
    ("empty", _is_empty, "is empty: None, or of length 0"),
)

#: Where a family reads its value: (name prefix, parameter, how the docstring names the value).
_SOURCES = (("", "message", "the parent's result"), ("args_", "node_args", "the flow arguments"))


def _on_field(test: Callable[..., Any]) -> Callable[..., Any]:
    return lambda value, key, *expected: test(_lookup(value, key), *expected)


def _families() -> dict[str, Predicate]:
    table: dict[str, Predicate] = {}
    for prefix, source, described in _SOURCES:
        for suffix, params, test, checks in _FIELD_TESTS:
            name = f"{prefix}field_{suffix}"
            doc = f"True when the field at ``key`` of {described} {checks}."
            table[name] = _guard(_on_field(test), _signature((source, "key", *params)), name, doc)
        for base, value_test, checks in _VALUE_TESTS:
            name = f"{prefix}{base}"
            doc = f"True when {described} {checks}."
            table[name] = _guard(value_test, _signature((source,)), name, doc)
    return table


# --- predicates written out -----------------------------------------------------------------


@_builtin
def always_true() -> bool:
    """Always True: an explicit 'fire this edge'."""
    return True


@_builtin
def always_false() -> bool:
    """Always False: switches an edge off without deleting it."""
    return False


@_builtin
def env_exist(env: str) -> bool:
    """True when the environment variable ``env`` is set (read when the condition runs)."""
    return env in os.environ


@_builtin
def env_equal(env: str, value: str) -> bool:
    """True when the environment variable ``env`` equals the string ``value`` exactly."""
    return os.environ.get(env) == value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a 3xx as it is, so that a condition can test for a redirect."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@_builtin
def http_status(host: str, path: str, status: int, timeout: float = DEFAULT_HTTP_TIMEOUT_S) -> bool:
    """True when a HEAD request to ``host`` + ``path`` answers ``status``.

    ``host`` may carry a scheme and port (``https://example.org:8443``); plain ``http`` is
    assumed without one. Redirects are not followed. The request runs inside the dispatcher, so
    it is bounded by ``timeout`` seconds; a timeout or refused connection gives False.
    """
    base = host if "://" in host else f"http://{host}"
    url = base.rstrip("/") + "/" + path.lstrip("/")
    # The opener is built per call so that proxy settings in the environment are read now.
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            answered = response.status
    except urllib.error.HTTPError as error:
        answered = error.code
        error.close()
    return answered == status


# --- registry -------------------------------------------------------------------------------


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


#: Canonical name -> predicate, for every built-in predicate.
BUILTIN_PREDICATES: Mapping[str, Predicate] = MappingProxyType(
    {
        "always_true": always_true,
        "always_false": always_false,
        **_families(),
        "env_exist": env_exist,
        "env_equal": env_equal,
        "http_status": http_status,
    }
)

#: Selinon's camelCase name -> canonical name. Selinon's names are exactly the camelCase
#: spellings of ours (``args_field_len_less_equal`` -> ``argsFieldLenLessEqual``).
SELINON_ALIASES: Mapping[str, str] = MappingProxyType(
    {_camel_case(name): name for name in BUILTIN_PREDICATES if _camel_case(name) != name}
)

globals().update(BUILTIN_PREDICATES)
globals().update({alias: BUILTIN_PREDICATES[name] for alias, name in SELINON_ALIASES.items()})


# --- introspection for the validator --------------------------------------------------------


@dataclass(frozen=True)
class PredicateSignature:
    """What a predicate needs, so the validator can check a condition leaf's YAML ``args``.

    ``required`` and ``optional`` hold only the parameters that come from YAML ``args``;
    ``message`` and ``node_args`` are reported by the two flags. ``accepts_any_args`` is True
    when the function takes ``**kwargs``, so unknown YAML args cannot be rejected.
    """

    uses_message: bool
    uses_node_args: bool
    required: frozenset[str]
    optional: frozenset[str]
    accepts_any_args: bool = False


_SPECIAL = frozenset({"message", "node_args"})


def predicate_parameters(func: Callable[..., Any]) -> PredicateSignature:
    """Describe the parameters of a built-in or custom predicate.

    Raises:
        TypeError: ``func`` has no readable signature, or has a positional-only parameter
            without a default (conditions pass every argument by name).
    """
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError) as error:
        raise TypeError(f"cannot read the parameters of predicate {func!r}: {error}") from None
    required: set[str] = set()
    optional: set[str] = set()
    accepts_any_args = False
    for parameter in parameters:
        if parameter.kind is parameter.VAR_KEYWORD:
            accepts_any_args = True
        elif parameter.kind is parameter.VAR_POSITIONAL:
            continue
        elif parameter.name in _SPECIAL:
            continue
        elif parameter.default is not parameter.empty:
            optional.add(parameter.name)
        elif parameter.kind is parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"predicate {getattr(func, '__name__', func)!r} has the positional-only parameter "
                f"{parameter.name!r}; conditions pass arguments by name"
            )
        else:
            required.add(parameter.name)
    names = {parameter.name for parameter in parameters}
    return PredicateSignature(
        uses_message="message" in names,
        uses_node_args="node_args" in names,
        required=frozenset(required),
        optional=frozenset(optional),
        accepts_any_args=accepts_any_args,
    )


__all__ = sorted(
    [
        "BUILTIN_PREDICATES", "DEFAULT_HTTP_TIMEOUT_S", "PredicateSignature", "SELINON_ALIASES",
        "predicate_parameters", *BUILTIN_PREDICATES, *SELINON_ALIASES,
    ]
)
