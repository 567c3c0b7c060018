"""Per-task Celery controls and cluster-wide limits in the YAML (selflow's additions to Selinon's format)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from selflow.codegen import load_system
from selflow.codegen.compiled import compile_tables
from selflow.codegen.model import KeyedRateLimit
from selflow.errors import ConfigError

TEMPLATE = """\
tasks:
  - name: Charge
    import: shop.tasks
{options}
flows: [pay]
flow-definitions:
  - name: pay
{flow_options}
    edges:
      - from:
        to: Charge
"""


def load(tmp_path: Path, options: str, flow_options: str = ""):
    path = tmp_path / "limits.yml"
    path.write_text(TEMPLATE.format(options=textwrap.indent(textwrap.dedent(options), "    "),
                                    flow_options=textwrap.indent(textwrap.dedent(flow_options), "    ")))
    return load_system([str(path)])


def test_every_control_and_limit_is_read_and_compiled(tmp_path: Path) -> None:
    # Given a task with every Celery control and limit, and a flow with a concurrency limit
    system = load(tmp_path, """\
        priority: 7
        soft_time_limit: 20
        time_limit: 30
        acks_late: false
        rate_limit: 100/m
        concurrency: 3
        keyed_rate_limit: {key: [customer, id], rate: 2/s}
        """, "concurrency: 5")
    # Then the model carries them, with the keyed rate as seconds between starts per key
    task = system.task("Charge")
    assert (task.priority, task.soft_time_limit, task.time_limit, task.acks_late) == (7, 20.0, 30.0, False)
    assert (task.rate_limit, task.concurrency) == ("100/m", 3)
    assert task.keyed_rate_limit == KeyedRateLimit(("customer", "id"), 0.5)
    assert system.flow("pay").concurrency == 5
    # And the compiled tables keep them
    tables = compile_tables(system)
    assert tables.tasks["Charge"] == task
    assert tables.flows["pay"].concurrency == 5


def test_defaults_leave_everything_to_celery(tmp_path: Path) -> None:
    task = load(tmp_path, "max_retry: 1").task("Charge")
    assert (task.priority, task.soft_time_limit, task.time_limit, task.acks_late, task.rate_limit,
            task.concurrency, task.keyed_rate_limit) == (None, None, None, True, None, None, None)


@pytest.mark.parametrize(("options", "expected"), [
    ("priority: 300", "tasks.Charge.priority: must be a whole number between 0 and 255, not 300"),
    ("soft_time_limit: 0", "tasks.Charge.soft_time_limit: must be a number of seconds > 0, not 0"),
    ("soft_time_limit: 30\ntime_limit: 30",
     "tasks.Charge.soft_time_limit: must be below time_limit (30 s): the soft limit warns the task before the "
     "hard one kills it"),
    ("rate_limit: fast", "tasks.Charge.rate_limit: must be a rate like '10/s', '100/m' or '1000/h', not 'fast'"),
    ("concurrency: 0", "tasks.Charge.concurrency: must be a whole number >= 1, not 0"),
    ("keyed_rate_limit: {key: customer, rate: 1/d}",
     "tasks.Charge.keyed_rate_limit.rate: must be a rate like '1/s' or '30/m', not '1/d'"),
    ("keyed_rate_limit: {rate: 1/s}", "tasks.Charge.keyed_rate_limit: missing required key 'key'"),
    ("acks_late: sometimes", "tasks.Charge.acks_late: must be true or false, not a string"),
    ("time_limt: 3", "tasks.Charge.time_limt: unknown option 'time_limt' (did you mean 'time_limit'?)"),
])
def test_bad_limits_are_reported_with_their_key(tmp_path: Path, options: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, options)
    assert [str(issue).split(": ", 1)[1] for issue in caught.value.issues] == [expected]


def test_flow_concurrency_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"flows\.pay\.concurrency: must be a whole number >= 1, not -1"):
        load(tmp_path, "max_retry: 0", "concurrency: -1")
