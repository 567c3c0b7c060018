"""What only ``RedisStore`` has: key layout, TTLs, error translation and round trips per call.

These tests talk to the real Redis server on 127.0.0.1:6379 (each under its own random key prefix,
deleted afterwards). Without a server they are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager

import pytest

redis = pytest.importorskip("redis")

from selflow.dispatcher.records import RUNNING, SUCCESS, FlowState, NodeSucceeded  # noqa: E402
from selflow.errors import DecodeError, StorageError  # noqa: E402
from selflow.runtime.redis_store import END_SIGNAL_TTL_S, RedisStore  # noqa: E402

pytestmark = pytest.mark.integration

HOST, PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{HOST}:{PORT}/0"
TTL = 3600  # result_ttl of the stores under test: small enough to tell from "no TTL"


class CountingConnection(redis.connection.Connection):
    """A real connection that counts writes: one write of a batch of commands is one round trip.

    The count is kept on the class; each ``client`` fixture makes its own subclass.
    """

    writes = 0

    def send_packed_command(self, command, check_health=True):
        type(self).writes += 1
        return super().send_packed_command(command, check_health)


def _require_redis() -> None:
    try:  # a plain connect: redis-py would retry a refused connection for seconds
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        message = f"Redis is not running at {REDIS_URL}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def prefix():
    _require_redis()
    prefix = f"selflow-test-{uuid.uuid4().hex}"
    yield prefix
    cleaner = redis.Redis(host=HOST, port=PORT)
    keys = list(cleaner.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        cleaner.delete(*keys)
    cleaner.close()


@pytest.fixture
def client():
    """A client whose every call, pipelines included, goes through one counted connection."""
    counting = type("Counting", (CountingConnection,), {"writes": 0})
    pool = redis.BlockingConnectionPool(connection_class=counting, host=HOST, port=PORT, max_connections=1)
    client = redis.Redis(connection_pool=pool)
    client.ping()  # opens the connection (its HELLO/CLIENT SETINFO are not the store's)
    yield client
    client.close()
    pool.disconnect()


@pytest.fixture
def store(prefix, client):
    return RedisStore(client, prefix=prefix, result_ttl=TTL)


def running_state(flow_id: str = "flow-1") -> FlowState:
    return FlowState.new(flow_id, "main", {"x": 1})


def ended(state: FlowState) -> FlowState:
    return FlowState.from_dict({**state.to_dict(), "status": SUCCESS})


@contextmanager
def round_trips(client):
    """Count the round trips ``client`` makes inside the block: ``counted["n"]`` afterwards."""
    counting = client.connection_pool.connection_class
    before = counting.writes
    counted = {"n": None}
    yield counted
    counted["n"] = counting.writes - before


@contextmanager
def monitored(client):
    """Collect, through MONITOR, the commands the server ran for ``client``'s connection."""
    address = client.client_info()["addr"]
    stop = f"stop-monitor-{uuid.uuid4().hex}"
    seen: list[str] = []
    watcher = redis.Redis(host=HOST, port=PORT)
    ready = threading.Event()

    def listen() -> None:
        with watcher.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if f"{entry['client_address']}:{entry['client_port']}" != address:
                    continue
                if stop in entry["command"]:
                    return
                seen.append(entry["command"])

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.1)  # MONITOR is registered on the server once its reply came back
    client.echo("warm-up")
    try:
        yield seen
    finally:
        client.echo(stop)
        thread.join(timeout=5)
        watcher.close()
    seen[:] = [command for command in seen if "warm-up" not in command]


# --- key layout and TTLs ------------------------------------------------------------------


def test_every_key_is_under_the_prefix(store, client, prefix):
    state = running_state()
    with monitored(client) as commands:
        store.save_result("n1", {"r": 1})
        store.save_error("n2", {"type": "E", "message": "m", "traceback": ""})
        store.create_flow(state)
        store.push_event(state.flow_id, NodeSucceeded("n1"))
        assert store.try_lock(state.flow_id, "tok")
        store.revoke(["n3"])
        store.commit(ended(state), 1)
        store.push_event(state.flow_id, NodeSucceeded("n4"))
        store.unlock(state.flow_id, "tok")
        store.announce_end(state.flow_id)
        store.wait_for_end(state.flow_id, timeout=1)
        store.load_result("n1"), store.load_error("n2"), store.read_events(state.flow_id)
        store.has_events(state.flow_id), store.is_revoked("n3")
    keyed = [command for command in commands if command.split()[0] not in ("MULTI", "EXEC", "EVALSHA", "EVAL",
                                                                            "SCRIPT")]
    assert keyed and all(command.split()[1].strip('"').startswith(f"{prefix}:") for command in keyed), keyed
    for command in commands:  # scripts get their key as the first KEYS argument
        if command.split()[0] in ("EVALSHA", "EVAL"):
            assert command.split()[3].strip('"').startswith(f"{prefix}:")
    keys = {key.decode() for key in client.scan_iter(match=f"{prefix}:*")}
    assert keys == {f"{prefix}:result:n1", f"{prefix}:error:n2", f"{prefix}:flow:flow-1", f"{prefix}:inbox:flow-1",
                    f"{prefix}:revoked:n3", f"{prefix}:end:flow-1"}


