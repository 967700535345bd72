"""A per-process gallery cache with a version check.

Galleries (enrolled templates or embeddings of an owner) are costly to load and change rarely. Each
entry is stored with the version the caller read from the database (a counter or a timestamp bumped by
every write); a lookup with a different version reloads. Bounded by entry count (least recently used
goes first), thread-safe, and one load per key at a time (concurrent lookups of a missing key wait for
the first loader instead of loading it again). A stale entry can be brought up to date from its old
value (``refresh``) instead of loaded again, e.g. by reading only the rows added since.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from bio_shared.metrics import GALLERY_CACHE

V = TypeVar("V")


class GalleryCache(Generic[V]):
    def __init__(self, name: str, *, service: str = "", max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.name = name
        self.service = service
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int | str, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def _count(self, outcome: str) -> None:
        GALLERY_CACHE.labels(self.service, self.name, outcome).inc()

    def _cached(self, key: str, version: int | str) -> tuple[bool, V | None, bool]:
        """(hit, value, stale) under the cache lock; a stale entry comes with its old value."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None, False
            if entry[0] != version:
                return False, entry[1], True
            self._entries.move_to_end(key)
            return True, entry[1], False

    def get(self, key: str, version: int | str, load: Callable[[], V],
            refresh: Callable[[V], V] | None = None) -> V:
        """The value of ``key`` at ``version``: cached, else ``refresh(old value)`` when the entry is
        stale and ``refresh`` is given, else ``load()``."""
        hit, value, _ = self._cached(key, version)
        if hit:
            self._count("hit")
            return value  # type: ignore[return-value]  # a hit holds a V
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            hit, value, stale = self._cached(key, version)  # another thread may have loaded it meanwhile
            if hit:
                self._count("hit")
                return value  # type: ignore[return-value]
            self._count("reload" if stale else "miss")
            loaded = refresh(value) if stale and refresh is not None else load()  # type: ignore[arg-type]  # stale: a V
            self.put(key, version, loaded)
            return loaded

    def peek(self, key: str) -> tuple[int | str, V] | None:
        """The cached ``(version, value)`` whatever its version (a loader that updates an old value in
        place, e.g. an index caught up to the new version, starts from it); not counted, not reordered."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, version: int | str, value: V) -> None:
        """Store a value the caller brought to ``version`` itself (e.g. by applying its own committed change)."""
        with self._lock:
            self._entries[key] = (version, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._key_locks.pop(evicted, None)

    def items(self) -> list[tuple[str, int | str, V]]:
        """A snapshot of ``(key, version, value)`` (maintenance over every cached value)."""
        with self._lock:
            return [(k, version, value) for k, (version, value) in self._entries.items()]

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries
