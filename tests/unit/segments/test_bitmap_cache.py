"""The preview's bitmap cache: one read per key, least recently used out, a new state empty."""

from __future__ import annotations

from pyroaring import BitMap

from siyu.segments.bitmaps import BitmapCache, cache_for


class _Warehouse:
    """Any object a cache can be kept for (the DuckDB warehouse in the service)."""


def test_a_cached_key_is_read_once() -> None:
    cache, reads = BitmapCache((1, 10, 0)), list[str]()

    def read() -> BitMap:
        reads.append("women")
        return BitMap([1, 2])

    found = [cache.get("women", read) for _ in range(3)]
    assert [list(f) for f in found] == [[1, 2]] * 3 and reads == ["women"]


def test_the_least_recently_used_key_goes_first() -> None:
    cache = BitmapCache((1, 10, 0), size=2)
    cache.get("a", lambda: BitMap([1]))
    cache.get("b", lambda: BitMap([2]))
    cache.get("a", lambda: BitMap([99]))  # a is used again: b is now the oldest
    cache.get("c", lambda: BitMap([3]))
    assert list(cache.get("a", lambda: BitMap([99]))) == [1]
    assert list(cache.get("b", lambda: BitMap([42]))) == [42]  # b was dropped and read again


def test_a_new_index_state_starts_an_empty_cache() -> None:
    warehouse = _Warehouse()
    first = cache_for(warehouse, (1, 10, 0))
    first.get("women", lambda: BitMap([1]))
    assert cache_for(warehouse, (1, 10, 0)) is first
    assert cache_for(warehouse, (2, 10, 0)) is not first