def test_results_errors_and_revocations_expire(store, client, prefix):
    store.save_result("n1", 1)
    store.save_error("n2", {"type": "E", "message": "m", "traceback": ""})
    store.revoke(["n3", "n4"])
    for key in ("result:n1", "error:n2", "revoked:n3", "revoked:n4"):
        assert TTL - 60 < client.ttl(f"{prefix}:{key}") <= TTL, key


def test_running_state_never_expires_and_ended_state_does(store, client, prefix):
    state = running_state()
    key = f"{prefix}:flow:{state.flow_id}"
    store.create_flow(state)
    assert client.ttl(key) == -1
    store.commit(state, 0)
    assert client.ttl(key) == -1
    store.commit(ended(state), 0)
    assert TTL - 60 < client.ttl(key) <= TTL
    store.commit(state, 0)  # running again (a flow retried from scratch): the TTL goes
    assert client.ttl(key) == -1
    store.create_flow(ended(running_state("flow-2")))
    assert TTL - 60 < client.ttl(f"{prefix}:flow:flow-2") <= TTL


def test_inbox_lock_and_end_signal_expire(store, client, prefix):
    store.push_event("f1", NodeSucceeded("n1"))
    assert TTL - 60 < client.ttl(f"{prefix}:inbox:f1") <= TTL
    assert store.try_lock("f1", "tok", ttl=30)
    assert 25_000 < client.pttl(f"{prefix}:lock:f1") <= 30_000
    store.announce_end("f1")
    assert 0 < client.ttl(f"{prefix}:end:f1") <= END_SIGNAL_TTL_S


def test_prefixes_keep_stores_apart(store, client, prefix):
    other = RedisStore(client, prefix=f"{prefix}:other")
    store.save_result("n1", "mine")
    store.create_flow(running_state())
    assert other.load_result("n1") is None
    assert other.load_state("flow-1") is None
    assert other.try_lock("flow-1", "tok")
    assert store.try_lock("flow-1", "tok")
    same = RedisStore(client, prefix=prefix)
    assert same.load_result("n1") == "mine"


# --- round trips --------------------------------------------------------------------------


def test_commit_is_one_transaction_in_one_round_trip(store, client, prefix):
    state = running_state()
    store.create_flow(state)
    for name in ("a", "b", "c"):
        store.push_event(state.flow_id, NodeSucceeded(name))
    with monitored(client) as commands, round_trips(client) as counted:
        store.commit(state, 2)
    assert counted["n"] == 1
    assert [command.split()[0] for command in commands] == ["MULTI", "SET", "LTRIM", "EXEC"]
    assert commands[2] == f"LTRIM {prefix}:inbox:flow-1 2 -1"

    with monitored(client) as commands, round_trips(client) as counted:
        store.commit(ended(state), 1)
    assert counted["n"] == 1
    assert [command.split()[0] for command in commands] == ["MULTI", "SET", "LTRIM", "RPUSH", "PEXPIRE", "EXEC"]
    assert store.read_events(state.flow_id) == []


@pytest.mark.parametrize("call, expected", [
    (lambda s: s.save_result("n1", {"a": 1}), 1),
    (lambda s: s.load_result("n1"), 1),
    (lambda s: s.save_error("n1", {"type": "E", "message": "m", "traceback": ""}), 1),
    (lambda s: s.load_error("n1"), 1),
    (lambda s: s.create_flow(running_state()), 1),
    (lambda s: s.load_state("flow-1"), 1),
    (lambda s: s.push_event("flow-1", NodeSucceeded("n1")), 1),
    (lambda s: s.read_events("flow-1"), 1),
    (lambda s: s.has_events("flow-1"), 1),
    (lambda s: s.commit(running_state(), 1), 1),
    (lambda s: s.try_lock("flow-1", "tok"), 1),
    (lambda s: s.revoke(["n1", "n2", "n3"]), 1),
    (lambda s: s.revoke([]), 0),
    (lambda s: s.is_revoked("n1"), 1),
    (lambda s: s.announce_end("flow-1"), 1),
])
def test_round_trips_per_call(store, client, call, expected):
    store.push_event("flow-1", NodeSucceeded("n0"))
    with round_trips(client) as counted:
        call(store)
    assert counted["n"] == expected


def test_unlock_is_one_round_trip_once_the_script_is_known(store, client):
    assert store.try_lock("f1", "tok")
    store.unlock("f1", "tok")  # may load the script into a server that did not know it
    assert store.try_lock("f1", "tok")
    with round_trips(client) as counted:
        store.unlock("f1", "tok")
    assert counted["n"] == 1
    assert store.try_lock("f1", "other")


def test_unlock_survives_a_flushed_script_cache(prefix):
    client = redis.Redis(host=HOST, port=PORT)
    store = RedisStore(client, prefix=prefix)
    try:
        assert store.try_lock("f1", "tok")
        client.script_flush()  # as after a server restart
        store.unlock("f1", "tok")
        assert store.try_lock("f1", "other")
    finally:
        client.close()


def test_wait_for_an_ended_flow_is_one_round_trip(store, client):
    state = running_state()
    store.create_flow(ended(state))
    with round_trips(client) as counted:
        assert store.wait_for_end(state.flow_id, timeout=5).status == SUCCESS
    assert counted["n"] == 1


# --- waiting across stores ----------------------------------------------------------------


def test_waiters_on_other_connections_wake_on_commit_and_late_ones_need_no_signal(prefix):
    writer = RedisStore.from_url(REDIS_URL, prefix=prefix)
    state = running_state()
    writer.create_flow(state)
    waiters = [RedisStore.from_url(REDIS_URL, prefix=prefix) for _ in range(4)]
    results: list[tuple[float, FlowState | None]] = []

    def wait(waiter: RedisStore) -> None:
        results.append((time.monotonic(), waiter.wait_for_end(state.flow_id, timeout=10)))

    threads = [threading.Thread(target=wait, args=(waiter,)) for waiter in waiters]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        final = ended(state)
        writer.commit(final, 0)  # no announce_end: the ending commit wakes waiters itself
        ended_at = time.monotonic()
        for thread in threads:
            thread.join(timeout=10)
        assert len(results) == 4
        assert all(result == final for _, result in results)
        assert all(at - ended_at < 0.5 for at, _ in results), "a waiter slept until its slice ended"
        writer.client.delete(writer.key("end", state.flow_id))  # the wake-up signal is gone
        started = time.monotonic()
        assert waiters[0].wait_for_end(state.flow_id, timeout=10) == final
        assert time.monotonic() - started < 0.5
    finally:
        for store in (writer, *waiters):
            store.close()


def test_wait_without_timeout_returns_once_the_flow_ends(store, prefix):
    state = running_state()
    store.create_flow(state)
    other = RedisStore.from_url(REDIS_URL, prefix=prefix)
    timer = threading.Timer(0.3, lambda: other.commit(ended(state), 0))
    timer.start()
    try:
        assert store.wait_for_end(state.flow_id, timeout=None).status == SUCCESS
    finally:
        timer.join()
        other.close()


def test_wait_with_a_socket_timeout_shorter_than_a_slice(prefix):
    client = redis.Redis(host=HOST, port=PORT, socket_timeout=0.2)
    store = RedisStore(client, prefix=prefix)
    try:
        state = running_state()
        store.create_flow(state)
        started = time.monotonic()
        assert store.wait_for_end(state.flow_id, timeout=0.7) == state
        assert time.monotonic() - started < 2
        timer = threading.Timer(0.3, lambda: store.commit(ended(state), 0))
        timer.start()
        assert store.wait_for_end(state.flow_id, timeout=5).status == SUCCESS
        timer.join()
    finally:
        client.close()


# --- errors -------------------------------------------------------------------------------


def _port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) != 0


