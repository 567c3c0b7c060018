"""A ``FlowStore`` in Redis, for distributed runs.

Key layout, all under one prefix (``selflow`` unless told otherwise)::

    <prefix>:result:<node_id>    JSON result of a finished node                  (TTL result_ttl)
    <prefix>:error:<node_id>     JSON error of a failed node                     (TTL result_ttl)
    <prefix>:flow:<flow_id>      JSON flow state                                 (no TTL while running,
                                                                                  result_ttl once ended)
    <prefix>:inbox:<flow_id>     list of JSON events, oldest first (RPUSH)       (TTL result_ttl, renewed
                                                                                  on every push)
    <prefix>:lock:<flow_id>      token of the dispatcher step holding the flow   (TTL = lock ttl)
    <prefix>:revoked:<node_id>   "1" for a revoked node                          (TTL result_ttl)
    <prefix>:end:<flow_id>       wake-up tokens for ``wait_for_end``             (TTL END_SIGNAL_TTL_S)

Every value is JSON text. Every public method documents its number of round trips to Redis: the
dispatcher calls them on every step of every flow, so each one is a single round trip (a pipeline,
``MULTI``/``EXEC`` where the writes must land together, or a Lua script where a later command
depends on an earlier one's answer) except ``wait_for_end``, which blocks.

The compound calls of the hot path (``lock_and_load``, ``commit_and_continue``, ``report``) are Lua
scripts: each runs atomically on the server in one round trip (``EVALSHA``; the first call on a
server that does not know the script yet loads it). Every key a script touches is passed in
``KEYS``; on Redis Cluster they would all have to share a hash slot (not supported today).

Redis errors never escape as ``redis`` exceptions: an unreachable or failing server raises
``StorageError`` naming the server's URL (without its password), and a value that is not what
selflow wrote raises ``DecodeError``.
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis
import redis.exceptions

from selflow.dispatcher.records import RUNNING, Event, FlowState, event_from_dict, event_to_dict
from selflow.errors import DecodeError, StorageError
from selflow.runtime.store import LOCK_TTL_S, NOTHING, RESULT_TTL_S, Claim, FlowStore, Report

#: how long a wake-up token for ``wait_for_end`` stays in Redis; a waiter that comes later reads the
#: final state directly and needs no token
END_SIGNAL_TTL_S = 60
#: the longest a ``wait_for_end`` waiter blocks in one BLPOP before it looks at the flow state again;
#: it only matters when a wake-up token is lost, and it keeps every blocking call short
WAIT_SLICE_S = 1.0

# Delete the lock only if the caller's token still holds it (compare-and-delete in one step).
_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_WAKE_TOKEN = "1"

# lock_and_load. KEYS: lock, flow, inbox. ARGV: token, lock ttl ms.
# Returns 0 when the lock is taken, else {inbox events, state or ''}.
_LOCK_AND_LOAD_LUA = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 0
end
return {redis.call('LRANGE', KEYS[3], 0, -1), redis.call('GET', KEYS[2]) or ''}
"""

# commit_and_continue. KEYS: flow, inbox, lock, end, result.
# ARGV: state, ended ('1'/'0'), result ttl ms, consumed, token, end-signal ttl ms, has result ('1'/'0'),
#       result, lock ttl ms. Returns the inbox with the lock kept (renewed) when the flow runs, the token
#       still holds the lock and the inbox is not empty; else 0 with the lock released.
_COMMIT_AND_CONTINUE_LUA = """
if ARGV[2] == '1' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
if tonumber(ARGV[4]) > 0 then
    redis.call('LTRIM', KEYS[2], ARGV[4], -1)
end
if ARGV[7] == '1' then
    redis.call('SET', KEYS[5], ARGV[8], 'PX', ARGV[3])
end
if ARGV[2] == '1' then
    redis.call('RPUSH', KEYS[4], '1')
    redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
if redis.call('GET', KEYS[3]) ~= ARGV[5] then
    return 0
end
if ARGV[2] == '0' and redis.call('LLEN', KEYS[2]) > 0 then
    redis.call('PEXPIRE', KEYS[3], ARGV[9])
    return redis.call('LRANGE', KEYS[2], 0, -1)
end
redis.call('DEL', KEYS[3])
return 0
"""

