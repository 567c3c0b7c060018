"""Cluster-wide throttling, keyed rate limits and concurrency limits.

* ``next_start(key, interval)`` reserves the next start of ``key`` at least ``interval`` seconds
  after the one before, and returns how long to wait for it. The reservation stores the *planned*
  start, not "now + interval", so an idle period never delays the next start (Selinon's throttle
  over-delayed by up to twice the interval), and every dispatcher process shares one clock: the
  Redis server's.
* ``acquire(key, limit, holder, lease)`` takes one of ``limit`` slots; a slot is a lease that runs
  out on its own, so a worker that dies holding one does not block the others for ever.

``MemoryLimiter`` serves the embedded run, ``RedisLimiter`` distributed runs.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from selflow.errors import StorageError

if TYPE_CHECKING:
    import redis  # imported by RedisLimiter only: the embedded run (MemoryLimiter) never loads redis

#: how long a concurrency slot is held when the task has no time limit to bound it
DEFAULT_LEASE_S = 3600.0


class Limiter(ABC):
    @abstractmethod
    def next_start(self, key: str, interval: float) -> float:
        """Reserve the next start of ``key``; returns the seconds to wait for it (0 if none)."""

    @abstractmethod
    def acquire(self, key: str, limit: int, holder: str, lease: float = DEFAULT_LEASE_S) -> bool:
        """Take (or renew) ``holder``'s slot among ``limit``; False when all are taken."""

    @abstractmethod
    def release(self, key: str, holder: str) -> None:
        """Give ``holder``'s slot back (nothing happens if it holds none)."""


class MemoryLimiter(Limiter):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def next_start(self, key: str, interval: float) -> float:
        with self._lock:
            now = time.time()
            start = max(self._next.get(key, 0.0), now)
            self._next[key] = start + interval
            return start - now

    def acquire(self, key: str, limit: int, holder: str, lease: float = DEFAULT_LEASE_S) -> bool:
        with self._lock:
            now = time.time()
            slots = {h: until for h, until in self._slots.get(key, {}).items() if until > now}
            if holder not in slots and len(slots) >= limit:
                self._slots[key] = slots
                return False
            slots[holder] = now + lease
            self._slots[key] = slots
            return True

    def release(self, key: str, holder: str) -> None:
        with self._lock:
            self._slots.get(key, {}).pop(holder, None)


_NEXT_START = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(stored, now)
local next_start = start + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', next_start), 'PX', math.ceil((next_start - now) * 1000) + 60000)
return string.format('%.6f', start - now)
"""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local until_ = now + tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], until_, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 60000)
  return 1
end
return 0
"""


class RedisLimiter(Limiter):
    """Limits shared by every worker, kept in Redis and updated by one script call each."""

    def __init__(self, client: "redis.Redis[Any]", *, prefix: str = "selflow"):
        import redis

        self._errors = redis.RedisError
        self._client = client
        self._prefix = prefix
        self._next_start = client.register_script(_NEXT_START)
        self._acquire = client.register_script(_ACQUIRE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "selflow") -> "RedisLimiter":
        import redis

        return cls(redis.Redis.from_url(url), prefix=prefix)

    def next_start(self, key: str, interval: float) -> float:
        try:
            return max(float(self._next_start(keys=[f"{self._prefix}:throttle:{key}"], args=[interval])), 0.0)
        except self._errors as exc:
            raise StorageError(f"cannot reserve a start for {key} in Redis: {exc}") from exc

    def acquire(self, key: str, limit: int, holder: str, lease: float = DEFAULT_LEASE_S) -> bool:
        try:
            return bool(self._acquire(keys=[f"{self._prefix}:slots:{key}"], args=[limit, holder, lease]))
        except self._errors as exc:
            raise StorageError(f"cannot take a slot of {key} in Redis: {exc}") from exc

    def release(self, key: str, holder: str) -> None:
        try:
            self._client.zrem(f"{self._prefix}:slots:{key}", holder)
        except self._errors as exc:
            raise StorageError(f"cannot release a slot of {key} in Redis: {exc}") from exc