@pytest.mark.parametrize("call", [
    lambda s: s.load_result("n1"),
    lambda s: s.save_result("n1", 1),
    lambda s: s.commit(running_state(), 1),
    lambda s: s.push_event("f1", NodeSucceeded("n1")),
    lambda s: s.try_lock("f1", "tok"),
    lambda s: s.unlock("f1", "tok"),
    lambda s: s.wait_for_end("f1", timeout=1),
])
def test_unreachable_server_gives_a_storage_error_naming_the_url(call):
    if not _port_is_closed(6390):
        pytest.skip("something listens on 6390")
    store = RedisStore.from_url("redis://selflow:hunter2@127.0.0.1:6390/0")
    with pytest.raises(StorageError) as caught:
        call(store)
    message = str(caught.value)
    assert message.startswith("cannot reach Redis at redis://selflow:***@127.0.0.1:6390/0: ")
    assert "refused" in message.lower()
    assert "hunter2" not in message
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    store.close()


def test_storage_error_message_for_a_url_without_password():
    if not _port_is_closed(6390):
        pytest.skip("something listens on 6390")
    store = RedisStore.from_url("redis://127.0.0.1:6390/0")
    with pytest.raises(StorageError, match=r"^cannot reach Redis at redis://127\.0\.0\.1:6390/0: Connection refused$"):
        store.load_state("f1")


def test_bad_url_gives_a_storage_error_without_the_password():
    with pytest.raises(StorageError) as caught:
        RedisStore.from_url("http://user:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(caught.value)
    assert "http://user:***@127.0.0.1:6379/0" in str(caught.value)


def test_refused_credentials_give_a_storage_error_without_the_password(prefix):
    store = RedisStore.from_url(f"redis://nobody-{uuid.uuid4().hex[:6]}:hunter2@{HOST}:{PORT}/0", prefix=prefix)
    with pytest.raises(StorageError, match=r"refused the credentials") as caught:
        store.load_state("f1")
    assert "***@127.0.0.1:6379/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    store.close()


def test_a_password_in_the_query_of_a_bad_url_is_left_out():
    with pytest.raises(StorageError) as caught:
        RedisStore.from_url("http://127.0.0.1:6379/0?password=hunter2")
    assert "hunter2" not in str(caught.value)


def test_server_side_errors_are_storage_errors(store, client, prefix):
    client.rpush(f"{prefix}:flow:f1", "not a string value")
    with pytest.raises(StorageError, match="WRONGTYPE"):
        store.load_state("f1")


@pytest.mark.parametrize("kind, call", [
    ("result", lambda s: s.load_result("x")),
    ("error", lambda s: s.load_error("x")),
    ("flow", lambda s: s.load_state("x")),
])
def test_values_that_are_not_json_give_decode_errors(store, client, prefix, kind, call):
    client.set(f"{prefix}:{kind}:x", b"\xff{not json")
    with pytest.raises(DecodeError, match=f"{prefix}:{kind}:x"):
        call(store)


def test_bad_state_and_events_give_decode_errors(store, client, prefix):
    client.set(f"{prefix}:flow:x", '{"no": "flow id"}')
    with pytest.raises(DecodeError):
        store.load_state("x")
    client.set(f"{prefix}:flow:y", "[1, 2]")
    with pytest.raises(DecodeError):
        store.load_state("y")
    for bad in ("{oops", "[1]", '"text"', '{"kind": "exploded", "node_id": "n"}'):
        client.delete(f"{prefix}:inbox:x")
        client.rpush(f"{prefix}:inbox:x", bad)
        with pytest.raises(DecodeError):
            store.read_events("x")
    with pytest.raises(DecodeError):
        store.wait_for_end("x", timeout=0)


# --- ownership ----------------------------------------------------------------------------


def test_close_disconnects_only_a_client_the_store_made(prefix, client):
    borrowed = RedisStore(client, prefix=prefix)
    borrowed.close()
    assert client.ping()
    owned = RedisStore.from_url(REDIS_URL, prefix=prefix)
    owned.save_result("n1", 1)
    owned.close()
    assert client.get(f"{prefix}:result:n1") == b"1"


def test_a_state_written_by_one_store_is_read_by_another(prefix):
    first = RedisStore.from_url(REDIS_URL, prefix=prefix)
    second = RedisStore.from_url(REDIS_URL, prefix=prefix)
    try:
        state = running_state()
        state.active = {"n1": "task"}
        first.create_flow(state)
        first.push_event(state.flow_id, NodeSucceeded("n1"))
        assert second.load_state(state.flow_id) == state
        assert second.read_events(state.flow_id) == [NodeSucceeded("n1")]
        assert second.load_state(state.flow_id).status == RUNNING
    finally:
        first.close()
        second.close()
