"""GalleryCache: version check, LRU bound, one load per key under concurrency, metrics."""

from __future__ import annotations

import threading
import time

from bio_shared.gallery_cache import GalleryCache
from bio_shared.metrics import GALLERY_CACHE


def outcome(name: str, what: str) -> float:
    return GALLERY_CACHE.labels("t", name, what)._value.get()


def test_hit_miss_and_reload_on_new_version() -> None:
    cache: GalleryCache[list[int]] = GalleryCache("versions", service="t", max_entries=4)
    loads: list[int] = []

    def loader(v: int) -> list[int]:
        loads.append(v)
        return [v]

    assert cache.get("alice", 1, lambda: loader(1)) == [1]
    assert cache.get("alice", 1, lambda: loader(99)) == [1]
    assert cache.get("alice", 2, lambda: loader(2)) == [2]
    assert loads == [1, 2]
    assert (outcome("versions", "miss"), outcome("versions", "hit"), outcome("versions", "reload")) == (1, 1, 1)
    cache.invalidate("alice")
    assert "alice" not in cache
    assert cache.get("alice", 2, lambda: loader(3)) == [3]


def test_stale_entry_refreshed_from_its_old_value() -> None:
    cache: GalleryCache[list[int]] = GalleryCache("refresh", service="t")
    assert cache.get("bob", 1, lambda: [1], lambda old: [*old, -1]) == [1]  # missing: loaded
    assert cache.get("bob", 1, lambda: [9], lambda old: [*old, -1]) == [1]  # current: cached
    assert cache.get("bob", 2, lambda: [9], lambda old: [*old, 2]) == [1, 2]  # stale: refreshed
    assert cache.get("bob", 3, lambda: [3]) == [3]  # no refresh given: loaded again
    assert outcome("refresh", "reload") == 2


def test_bounded_least_recently_used_goes_first() -> None:
    cache: GalleryCache[str] = GalleryCache("lru", service="t", max_entries=2)
    cache.get("a", 1, lambda: "a")
    cache.get("b", 1, lambda: "b")
    cache.get("a", 1, lambda: "never")  # a is now the most recent
    cache.get("c", 1, lambda: "c")
    assert len(cache) == 2 and "a" in cache and "b" not in cache and "c" in cache


def test_concurrent_lookups_of_a_missing_key_load_once() -> None:
    cache: GalleryCache[int] = GalleryCache("herd", service="t")
    calls = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.1)
        return 7

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", 5, slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [7] * 8 and len(calls) == 1