# report. KEYS: revoked, result, error, inbox, lock, flow.
# ARGV: check revoked ('1'/'0'), has result, result, has error, error, event, result ttl ms, token,
#       lock ttl ms. Returns 0 for a revoked node, 1 when the event is pushed and the lock is taken,
#       else {inbox events, state or ''} with the lock now held by the token.
_REPORT_LUA = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
if ARGV[2] == '1' then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[7])
end
if ARGV[4] == '1' then
    redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[7])
end
redis.call('RPUSH', KEYS[4], ARGV[6])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
if not redis.call('SET', KEYS[5], ARGV[8], 'NX', 'PX', ARGV[9]) then
    return 1
end
return {redis.call('LRANGE', KEYS[4], 0, -1), redis.call('GET', KEYS[6]) or ''}
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` and its query (which may hold one) left out."""
    try:
        parts = urlsplit(url)
        if parts.password is None and not parts.query:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        if parts.username is not None or parts.password is not None:
            netloc = f"{parts.username or ''}{':***' if parts.password is not None else ''}@{netloc}"
        if parts.scheme:
            return f"{parts.scheme}://{netloc}{parts.path}"
        return urlunsplit(("", netloc, parts.path, "", ""))
    except ValueError:
        return "<unparsable Redis URL>"


def describe_client(client: "redis.Redis") -> str:
    """A URL naming the server ``client`` talks to, never with its password."""
    pool = getattr(client, "connection_pool", None)
    kwargs: dict[str, Any] = dict(getattr(pool, "connection_kwargs", None) or {})
    db = kwargs.get("db", 0)
    user = kwargs.get("username")
    auth = ""
    if user or kwargs.get("password"):
        auth = f"{quote(str(user or ''), safe='')}{':***' if kwargs.get('password') else ''}@"
    if kwargs.get("path"):
        return f"unix://{auth}{kwargs['path']}?db={db}"
    host = kwargs.get("host")
    if host is None:
        return f"Redis ({type(client).__name__} without a single server address)"
    connection_class = getattr(pool, "connection_class", None)
    scheme = "rediss" if connection_class is not None and issubclass(
        connection_class, redis.connection.SSLConnection) else "redis"
    if ":" in str(host):
        host = f"[{host}]"
    return f"{scheme}://{auth}{host}:{kwargs.get('port', 6379)}/{db}"


class _Translate:
    """Context manager that turns ``redis`` exceptions into ``StorageError``."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or not isinstance(exc, redis.exceptions.RedisError):
            return None
        if isinstance(exc, redis.exceptions.AuthenticationError):
            raise StorageError(f"Redis at {self.url} refused the credentials: {exc}") from exc
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            raise StorageError(f"cannot reach Redis at {self.url}: {_reason(exc)}") from exc
        raise StorageError(f"Redis at {self.url} failed: {exc}") from exc


def _reason(exc: BaseException) -> str:
    """The operating system's words for a connection failure when there are some."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


class RedisStore(FlowStore):
    """``FlowStore`` on a Redis server (see the module docstring for the key layout).

    Thread-safe: ``redis.Redis`` takes a pooled connection per call. Build it with ``from_url`` (the
    store then owns the client and ``close`` disconnects it) or hand it a ``redis.Redis`` client.
    """

    def __init__(self, client: "redis.Redis", *, prefix: str = "selflow", result_ttl: float = RESULT_TTL_S,
                 owns_client: bool = False) -> None:
        if not prefix:
            raise ValueError("the key prefix must not be empty")
        if result_ttl <= 0:
            raise ValueError("result_ttl must be positive")
        self.client = client
        self.prefix = prefix
        self.result_ttl_ms = max(1, int(result_ttl * 1000))
        #: the server's URL without its password, for messages
        self.url = describe_client(client)
        #: how long one BLPOP of ``wait_for_end`` blocks: under the client's read timeout, which
        #: redis-py would otherwise answer with retries and a TimeoutError
        self.wait_slice_s = WAIT_SLICE_S
        socket_timeout = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}).get(
            "socket_timeout")
        if socket_timeout:
            self.wait_slice_s = min(WAIT_SLICE_S, socket_timeout / 2)
        self.end_signal_ttl_ms = END_SIGNAL_TTL_S * 1000
        self._owns_client = owns_client
        self._translate = _Translate(self.url)
        # register_script only hashes the text: no round trip here. The first call runs EVALSHA
        # and loads the script if the server does not know it yet (a restarted server, for one).
        self._unlock_script = client.register_script(_UNLOCK_LUA)
        self._lock_and_load_script = client.register_script(_LOCK_AND_LOAD_LUA)
        self._commit_and_continue_script = client.register_script(_COMMIT_AND_CONTINUE_LUA)
        self._report_script = client.register_script(_REPORT_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "selflow", result_ttl: float = RESULT_TTL_S) -> "RedisStore":
        """A store on the Redis server at ``url`` (``redis://``, ``rediss://`` or ``unix://``).

        No round trip: the connection opens on first use, so an unreachable server shows up as a
        ``StorageError`` from the first call.
        """
        try:
            client = redis.Redis.from_url(url)
        except ValueError as exc:
            raise StorageError(f"bad Redis URL {redact_url(url)}: {exc}") from exc
        return cls(client, prefix=prefix, result_ttl=result_ttl, owns_client=True)

    # --- keys ---------------------------------------------------------------------------

    def key(self, kind: str, ident: str) -> str:
        """The Redis key of ``kind`` (``result``, ``flow``, ``inbox``...) for a node or flow id."""
        return f"{self.prefix}:{kind}:{ident}"

    def _decode(self, key: str, raw: Any) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise DecodeError(f"{key} in Redis at {self.url} is not JSON: {exc}", raw) from exc

    def _decode_state(self, key: str, raw: Any) -> FlowState | None:
        if raw is None:
            return None
        return FlowState.from_dict(self._decode(key, raw))

    # --- node results -------------------------------------------------------------------

    def save_result(self, node_id: str, result: Any) -> None:
        """1 round trip: ``SET result PX result_ttl``."""
        text = _dumps(result)
        with self._translate:
            self.client.set(self.key("result", node_id), text, px=self.result_ttl_ms)

    def load_result(self, node_id: str) -> Any:
        """1 round trip: ``GET``."""
        key = self.key("result", node_id)
        with self._translate:
            raw = self.client.get(key)
        return None if raw is None else self._decode(key, raw)

    def save_error(self, node_id: str, error: dict[str, Any]) -> None:
        """1 round trip: ``SET error PX result_ttl``."""
        text = _dumps(error)
        with self._translate:
            self.client.set(self.key("error", node_id), text, px=self.result_ttl_ms)

    def load_error(self, node_id: str) -> dict[str, Any] | None:
        """1 round trip: ``GET``."""
        key = self.key("error", node_id)
        with self._translate:
            raw = self.client.get(key)
        return None if raw is None else self._decode(key, raw)

    # --- flow state and inbox -----------------------------------------------------------

    def create_flow(self, state: FlowState) -> None:
        """1 round trip: ``SET flow`` (with ``PX result_ttl`` only if the state has already ended)."""
        text = _dumps(state.to_dict())
        with self._translate:
            self.client.set(self.key("flow", state.flow_id), text,
                            px=None if state.status == RUNNING else self.result_ttl_ms)

    def load_state(self, flow_id: str) -> FlowState | None:
        """1 round trip: ``GET``."""
        key = self.key("flow", flow_id)
        with self._translate:
            raw = self.client.get(key)
        return self._decode_state(key, raw)

    def push_event(self, flow_id: str, event: Event) -> None:
        """1 round trip: ``MULTI; RPUSH inbox; PEXPIRE inbox result_ttl; EXEC``.

        The inbox's TTL is renewed on every push, so it only expires once nobody has pushed to it
        for ``result_ttl``: events that arrive after a flow ended do not pile up forever.
        """
        key = self.key("inbox", flow_id)
        text = _dumps(event_to_dict(event))
        with self._translate:
            pipe = self.client.pipeline(transaction=True)
            pipe.rpush(key, text)
            pipe.pexpire(key, self.result_ttl_ms)
            pipe.execute()

    def read_events(self, flow_id: str) -> list[Event]:
        """1 round trip: ``LRANGE inbox 0 -1``."""
        key = self.key("inbox", flow_id)
        with self._translate:
            raws = self.client.lrange(key, 0, -1)
        return self._decode_events(key, raws)

    def _decode_events(self, key: str, raws: list[Any]) -> list[Event]:
        events = []
        for raw in raws:
            data = self._decode(key, raw)
            if not isinstance(data, dict):
                raise DecodeError(f"{key} in Redis at {self.url} holds an event that is not an object", data)
            events.append(event_from_dict(data))
        return events

    def has_events(self, flow_id: str) -> bool:
        """1 round trip: ``LLEN``."""
        with self._translate:
            return bool(self.client.llen(self.key("inbox", flow_id)))

    def commit(self, state: FlowState, consumed: int) -> None:
        """1 round trip: ``MULTI; SET flow; LTRIM inbox consumed -1; EXEC``.

        A state that has ended is saved with ``PX result_ttl`` and the same transaction also wakes
        ``wait_for_end`` waiters (``RPUSH end; PEXPIRE end``), as ``MemoryStore.commit`` does.
        Events pushed after the caller's ``read_events`` sit behind the consumed ones, so the trim
        keeps them.
        """
        if consumed < 0:
            raise ValueError(f"consumed must be >= 0, not {consumed}")
        text = _dumps(state.to_dict())
        ended = state.status != RUNNING
        with self._translate:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.key("flow", state.flow_id), text, px=self.result_ttl_ms if ended else None)
            if consumed:
                pipe.ltrim(self.key("inbox", state.flow_id), consumed, -1)
            if ended:
                self._queue_wake(pipe, state.flow_id)
            pipe.execute()

    # --- locking ------------------------------------------------------------------------

    def try_lock(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> bool:
        """1 round trip: ``SET lock token NX PX ttl``."""
        with self._translate:
            return bool(self.client.set(self.key("lock", flow_id), token, nx=True, px=max(1, int(ttl * 1000))))

    def unlock(self, flow_id: str, token: str) -> None:
        """1 round trip: ``EVALSHA`` of a compare-and-delete script (3 the first time a server sees it)."""
        with self._translate:
            self._unlock_script(keys=[self.key("lock", flow_id)], args=[token])

    # --- compound calls of the hot path -------------------------------------------------

    def _claim(self, flow_id: str, reply: Any) -> Claim:
        raws, raw_state = reply
        state = self._decode_state(self.key("flow", flow_id), raw_state or None)
        return Claim(state, self._decode_events(self.key("inbox", flow_id), raws))

    def lock_and_load(self, flow_id: str, token: str, ttl: float = LOCK_TTL_S) -> Claim | None:
        """1 round trip: a script that runs ``SET lock NX PX``, then ``LRANGE inbox`` and ``GET flow``."""
        with self._translate:
            reply = self._lock_and_load_script(
                keys=[self.key("lock", flow_id), self.key("flow", flow_id), self.key("inbox", flow_id)],
                args=[token, max(1, int(ttl * 1000))])
        if not reply:
            return None
        try:
            return self._claim(flow_id, reply)
        except DecodeError:
            self.unlock(flow_id, token)
            raise

    def commit_and_continue(self, state: FlowState, consumed: int, token: str, *, result: Any = NOTHING,
                            ttl: float = LOCK_TTL_S) -> Claim | None:
        """1 round trip: a script that does what ``commit`` does and keeps ``result``; then, if the
        flow runs, the token still holds the lock and the inbox is not empty, renews the lock
        (``PEXPIRE``) and returns the inbox (``LRANGE``); otherwise releases the lock.

        The state is not read back: the claim's state is ``state`` itself, which is what was just
        written.
        """
        if consumed < 0:
            raise ValueError(f"consumed must be >= 0, not {consumed}")
        text = _dumps(state.to_dict())
        result_text = "" if result is NOTHING else _dumps(result)
        flow_id = state.flow_id
        with self._translate:
            reply = self._commit_and_continue_script(
                keys=[self.key("flow", flow_id), self.key("inbox", flow_id), self.key("lock", flow_id),
                      self.key("end", flow_id), self.key("result", flow_id)],
                args=[text, "1" if state.status != RUNNING else "0", self.result_ttl_ms, consumed, token,
                      self.end_signal_ttl_ms, "0" if result is NOTHING else "1", result_text,
                      max(1, int(ttl * 1000))])
        if not reply:
            return None
        try:
            return Claim(state, self._decode_events(self.key("inbox", flow_id), reply))
        except DecodeError:
            self.unlock(flow_id, token)
            raise

    def report(self, flow_id: str, event: Event, token: str, *, result: Any = NOTHING,
               error: dict[str, Any] | None = None, check_revoked: bool = True,
               ttl: float = LOCK_TTL_S) -> Report:
        """1 round trip: a script that checks ``EXISTS revoked``, then ``SET result``/``SET error``,
        ``RPUSH inbox; PEXPIRE inbox``, ``SET lock NX PX``, and with the lock ``LRANGE inbox; GET flow``."""
        node_id = event.node_id
        result_text = "" if result is NOTHING else _dumps(result)
        error_text = "" if error is None else _dumps(error)
        with self._translate:
            reply = self._report_script(
                keys=[self.key("revoked", node_id), self.key("result", node_id), self.key("error", node_id),
                      self.key("inbox", flow_id), self.key("lock", flow_id), self.key("flow", flow_id)],
                args=["1" if check_revoked else "0", "0" if result is NOTHING else "1", result_text,
                      "0" if error is None else "1", error_text, _dumps(event_to_dict(event)), self.result_ttl_ms,
                      token, max(1, int(ttl * 1000))])
        if reply == 0:
            return Report(revoked=True)
        if reply == 1:
            return Report()
        try:
            return Report(claim=self._claim(flow_id, reply))
        except DecodeError:
            self.unlock(flow_id, token)
            raise

    # --- revocation and completion ------------------------------------------------------

    def revoke(self, node_ids: list[str]) -> None:
        """1 round trip (none for an empty list): one ``SET revoked 1 PX result_ttl`` per node, pipelined."""
        if not node_ids:
            return
        with self._translate:
            pipe = self.client.pipeline(transaction=False)
            for node_id in node_ids:
                pipe.set(self.key("revoked", node_id), _WAKE_TOKEN, px=self.result_ttl_ms)
            pipe.execute()

    def is_revoked(self, node_id: str) -> bool:
        """1 round trip: ``EXISTS``."""
        with self._translate:
            return bool(self.client.exists(self.key("revoked", node_id)))

    def _queue_wake(self, pipe: Any, flow_id: str) -> None:
        key = self.key("end", flow_id)
        pipe.rpush(key, _WAKE_TOKEN)
        pipe.pexpire(key, self.end_signal_ttl_ms)

    def announce_end(self, flow_id: str) -> None:
        """1 round trip: ``MULTI; RPUSH end; PEXPIRE end; EXEC``.

        ``commit`` of an ended state already does this; calling it again is harmless.
        """
        with self._translate:
            pipe = self.client.pipeline(transaction=True)
            self._queue_wake(pipe, flow_id)
            pipe.execute()

    def wait_for_end(self, flow_id: str, timeout: float | None) -> FlowState | None:
        """Block until the flow has ended or ``timeout`` seconds passed; return its last state.

        Round trips: one ``GET`` of the state first (a flow that already ended returns at once),
        then per wait slice (at most ``wait_slice_s``, 1 s) one ``BLPOP end`` and one ``GET``. A
        waiter woken by a token puts one back (1 round trip) so that every other waiter wakes too;
        a token that came before the state ended is dropped, and the slices cover lost tokens.
        Returns the running state (or ``None`` for an unknown flow) on timeout.

        Each BLPOP holds a pooled connection for up to one slice, which stays under half the
        client's ``socket_timeout`` when one is set (redis-py 8 reads for 5 s by default).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        key = self.key("flow", flow_id)
        end_key = self.key("end", flow_id)
        woken = False
        while True:
            with self._translate:
                raw = self.client.get(key)
            state = self._decode_state(key, raw)
            if state is not None and state.status != RUNNING:
                if woken:
                    self.announce_end(flow_id)
                return state
            if deadline is None:
                wait = self.wait_slice_s
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return state
                wait = min(remaining, self.wait_slice_s)
            # BLPOP takes a timeout in seconds with millisecond precision; 0 would mean "forever"
            wait = max(round(wait, 3), 0.001)
            try:
                with self._translate:
                    woken = self.client.blpop([end_key], timeout=wait) is not None
            except StorageError as exc:
                # the client gave up reading before the server's BLPOP timeout: take it as an empty
                # slice (the next GET reports a server that is really gone)
                if not isinstance(exc.__cause__, redis.exceptions.TimeoutError):
                    raise
                woken = False

    def close(self) -> None:
        """Disconnect the client if this store created it (``from_url``); no round trip."""
        if self._owns_client:
            with self._translate:
                self.client.close()
