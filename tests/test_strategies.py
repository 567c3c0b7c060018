"""Sampling strategies: the sequence of ticks each one produces, and None for an idle flow."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import pytest

from selflow import strategies
from selflow.strategies import BUILTIN_STRATEGIES


def status(previous: float | None = None, *, started: bool = False, fallback: bool = False,
           active: bool = True) -> dict[str, Any]:
    return {
        "previous_retry": previous,
        "active_nodes": ["Task1"] if active else [],
        "failed_nodes": {},
        "new_started_nodes": ["Task2"] if started else [],
        "new_fallback_nodes": ["Fallback1"] if fallback else [],
        "finished_nodes": {},
    }


def run(strategy: Callable[..., Any], steps: list[bool], **args: Any) -> list[Any]:
    """Feed a strategy its own answers, as the dispatcher does; ``steps`` says if nodes started."""
    previous, seen = None, []
    for started in steps:
        previous = strategy(status(previous, started=started), **args)
        seen.append(previous)
    return seen


def test_the_seven_selinon_strategies_exist() -> None:
    assert set(BUILTIN_STRATEGIES) == {
        "constant", "random", "biexponential_increase", "linear_increase", "linear_adapt",
        "biexponential_decrease", "biexponential_adapt",
    }
    for name, strategy in BUILTIN_STRATEGIES.items():
        assert getattr(strategies, name) is strategy


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
def test_every_argument_has_a_default(name: str) -> None:
    # A YAML `sampling` without `args` must work (Selinon raised KeyError).
    parameters = list(inspect.signature(BUILTIN_STRATEGIES[name]).parameters.values())[1:]
    assert all(p.default is not p.empty for p in parameters)
    assert BUILTIN_STRATEGIES[name](status()) is not None


@pytest.mark.parametrize("name", sorted(BUILTIN_STRATEGIES))
@pytest.mark.parametrize("previous", [None, 8])
def test_idle_flow_gets_none(name: str, previous: float | None) -> None:
    # Including biexponential_adapt on its first call, which Selinon answered with start_retry.
    assert BUILTIN_STRATEGIES[name](status(previous, started=True, active=False)) is None


def test_constant() -> None:
    assert run(strategies.constant, [True, False, True], retry=7) == [7, 7, 7]
    assert strategies.constant(status()) == 2


def test_random_stays_in_range() -> None:
    values = {strategies.random(status(), start_retry=3, max_retry=6) for _ in range(200)}
    assert values <= {3, 4, 5, 6}
    assert len(values) > 1


def test_biexponential_increase_is_the_default_shape() -> None:
    # Starts at 2, doubles while nodes keep starting, capped at 120, back to 2 when none started.
    steps = [True] * 8 + [False, True]
    assert run(strategies.biexponential_increase, steps) == [2, 4, 8, 16, 32, 64, 120, 120, 2, 4]


def test_biexponential_increase_counts_fallbacks_as_started() -> None:
    assert strategies.biexponential_increase(status(10, fallback=True)) == 20


def test_linear_increase() -> None:
    steps = [True, True, True, True, False]
    assert run(strategies.linear_increase, steps, start_retry=1, max_retry=10, step=4) == [1, 5, 9, 10, 1]


def test_linear_adapt() -> None:
    # Up by `step` while nodes start (capped at max_retry), down by `step` otherwise (floored at start_retry).
    steps = [True, True, True, True, False, False, False]
    assert run(strategies.linear_adapt, steps, start_retry=2, max_retry=8, step=3) == [2, 5, 8, 8, 5, 2, 2]


def test_biexponential_decrease_halves_regardless_of_starts() -> None:
    steps = [True, False, True, False, True, False]
    assert run(strategies.biexponential_decrease, steps, start_retry=40, stop_retry=4) == [40, 20, 10, 5, 4, 4]
    assert strategies.biexponential_decrease(status()) == 120


def test_biexponential_adapt() -> None:
    steps = [True, True, True, True, False, False, False]
    assert run(strategies.biexponential_adapt, steps, start_retry=2, max_retry=12) == [2, 4, 8, 12, 6, 3, 2]
