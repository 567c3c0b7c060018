"""Result caches for storages (and node-state caches for flows): LRU, FIFO, LIFO, MRU and RR.

A cache maps an item id (a task id) to an item (a task result). Every cache here:

* is built with ``max_cache_size`` (Selinon's name) or ``size`` (the spelling Selinon's docs
  use), a whole number >= 0; ``0`` (the default) stores nothing, so every ``get`` misses;
* keeps at most ``max_cache_size`` items; adding a new id to a full cache evicts one item first,
  chosen by the policy below;
* ignores ``add`` of an id it already holds: the item, and its place in the eviction order, stay
  as they were (a task id's result never changes);
* raises ``CacheMissError`` from ``get`` when the id is not held;
* is safe to share between threads (one lock per cache, held only for the dictionary work).

Eviction policies, where "read" means a ``get`` that hits:

========  ====================================================================================
``LRU``   evicts the item least recently *used*: read or, if never read, added. A read moves an
          item to the safe end.
``MRU``   evicts the item most recently used (read or added).
``FIFO``  evicts the item added first. Reads change nothing.
``LIFO``  evicts the item added last (before the one being added). Reads change nothing.
``RR``    evicts an item chosen at random (``seed=`` makes the choice repeatable).
========  ====================================================================================

LRU, FIFO and RR are cachetools' ``LRUCache``, ``FIFOCache`` and ``RRCache``; cachetools 6
removed ``MRUCache``, so MRU is written here, like LIFO, as a small ``cachetools.Cache`` subclass.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any, Hashable

import cachetools

from selflow.errors import SelflowError

__all__ = ["FIFO", "LIFO", "LRU", "MRU", "RR", "Cache", "CacheMissError"]


class CacheMissError(SelflowError):
    """The cache does not hold the requested item."""

    def __init__(self, item_id: Hashable):
        super().__init__(f"item {item_id!r} is not in the cache")
        self.item_id = item_id


class Cache(ABC):
    """What a cache offers: ``add`` and ``get`` (Selinon's interface; custom caches implement it).

    ``task_name`` and ``flow_name`` say what the item belongs to; the built-in caches ignore them.
    """

    @abstractmethod
    def add(self, item_id: Hashable, item: Any, task_name: str | None = None, flow_name: str | None = None) -> None:
        """Keep ``item`` under ``item_id``, evicting another item if the cache is full."""

    @abstractmethod
    def get(self, item_id: Hashable, task_name: str | None = None, flow_name: str | None = None) -> Any:
        """Return the item kept under ``item_id``.

        Raises:
            CacheMissError: the cache does not hold ``item_id``.
        """


def _cache_size(max_cache_size: int | None, size: int | None) -> int:
    if max_cache_size is not None and size is not None and max_cache_size != size:
        raise ValueError(f"max_cache_size={max_cache_size!r} and size={size!r} disagree; give one of them")
    value = max_cache_size if max_cache_size is not None else size if size is not None else 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"max_cache_size must be a whole number >= 0, not {value!r}")
    return value


class _PolicyCache(Cache):
    """A ``cachetools.Cache`` behind a lock, with Selinon's ``add``/``get`` and size 0 = no cache."""

    def __init__(self, max_cache_size: int | None = None, *, size: int | None = None):
        self.max_cache_size = _cache_size(max_cache_size, size)
        self._items: cachetools.Cache | None = self._new_store(self.max_cache_size) if self.max_cache_size else None
        self._lock = threading.Lock()

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        raise NotImplementedError

    def add(self, item_id: Hashable, item: Any, task_name: str | None = None, flow_name: str | None = None) -> None:
        if self._items is None:
            return
        with self._lock:
            if item_id not in self._items:
                self._items[item_id] = item

    def get(self, item_id: Hashable, task_name: str | None = None, flow_name: str | None = None) -> Any:
        if self._items is None:
            raise CacheMissError(item_id)
        with self._lock:
            try:
                return self._items[item_id]
            except KeyError:
                raise CacheMissError(item_id) from None

    def remove(self, item_id: Hashable, task_name: str | None = None, flow_name: str | None = None) -> None:
        """Forget ``item_id`` if it is held (the storage pool calls this when a record is deleted)."""
        if self._items is None:
            return
        with self._lock:
            self._items.pop(item_id, None)

    def __len__(self) -> int:
        if self._items is None:
            return 0
        with self._lock:
            return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        """Whether ``item_id`` is held; unlike ``get`` this is not a read, so it changes no order."""
        if self._items is None:
            return False
        with self._lock:
            return item_id in self._items

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_cache_size={self.max_cache_size})"


class LRU(_PolicyCache):
    """Evicts the least recently used item: the one read (or, if never read, added) longest ago."""

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        return cachetools.LRUCache(maxsize)


class FIFO(_PolicyCache):
    """Evicts the item added first; reads do not change the order."""

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        return cachetools.FIFOCache(maxsize)


class RR(_PolicyCache):
    """Evicts an item chosen at random; ``seed`` makes the sequence of choices repeatable."""

    def __init__(self, max_cache_size: int | None = None, *, size: int | None = None, seed: int | None = None):
        self._random = random.Random(seed)
        super().__init__(max_cache_size, size=size)

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        return cachetools.RRCache(maxsize, choice=self._random.choice)


class _OrderedStore(cachetools.Cache):
    """A cachetools cache that keeps its keys in an order and evicts from the newest end.

    ``reads_refresh`` says whether a read moves a key to the newest end (MRU) or not (LIFO).
    cachetools calls ``popitem`` before inserting a new key, so the key being added is never
    the one evicted.
    """

    reads_refresh = False

    def __init__(self, maxsize: int):
        super().__init__(maxsize)
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def __getitem__(self, key: Hashable) -> Any:
        value = super().__getitem__(key)
        if self.reads_refresh:
            self._order.move_to_end(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        super().__setitem__(key, value)
        self._order[key] = None
        self._order.move_to_end(key)

    def __delitem__(self, key: Hashable) -> None:
        super().__delitem__(key)
        del self._order[key]

    def popitem(self) -> tuple[Hashable, Any]:
        try:
            key = next(reversed(self._order))
        except StopIteration:
            raise KeyError(f"{type(self).__name__} is empty") from None
        return key, self.pop(key)

    def clear(self) -> None:
        super().clear()
        self._order.clear()


class _LIFOStore(_OrderedStore):
    reads_refresh = False


class _MRUStore(_OrderedStore):
    reads_refresh = True


class LIFO(_PolicyCache):
    """Evicts the item added last (before the one being added); reads do not change the order."""

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        return _LIFOStore(maxsize)


class MRU(_PolicyCache):
    """Evicts the most recently used item: the one read or added last."""

    def _new_store(self, maxsize: int) -> cachetools.Cache:
        return _MRUStore(maxsize)
