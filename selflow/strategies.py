"""Sampling strategies: how long a flow's dispatcher sleeps before its next safety tick.

In Selinon the strategy sets the polling interval, so it decides how quickly a flow notices that
a node has finished. In selflow a finished node wakes its flow's dispatcher at once. The strategy
here only times a slow *safety tick* that covers lost wake-up messages, so its value affects how
fast a flow recovers from a lost message, not how fast a healthy flow runs.

A strategy is ``f(status, **args) -> seconds | None``. ``status`` is a mapping with the keys
``previous_retry`` (the last value returned, ``None`` on the first call), ``active_nodes``,
``failed_nodes``, ``new_started_nodes``, ``new_fallback_nodes`` and ``finished_nodes``. ``None``
means "no node is active, do not schedule another tick". Every argument has a default, so a YAML
``sampling`` entry without ``args`` works (Selinon raised a KeyError there).

The docstrings below say what the code does. Selinon's docstrings for the ``*_increase``
strategies described the opposite trend; the behaviour is Selinon's.
"""

from __future__ import annotations

import random as _random
from types import MappingProxyType
from typing import Any, Callable, Mapping

Strategy = Callable[..., "float | None"]

#: Shortest tick in seconds for the growing strategies (Selinon's default).
DEFAULT_START_RETRY_S = 2
#: Longest tick in seconds for the growing strategies (Selinon's default).
DEFAULT_MAX_RETRY_S = 120
#: Seconds added or removed per call by the linear strategies.
DEFAULT_STEP_S = 2


def _idle(status: Mapping[str, Any]) -> bool:
    return not status.get("active_nodes")


def _first_call(status: Mapping[str, Any]) -> bool:
    return status.get("previous_retry") is None


def _something_started(status: Mapping[str, Any]) -> bool:
    return bool(status.get("new_started_nodes") or status.get("new_fallback_nodes"))


def constant(status: Mapping[str, Any], retry: float = DEFAULT_START_RETRY_S) -> float | None:
    """Always ``retry`` seconds while a node is active."""
    return None if _idle(status) else retry


def random(
    status: Mapping[str, Any], start_retry: int = DEFAULT_START_RETRY_S, max_retry: int = DEFAULT_MAX_RETRY_S
) -> float | None:
    """A random whole number of seconds in ``[start_retry, max_retry]``, to spread ticks out."""
    return None if _idle(status) else _random.randint(int(start_retry), int(max_retry))


def biexponential_increase(
    status: Mapping[str, Any], start_retry: float = DEFAULT_START_RETRY_S, max_retry: float = DEFAULT_MAX_RETRY_S
) -> float | None:
    """The default. ``start_retry`` on the first call. Afterwards, if nodes (or fallbacks) were
    just started, double the previous value, capped at ``max_retry``; if none were, go back to
    ``start_retry``.
    """
    if _idle(status):
        return None
    if _first_call(status) or not _something_started(status):
        return start_retry
    return min(status["previous_retry"] * 2, max_retry)


def linear_increase(
    status: Mapping[str, Any],
    start_retry: float = DEFAULT_START_RETRY_S,
    max_retry: float = DEFAULT_MAX_RETRY_S,
    step: float = DEFAULT_STEP_S,
) -> float | None:
    """Like ``biexponential_increase``, but add ``step`` instead of doubling."""
    if _idle(status):
        return None
    if _first_call(status) or not _something_started(status):
        return start_retry
    return min(status["previous_retry"] + step, max_retry)


def linear_adapt(
    status: Mapping[str, Any],
    start_retry: float = DEFAULT_START_RETRY_S,
    max_retry: float = DEFAULT_MAX_RETRY_S,
    step: float = DEFAULT_STEP_S,
) -> float | None:
    """``start_retry`` on the first call; then add ``step`` when nodes were just started and
    subtract it otherwise, staying within ``[start_retry, max_retry]``.
    """
    if _idle(status):
        return None
    if _first_call(status):
        return start_retry
    change = step if _something_started(status) else -step
    return max(start_retry, min(status["previous_retry"] + change, max_retry))


def biexponential_decrease(
    status: Mapping[str, Any], start_retry: float = DEFAULT_MAX_RETRY_S, stop_retry: float = DEFAULT_START_RETRY_S
) -> float | None:
    """``start_retry`` on the first call, then half the previous value on every call, never
    below ``stop_retry``. Whether nodes started does not matter.
    """
    if _idle(status):
        return None
    if _first_call(status):
        return start_retry
    return max(status["previous_retry"] / 2, stop_retry)


def biexponential_adapt(
    status: Mapping[str, Any], start_retry: float = DEFAULT_START_RETRY_S, max_retry: float = DEFAULT_MAX_RETRY_S
) -> float | None:
    """``start_retry`` on the first call; then double the previous value when nodes were just
    started and halve it otherwise, staying within ``[start_retry, max_retry]``.

    Unlike Selinon, an idle flow gets ``None`` on the first call too.
    """
    if _idle(status):
        return None
    if _first_call(status):
        return start_retry
    previous = status["previous_retry"]
    value = previous * 2 if _something_started(status) else previous / 2
    return max(start_retry, min(value, max_retry))


#: Name -> strategy, for the validator's name check and "did you mean" hints.
BUILTIN_STRATEGIES: Mapping[str, Strategy] = MappingProxyType(
    {
        strategy.__name__: strategy
        for strategy in (
            constant,
            random,
            biexponential_increase,
            linear_increase,
            linear_adapt,
            biexponential_decrease,
            biexponential_adapt,
        )
    }
)

__all__ = [
    "BUILTIN_STRATEGIES", "DEFAULT_MAX_RETRY_S", "DEFAULT_START_RETRY_S", "DEFAULT_STEP_S",
    "biexponential_adapt", "biexponential_decrease", "biexponential_increase", "constant",
    "linear_adapt", "linear_increase", "random",
]
