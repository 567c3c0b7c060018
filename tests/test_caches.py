"""The result caches: each policy's eviction order, size 0, the ``size`` alias, threads."""

from __future__ import annotations

import random
import threading

import pytest

from selflow.caches import FIFO, LIFO, LRU, MRU, RR, Cache, CacheMissError

POLICIES = [LRU, FIFO, LIFO, MRU, RR]

# Each row: operations on a cache of 2, or of the size given last (``+x`` adds x, ``?x`` reads x,
# which must hit), then the ids it holds afterwards, per policy.
EVICTION_TABLE = [
    # fill, then one more: who goes?
    ("+a +b +c", {"LRU": "bc", "FIFO": "bc", "LIFO": "ac", "MRU": "ac"}),
    # a read of the oldest before the third add
    ("+a +b ?a +c", {"LRU": "ac", "FIFO": "bc", "LIFO": "ac", "MRU": "bc"}),
    # a read of the newest before the third add
    ("+a +b ?b +c", {"LRU": "bc", "FIFO": "bc", "LIFO": "ac", "MRU": "ac"}),
    # adding an id already held changes nothing, not even its place
    ("+a +b +a +c", {"LRU": "bc", "FIFO": "bc", "LIFO": "ac", "MRU": "ac"}),
    # a longer run
    ("+a +b ?a +c ?c +d", {"LRU": "cd", "FIFO": "cd", "LIFO": "ad", "MRU": "bd"}),
    # reads of several items in a cache of 3: only the order of uses counts for LRU and MRU
    ("+a +b +c ?a ?b +d", {"LRU": "abd", "FIFO": "bcd", "LIFO": "abd", "MRU": "acd"}, 3),
]


def run(cache: Cache, operations: str) -> None:
    for op in operations.split():
        if op[0] == "+":
            cache.add(op[1:], op[1:].upper())
        else:
            assert cache.get(op[1:]) == op[1:].upper()


def held(cache: Cache, ids: str = "abcdef") -> str:
    return "".join(i for i in ids if i in cache)  # `in` is not a read: it changes no order


@pytest.mark.parametrize("operations, expected, size", [(*row, 2)[:3] for row in EVICTION_TABLE])
@pytest.mark.parametrize("policy", [LRU, FIFO, LIFO, MRU], ids=lambda p: p.__name__)
def test_eviction_order(policy: type, operations: str, expected: dict[str, str], size: int) -> None:
    cache = policy(max_cache_size=size)
    run(cache, operations)
    assert held(cache) == expected[policy.__name__]


def test_a_lru_read_protects_an_item_that_mru_would_drop() -> None:
    # LRU: a read refreshes; MRU: the read item is the next to go
    lru, mru = LRU(2), MRU(2)
    for cache in (lru, mru):
        run(cache, "+a +b ?a +c")
    assert held(lru) == "ac" and held(mru) == "bc"


def test_rr_evicts_some_held_item_and_a_seed_makes_it_repeatable() -> None:
    first, second = RR(3, seed=7), RR(3, seed=7)
    for cache in (first, second):
        for item in "abcdef":
            cache.add(item, item)
    assert len(first) == 3 and held(first) == held(second)
    assert "f" in first  # the item being added is never the one evicted


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.__name__)
def test_a_miss_raises_cache_miss_error(policy: type) -> None:
    cache = policy(2)
    cache.add("a", 1)
    with pytest.raises(CacheMissError) as caught:
        cache.get("b")
    assert caught.value.item_id == "b"


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.__name__)
def test_size_zero_stores_nothing(policy: type) -> None:
    for cache in (policy(), policy(0), policy(max_cache_size=0), policy(size=0)):
        cache.add("a", 1, task_name="T", flow_name="f")
        with pytest.raises(CacheMissError):
            cache.get("a", task_name="T", flow_name="f")
        assert len(cache) == 0


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.__name__)
def test_size_is_an_alias_of_max_cache_size(policy: type) -> None:
    cache = policy(size=1)
    assert cache.max_cache_size == 1
    cache.add("a", 1)
    cache.add("b", 2)
    assert len(cache) == 1
    assert policy(max_cache_size=3, size=3).max_cache_size == 3
    with pytest.raises(ValueError, match="disagree"):
        policy(max_cache_size=3, size=4)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_bad_size_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="whole number >= 0"):
        LRU(bad)  # type: ignore[arg-type]


def test_remove_forgets_an_item() -> None:
    cache = LRU(2)
    cache.add("a", 1)
    cache.remove("a")
    cache.remove("not-there")
    with pytest.raises(CacheMissError):
        cache.get("a")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.__name__)
def test_threads_sharing_a_cache(policy: type) -> None:
    # Given 8 threads hammering one small cache with adds and reads
    cache = policy(16)
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for _ in range(3000):
                key = rng.randrange(64)
                if rng.random() < 0.5:
                    cache.add(key, key * 10)
                else:
                    try:
                        assert cache.get(key) == key * 10
                    except CacheMissError:
                        pass
                assert len(cache) <= 16
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then nothing broke, the bound held, and every hit returned the right item
    assert not failures, failures
    assert 0 < len(cache) <= 16
