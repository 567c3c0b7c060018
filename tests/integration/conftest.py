"""Fixtures of the integration tests: real Redis, real RabbitMQ, real ``selflow worker`` processes.

Services: Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 (guest/guest). When one is
down the tests that need it are skipped, unless ``CI`` is set: then they fail.

Isolation: each worker configuration gets its own Redis database (flushed before and after), so
no worker ever takes another's messages, and each RabbitMQ test module gets its own virtual host
(made with ``rabbitmqctl``; outside CI the default vhost is used if that fails).

Workers are subprocesses (``python -m selflow worker ...``) in their own process group, with their
log in the test's temporary directory; a failing test prints the tail of every worker log.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from itest_support import (
    DB_ITEST,
    DB_REFERENCE,
    ITEST_CONFIG,
    REFERENCE_CONFIG,
    LIVE_WORKERS,
    RABBITMQ,
    Cluster,
    flush,
    rabbitmqctl,
    redis_url,
    require_service,
    start_cluster,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for worker in LIVE_WORKERS:
            report.sections.append((f"worker {worker.hostname}", worker.tail(80)))


@pytest.fixture(scope="session")
def redis_up() -> None:
    require_service("Redis", 6379)


@pytest.fixture(scope="session")
def rabbitmq_up() -> None:
    require_service("RabbitMQ", 5672)


@pytest.fixture(scope="module")
def rabbit_vhost(rabbitmq_up: None) -> Iterator[str]:
    """A RabbitMQ broker URL on a virtual host of this module's own."""
    name = f"selflow-itest-{uuid.uuid4().hex[:8]}"
    made = rabbitmqctl("add_vhost", name) and rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    if not made:
        if os.environ.get("CI"):
            pytest.fail("rabbitmqctl could not create a virtual host for the tests")
        yield f"{RABBITMQ}//"
        return
    try:
        yield f"{RABBITMQ}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture(autouse=True)
def _forget_runtime() -> Iterator[None]:
    """Tests that call ``selflow.init`` in this process must not leak its runtime."""
    from selflow import api

    before = api._current
    yield
    api.set_runtime(before)


@pytest.fixture(scope="session")
def reference_redis_cluster(redis_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A ``selflow worker config`` (2 processes) with Redis as broker and store."""
    cluster = start_cluster([REFERENCE_CONFIG], broker=redis_url(DB_REFERENCE), store_db=DB_REFERENCE,
                            tmp_dir=tmp_path_factory.mktemp("reference-redis"), name="reference-redis")
    yield cluster
    cluster.stop()
    flush(DB_REFERENCE)


@pytest.fixture(scope="session")
def itest_cluster(redis_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A ``selflow worker`` for the tests' own configuration, on Redis (broker and store)."""
    cluster = start_cluster([ITEST_CONFIG], broker=redis_url(DB_ITEST), store_db=DB_ITEST,
                            tmp_dir=tmp_path_factory.mktemp("itest"), name="itest")
    yield cluster
    cluster.stop()
    flush(DB_ITEST)


