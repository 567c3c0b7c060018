"""The limiter contract, on memory and on the real Redis: throttling and concurrency slots."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Iterator

import pytest
import redis

from selflow.runtime.limits import Limiter, MemoryLimiter, RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        import os
        if os.environ.get("CI"):
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    yield RedisLimiter(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_starts_are_spaced_by_the_interval(limiter: Limiter) -> None:
    # Given nothing started yet, when three starts are reserved at once
    waits = [limiter.next_start("Fetch", 0.5) for _ in range(3)]
    # Then the first goes now and the others are planned 0.5 s apart
    assert waits[0] == pytest.approx(0, abs=0.05)
    assert waits[1] == pytest.approx(0.5, abs=0.05)
    assert waits[2] == pytest.approx(1.0, abs=0.05)


def test_an_idle_period_does_not_delay_the_next_start(limiter: Limiter) -> None:
    # Given one start, and then more than the interval of quiet
    limiter.next_start("Fetch", 0.2)
    time.sleep(0.3)
    # When the next start is reserved, then it may go at once (Selinon would have waited again)
    assert limiter.next_start("Fetch", 0.2) == pytest.approx(0, abs=0.05)


def test_keys_are_throttled_independently(limiter: Limiter) -> None:
    limiter.next_start("Charge:customer-1", 10)
    assert limiter.next_start("Charge:customer-2", 10) == pytest.approx(0, abs=0.05)
    assert limiter.next_start("Charge:customer-1", 10) == pytest.approx(10, abs=0.1)


def test_concurrency_slots_are_limited_renewable_and_released(limiter: Limiter) -> None:
    # Given a limit of two slots taken by a and b
    assert limiter.acquire("Charge", 2, "a")
    assert limiter.acquire("Charge", 2, "b")
    # Then c waits, a holder may renew its slot, and a release lets c in
    assert not limiter.acquire("Charge", 2, "c")
    assert limiter.acquire("Charge", 2, "a")
    limiter.release("Charge", "a")
    assert limiter.acquire("Charge", 2, "c")


def test_a_slot_whose_lease_ran_out_is_free_again(limiter: Limiter) -> None:
    assert limiter.acquire("Charge", 1, "dead-worker", lease=0.2)
    assert not limiter.acquire("Charge", 1, "next")
    time.sleep(0.3)
    assert limiter.acquire("Charge", 1, "next")


def test_many_threads_never_hold_more_slots_than_the_limit(limiter: Limiter) -> None:
    # Given 8 threads competing for 3 slots, each holding one briefly
    holding, peak, lock = [0], [0], threading.Lock()

    def work(name: str) -> None:
        done = 0
        while done < 5:
            if limiter.acquire("Scrape", 3, f"{name}-{done}"):
                with lock:
                    holding[0] += 1
                    peak[0] = max(peak[0], holding[0])
                time.sleep(0.005)
                with lock:
                    holding[0] -= 1
                limiter.release("Scrape", f"{name}-{done}")
                done += 1

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then at no time were more than 3 held
    assert 0 < peak[0] <= 3
