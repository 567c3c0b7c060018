"""Admission decisions: which limits hold a task or flow back, and by how much."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.runtime.admission import Admission, keyed_value
from selflow.runtime.limits import MemoryLimiter

CONFIG = """\
tasks:
  - name: Charge
    import: shop.tasks
    throttling: {seconds: 1}
    keyed_rate_limit: {key: [customer, id], rate: 1/s}
    concurrency: 1
    time_limit: 5
  - name: Free
    import: shop.tasks
flows: [pay, sub]
flow-definitions:
  - name: pay
    edges:
      - {from: , to: [Charge, Free, sub]}
  - name: sub
    throttling: {seconds: 2}
    concurrency: 1
    edges:
      - {from: , to: Free}
"""


@pytest.fixture
def admission(tmp_path: Path) -> Admission:
    path = tmp_path / "c.yml"
    path.write_text(textwrap.dedent(CONFIG))
    return Admission(compile_tables(load_system([str(path)])), MemoryLimiter())


def test_unlimited_tasks_are_never_held(admission: Admission) -> None:
    free = admission.tables.tasks["Free"]
    assert admission.task_countdown(free, {}) == (0.0, {})
    assert all(admission.enter_task(free, f"n{i}") for i in range(10))


def test_throttling_and_keyed_rate_take_the_longer_wait(admission: Admission) -> None:
    charge = admission.tables.tasks["Charge"]
    # Given a first charge for customer 1
    first, _ = admission.task_countdown(charge, {"customer": {"id": 1}})
    # When a second charge for customer 1 and a third for customer 2 are scheduled
    second, held = admission.task_countdown(charge, {"customer": {"id": 1}})
    third, _ = admission.task_countdown(charge, {"customer": {"id": 2}})
    # Then the task-wide throttle spaces all starts, and the key spaces customer 1's
    assert first == pytest.approx(0, abs=0.05)
    assert second == pytest.approx(1, abs=0.05) and held["key"] == "1"
    assert third == pytest.approx(2, abs=0.05)


def test_concurrency_slot_is_taken_and_given_back(admission: Admission) -> None:
    charge = admission.tables.tasks["Charge"]
    assert admission.enter_task(charge, "n1")
    assert not admission.enter_task(charge, "n2")
    admission.leave_task(charge, "n1")
    assert admission.enter_task(charge, "n2")


def test_flow_throttling_and_concurrency(admission: Admission) -> None:
    sub = admission.tables.flows["sub"]
    assert admission.flow_countdown(sub) == pytest.approx(0, abs=0.05)
    assert admission.flow_countdown(sub) == pytest.approx(2, abs=0.05)
    assert admission.enter_flow(sub, "f1") and not admission.enter_flow(sub, "f2")
    admission.leave_flow(sub, "f1")
    assert admission.enter_flow(sub, "f2")


def test_the_key_is_the_value_at_the_path(admission: Admission) -> None:
    limit = admission.tables.tasks["Charge"].keyed_rate_limit
    assert keyed_value(limit, {"customer": {"id": "c-7"}}) == '"c-7"'
    assert keyed_value(limit, {"customer": {}}) is None
    assert keyed_value(limit, None) is None
