"""A worker killed with SIGKILL in the middle of a task loses nothing.

The node and Dispatcher tasks are ``acks_late`` with ``reject_on_worker_lost``: the killed
worker never acknowledged their messages, so the broker hands them to the next worker. RabbitMQ
does so as soon as the dead worker's connection drops; Redis once the message's visibility
timeout has passed (5 s here, through SELFLOW_BROKER_TRANSPORT_OPTIONS).

Delivery is at least once: the task that was running when the worker died starts again from the
beginning, so its side effects happen twice (two starts, one end), while the flow records the
node once and runs every later node once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from itest_support import DB_KILL, ITEST_CONFIG, Cluster, flush, redis_url, selflow_worker, tag, worker_env

VISIBILITY = {"visibility_timeout": 5, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


@pytest.fixture(params=["rabbitmq", "redis"])
def kill_cluster(request: pytest.FixtureRequest, redis_up: None, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "rabbitmq":
        broker = request.getfixturevalue("rabbit_vhost")
        env = worker_env(DB_KILL)
    else:
        broker = redis_url(DB_KILL)
        env = worker_env(DB_KILL, SELFLOW_BROKER_TRANSPORT_OPTIONS=json.dumps(VISIBILITY))
    flush(DB_KILL)
    cluster = Cluster([ITEST_CONFIG], broker=broker, store_db=DB_KILL, tmp_dir=tmp_path, name="doomed")
    cluster.workers[0].env = env
    cluster.workers.append(selflow_worker(tmp_path, "survivor", [ITEST_CONFIG], broker=broker,
                                          result_backend=cluster.result_backend, store_db=DB_KILL, env=env))
    try:
        yield cluster
    finally:
        cluster.stop()
        flush(DB_KILL)


def test_killed_worker_loses_nothing(kill_cluster: Cluster) -> None:
    doomed, survivor = kill_cluster.workers
    redis = kill_cluster.redis
    t = tag()

    # Given a sleepy flow whose Sleep task (3 s) has started on the first worker
    doomed.start()
    handle = kill_cluster.start("sleepy", {"tag": t, "sleep_s": 3})
    deadline = time.monotonic() + 20
    while not redis.ids(t, "start", "Sleep") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis.ids(t, "start", "Sleep"), doomed.tail()

    # When that worker and its pool processes are killed mid-task, and another worker starts
    doomed.kill()
    assert handle.state().status == "running"  # type: ignore[union-attr]
    assert redis.ids(t, "end", "Sleep") == []
    survivor.start()
    state = handle.wait(60)

    # Then the flow succeeds with every node recorded exactly once
    assert state.status == "success", survivor.tail()
    finished = state.result()["finished_nodes"]
    assert {name: len(ids) for name, ids in finished.items()} == {"Sleep": 1, "Tail": 1}
    # and the interrupted task ran again from the start (at least once: two starts, one end)
    starts, ends = redis.ids(t, "start", "Sleep"), redis.ids(t, "end", "Sleep")
    assert starts == finished["Sleep"] * 2
    assert ends == finished["Sleep"]
    assert redis.ids(t, "start", "Tail") == finished["Tail"]
