"""Real services for the storage tests: Redis, PostgreSQL, and an S3 served by moto.

Redis and PostgreSQL must already run on 127.0.0.1 (6379 and 5432). The S3 is a moto server
that the session starts on a free port of 127.0.0.1 and stops at the end. When a service is
missing the tests that need it are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Iterator

import pytest

#: a database of its own, flushed before and after each test
REDIS_DB = int(os.environ.get("SELFLOW_TEST_REDIS_DB", "14"))
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_URLS = tuple(filter(None, (
    os.environ.get("SELFLOW_TEST_POSTGRES_URL"),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)))


def unavailable(message: str) -> None:
    """Skip the test, or fail it when ``CI`` is set (CI must run every service)."""
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: storage tests must run against real services)")
    pytest.skip(message)


def _port_open(host: str, port: int) -> str | None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return str(exc)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_config() -> Iterator[dict[str, object]]:
    """RedisStorage configuration for a dedicated database, flushed before and after."""
    problem = _port_open(REDIS_HOST, REDIS_PORT)
    if problem:
        unavailable(f"Redis is not running at {REDIS_HOST}:{REDIS_PORT}: {problem}")
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    try:
        yield {"host": REDIS_HOST, "port": REDIS_PORT, "db": REDIS_DB}
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _port_open("127.0.0.1", 5432)
    if problem:
        unavailable(f"PostgreSQL is not running at 127.0.0.1:5432: {problem}")
    try:
        import sqlalchemy
    except ImportError:
        unavailable("sqlalchemy is not installed: pip install -e '.[test]'")
    from selflow.storages.postgresql import engine_url

    errors = []
    for url in POSTGRES_URLS:
        engine = sqlalchemy.create_engine(engine_url(url))
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("select 1"))
            return url
        except Exception as exc:  # noqa: BLE001 - try the next user
            errors.append(f"{url}: {exc}")
        finally:
            engine.dispose()
    unavailable("cannot connect to PostgreSQL: " + "; ".join(errors))
    raise AssertionError("unreachable")


@pytest.fixture
def postgres_config(postgres_url: str) -> Iterator[dict[str, object]]:
    """PostgresStorage configuration with tables of their own, dropped afterwards."""
    table = f"selflow_test_{uuid.uuid4().hex[:12]}"
    yield {"connection_string": postgres_url, "table_name": table}
    import sqlalchemy

    from selflow.storages.postgresql import engine_url

    engine = sqlalchemy.create_engine(engine_url(postgres_url))
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'drop table if exists "{table}", "{table}_error"'))
    engine.dispose()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 endpoint served by a moto server on 127.0.0.1, for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable(f"moto[server] is not installed ({exc}): pip install -e '.[test]'")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_config(moto_endpoint: str) -> dict[str, object]:
    """S3Storage configuration for a fresh bucket on the moto server (created on connect)."""
    return {"bucket": f"selflow-test-{uuid.uuid4().hex[:12]}", "endpoint_url": moto_endpoint,
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture
def s3_client(moto_endpoint: str):
    """A plain boto3 client of the moto server, to look behind the adapter's back."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    yield client
    client.close()
