"""``selflow.init(app, config=...)`` on a team's existing Celery app, run by a plain
``celery -A selflow_itest_user_app worker`` (no -Q: init adds selflow's queues to the app).
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from itest_support import DATA, DB_USER_APP, REFERENCE_CONFIG, WorkerProcess, flush, redis_url, worker_env

GOOD_PAGE = {"site": "https://shop.acme.test", "url": "https://shop.acme.test/products/widget"}


@pytest.fixture(scope="module")
def user_app(redis_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    flush(DB_USER_APP)
    env = worker_env(DB_USER_APP, USER_APP_BROKER=redis_url(DB_USER_APP), USER_APP_BACKEND=redis_url(DB_USER_APP),
                     USER_APP_CONFIG=REFERENCE_CONFIG)
    hostname = f"userapp-{uuid.uuid4().hex[:6]}@itest"
    worker = WorkerProcess([sys.executable, "-m", "celery", "-A", "selflow_itest_user_app", "worker", "-c", "2",
                            "--hostname", hostname, "--loglevel", "INFO"], env=env,
                           log_path=tmp_path_factory.mktemp("user-app") / "worker.log", hostname=hostname)
    worker.start()
    # the submitting side imports the same module, as a web app of the team would
    saved = {key: sys.modules.get(key) for key in ("selflow_itest_user_app",)}
    mp = pytest.MonkeyPatch()
    for key in ("USER_APP_BROKER", "USER_APP_BACKEND", "USER_APP_CONFIG"):
        mp.setenv(key, env[key])
    mp.syspath_prepend(str(DATA))
    try:
        module = importlib.import_module("selflow_itest_user_app")
        yield module, worker
    finally:
        mp.undo()
        worker.stop()
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
        flush(DB_USER_APP)


def test_init_registers_selflow_on_an_existing_app(user_app: Any) -> None:
    import selflow

    module, worker = user_app
    runtime = module.selflow.init(module.app, config=REFERENCE_CONFIG)  # what the module did at import
    assert {"selflow.dispatcher", "selflow.node", "user_app.add"} <= set(module.app.tasks)
    assert runtime.store.url.endswith(f"/{DB_USER_APP}")  # the app's Redis result backend holds flow state
    for queue in ("celery", "acme_notify"):
        assert f".> {queue}" in worker.log()  # consumed without -Q

    # When a flow is started through the module-level API
    handle = selflow.run_flow("analyze_page", GOOD_PAGE)
    state = handle.wait(60)

    # Then it runs on the team's worker
    assert state.status == "success"
    assert set(state.result()["finished_nodes"]) == {"FetchPage", "ExtractText", "ClassifyTopics", "ExtractPrices"}
    assert handle.state().status == "success"  # type: ignore[union-attr]
    report = handle.report()
    assert report["flow_id"] == handle.flow_id and report["status"] == "success"
    # and the team's own task still works beside selflow's
    assert module.add.delay(2, 3).get(timeout=30) == 5


def test_run_flow_selective_runs_only_the_path_to_the_tasks(user_app: Any) -> None:
    import selflow

    handle = selflow.run_flow_selective("analyze_page", ["ExtractText"], GOOD_PAGE)
    state = handle.wait(60)
    assert state.status == "success"
    assert set(state.result()["finished_nodes"]) == {"FetchPage", "ExtractText"}


def test_wait_times_out_on_a_flow_that_cannot_end(user_app: Any) -> None:
    import selflow

    handle = selflow.FlowHandle("no-such-flow-id", "analyze_page")
    with pytest.raises(TimeoutError):
        handle.wait(0.5)
    assert handle.state() is None


def test_init_needs_a_configuration(tmp_path: Path) -> None:
    from celery import Celery

    import selflow
    from selflow.errors import SelflowError

    with pytest.raises(SelflowError, match="exactly one of"):
        selflow.init(Celery("x", broker="redis://127.0.0.1:6379/7", set_as_current=False))
    with pytest.raises(SelflowError, match="cannot hold flow state"):
        selflow.init(Celery("x", broker="amqp://guest:guest@127.0.0.1:5672//", set_as_current=False),
                     config=REFERENCE_CONFIG)
