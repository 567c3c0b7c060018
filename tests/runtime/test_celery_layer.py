"""The Celery layer without a broker: the import boundary, the app factory's checks, and
``install`` on an app (Celery's in-memory transport; the real runs are in tests/integration).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("celery")

from celery import Celery  # noqa: E402

from selflow.codegen import load_system  # noqa: E402
from selflow.codegen.compiled import compile_tables  # noqa: E402
from selflow.errors import SelflowError  # noqa: E402
from selflow.runtime.celery_app import DISPATCHER_TASK, NODE_TASK, install, queues_of  # noqa: E402
from selflow.runtime.celery_config import (  # noqa: E402
    TRANSPORT_OPTIONS_ENVVAR,
    BrokerError,
    make_app,
    probe_broker,
    redact,
    state_store_url,
    transport_options_from_env,
)
from selflow.runtime.memory_store import MemoryStore  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_only_the_celery_modules_import_celery() -> None:
    code = textwrap.dedent("""
        import sys
        import selflow, selflow.codegen, selflow.dispatcher.engine, selflow.runtime.runtime
        import selflow.runtime.embedded, selflow.runtime.report, selflow.cli, selflow.cli_runtime, selflow.api
        assert "celery" not in sys.modules, "celery was imported"
        selflow.run_flow  # the lazy re-export resolves without Celery too
        assert "celery" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("broker, backend, expected", [
    ("redis://h:6379/1", None, "redis://h:6379/1"),
    ("redis://h:6379/1", "redis://s:6379/2", "redis://s:6379/2"),
    ("amqp://u:p@h//", "rediss://s:6380/0", "rediss://s:6380/0"),
])
def test_state_store_url(broker: str, backend: str | None, expected: str) -> None:
    assert state_store_url(broker, backend) == expected


def test_state_store_url_refuses_what_cannot_hold_state() -> None:
    with pytest.raises(SelflowError, match=r"amqp://u:\*\*\*@h//.*pass a redis:// --result-backend"):
        state_store_url("amqp://u:secret@h//")
    with pytest.raises(SelflowError, match="not Redis"):
        state_store_url("redis://h/0", "rpc://")


def test_redact_hides_passwords() -> None:
    assert redact("amqp://guest:secret@host:5672//") == "amqp://guest:***@host:5672//"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_probe_of_a_closed_port_names_the_broker_quickly() -> None:
    with pytest.raises(BrokerError, match=r"cannot reach the broker at amqp://guest:\*\*\*@127.0.0.1:1//"):
        probe_broker("amqp://guest:secret@127.0.0.1:1//", timeout=1)


def test_transport_options_from_env() -> None:
    assert transport_options_from_env({}) == {}
    assert transport_options_from_env({TRANSPORT_OPTIONS_ENVVAR: '{"visibility_timeout": 5}'}) == \
        {"visibility_timeout": 5}
    with pytest.raises(SelflowError, match="JSON object"):
        transport_options_from_env({TRANSPORT_OPTIONS_ENVVAR: "[1]"})
    with pytest.raises(SelflowError, match="not JSON"):
        transport_options_from_env({TRANSPORT_OPTIONS_ENVVAR: "{"})


def test_install_registers_both_tasks_and_the_queues() -> None:
    tables = compile_tables(load_system([str(REPO_ROOT / "config")]))
    app = make_app("memory://", store_url="redis://127.0.0.1:6379/0")
    runtime = install(app, tables, MemoryStore())
    for name in (NODE_TASK, DISPATCHER_TASK):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost and task.ignore_result
        assert task.max_retries is None
    assert queues_of(tables) == ("acme_notify", "celery") == runtime.queues
    assert set(app.amqp.queues.consume_from) >= {"acme_notify", "celery"}

    # installing again rebinds the same tasks to the new runtime; another app gets its own tasks
    again = install(app, tables, MemoryStore())
    assert again is not runtime and app._selflow_installed.current is again
    other = Celery("other", broker="memory://", set_as_current=False)
    assert NODE_TASK not in other.tasks
