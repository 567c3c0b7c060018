"""Helpers of the integration tests (the fixtures in conftest.py use them); see conftest.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
REFERENCE_CONFIG = str(REPO_ROOT / "config")
ITEST_CONFIG = str(DATA / "itest")

REDIS = "redis://127.0.0.1:6379"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"
#: Redis databases of the integration tests, one per worker set-up (see the module docstring)
DB_REFERENCE, DB_ITEST, DB_USER_APP, DB_RABBIT_STATE, DB_KILL = 5, 6, 7, 8, 9

#: how long a worker may take to print "ready."
WORKER_START_TIMEOUT_S = 40
#: how long a flow of the tests may run
FLOW_TIMEOUT_S = 60


#: workers of the running tests, whose logs a failing test's report shows
LIVE_WORKERS: list["WorkerProcess"] = []


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    if not _port_open(port):
        message = f"{name} is not reachable on 127.0.0.1:{port}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: integration tests must run)")
        pytest.skip(message)


def redis_url(db: int) -> str:
    return f"{REDIS}/{db}"


def flush(db: int) -> None:
    import redis

    client = redis.Redis.from_url(redis_url(db))
    try:
        client.flushdb()
    finally:
        client.close()


class RedisDb:
    """One flushed Redis database for a test set-up."""

    def __init__(self, db: int):
        self.db = db
        self.url = redis_url(db)
        import redis

        self.client = redis.Redis.from_url(self.url, decode_responses=True)

    def ids(self, tag: str, kind: str, task: str) -> list[str]:
        """What selflow_itest_tasks recorded: node ids, one per start (or end) of ``task``."""
        return self.client.lrange(f"itest:{tag}:{kind}:{task}", 0, -1)


def rabbitmqctl(*args: str) -> bool:
    try:
        return subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def worker_env(store_db: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DATA), str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["SELFLOW_ITEST_REDIS"] = redis_url(store_db)
    env.pop("SELFLOW_BROKER_URL", None)
    env.pop("SELFLOW_RESULT_BACKEND", None)
    env.update(extra)
    return env


class WorkerProcess:
    """A Celery worker in a subprocess of its own process group; its log goes to ``log_path``."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], log_path: Path, hostname: str):
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.hostname = hostname
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = WORKER_START_TIMEOUT_S) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if self not in LIVE_WORKERS:
            LIVE_WORKERS.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f"{self.hostname} ready." in self.log():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.hostname} exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"worker {self.hostname} not ready within {timeout} s:\n{self.tail()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a machine that dies would."""
        if self.proc is None or self.proc.poll() is not None:
            return
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it does not end in time."""
        if self in LIVE_WORKERS:
            LIVE_WORKERS.remove(self)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.proc.pid, signal.SIGKILL)  # pool processes that outlived their parent
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def selflow_worker(tmp_dir: Path, name: str, configs: Sequence[str], *, broker: str,
                   result_backend: str | None = None, store_db: int, concurrency: int = 2,
                   env: dict[str, str] | None = None) -> WorkerProcess:
    """``python -m selflow worker CONFIG... --broker ... -c 2``, not started yet."""
    hostname = f"{name}-{uuid.uuid4().hex[:6]}@itest"
    argv = [sys.executable, "-m", "selflow", "worker", *configs, "--broker", broker, "-c", str(concurrency),
            "--hostname", hostname, "--loglevel", "INFO"]
    if result_backend:
        argv += ["--result-backend", result_backend]
    return WorkerProcess(argv, env=env or worker_env(store_db), log_path=tmp_dir / f"{name}.log", hostname=hostname)


class Cluster:
    """Workers of one configuration plus an in-process Celery app with selflow installed on it."""

    def __init__(self, configs: Sequence[str], *, broker: str, store_db: int, tmp_dir: Path, name: str):
        from selflow.runtime.celery_app import install
        from selflow.runtime.celery_config import make_app
        from selflow.runtime.redis_store import RedisStore

        self.configs = list(configs)
        self.broker = broker
        self.store_db = store_db
        self.store_url = redis_url(store_db)
        self.result_backend = None if broker.startswith("redis://") else self.store_url
        self.redis = RedisDb(store_db)
        self.tmp_dir = tmp_dir
        self.workers = [selflow_worker(tmp_dir, name, configs, broker=broker, result_backend=self.result_backend,
                                       store_db=store_db)]
        self.app = make_app(broker, store_url=self.store_url)
        self.runtime = install(self.app, compile_config(configs), RedisStore.from_url(self.store_url))

    @property
    def store(self) -> Any:
        return self.runtime.store

    @property
    def worker(self) -> WorkerProcess:
        return self.workers[0]

    def run(self, flow: str, node_args: Any = None, *, timeout: float = FLOW_TIMEOUT_S) -> tuple[Any, dict[str, Any]]:
        """Run ``flow`` on the workers; its final state and report."""
        handle = self.start(flow, node_args)
        try:
            state = handle.wait(timeout)
        except TimeoutError:
            raise AssertionError(f"{flow} did not end in {timeout} s; worker log:\n{self.worker.tail()}") from None
        return state, handle.report()

    def start(self, flow: str, node_args: Any = None) -> Any:
        """Start ``flow`` on the workers; a ``FlowHandle``."""
        from selflow.api import FlowHandle

        return FlowHandle(self.runtime.runtime.start_flow(flow, node_args), flow, runtime=self.runtime)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.runtime.store.close()


def compile_config(configs: Sequence[str]) -> Any:
    from selflow.codegen import load_system
    from selflow.codegen.compiled import compile_tables

    return compile_tables(load_system(list(configs)))


def start_cluster(configs: Sequence[str], *, broker: str, store_db: int, tmp_dir: Path,
                  name: str) -> Cluster:
    flush(store_db)
    cluster = Cluster(configs, broker=broker, store_db=store_db, tmp_dir=tmp_dir, name=name)
    try:
        cluster.worker.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def tag() -> str:
    """A fresh namespace for what selflow_itest_tasks records."""
    return uuid.uuid4().hex[:10]
