"""Segments evaluated over the member bitmap index (warehouse/member_bitmaps.py, ADR 0005).

Leaves the index answers become roaring bitmaps read from `member_bitmaps`: tests of `gender`,
`store_code`, `channel`, `birthday` and `age` (every operator), of `region` and `city`
(through the stores they name) and tags. `all`, `any` and `not` become intersection, union
and complement against every member. Any other leaf (behaviour, lifecycle, RFM, owners,
coupons, saved segments…) is compiled alone by the SQL compiler and its member ids loaded into
a bitmap (`answered_by_index` says when such a mix beats one SQL query).

The bitmaps a leaf reads are cached per state of the index (`BitmapCache`).

Exactness: the bitmaps a leaf reads are chosen by applying the leaf's own SQL test (the
compiler's `value_test` / `attribute_test`) to the indexed values, NULL included, so operators
and NULLs mean what they mean in the compiled SQL; each SQL leaf is two-valued by construction
(a member is in its result or not), which is what `not` needs. The property test holds this
evaluation to the row-by-row reference, as it does the SQL.
"""

from __future__ import annotations

import array
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from pyroaring import BitMap, FrozenBitMap
from sqlglot import exp

from siyu.segments.compiler import DIMENSION_ATTRS, attribute_test, render, value_test
from siyu.segments.dsl import (
    AllOf,
    AnyOf,
    AttrCondition,
    Condition,
    NotOf,
    Op,
    TagCondition,
    parse_definition,
)
from siyu.warehouse.member_bitmaps import INDEXED_COLUMNS, TABLE, TAG, UNIVERSE

STORE_DIMENSIONS = ("region", "city")  # answered through the store codes they select


class IndexedWarehouse(Protocol):
    """What the evaluator needs: the DuckDB warehouse (query, ids as one array, and its
    connection for the index guard)."""

    dialect: str

    @property
    def connection(self) -> Any: ...

    def query(self, sql: str, parameters: Any = None) -> list[tuple[Any, ...]]: ...

    def first_column(self, sql: str, parameters: Any = None) -> Any: ...


class BitmapCache:
    """Bitmaps read from one state of the index (its guard values), kept across previews:
    reading a multi-megabyte bitmap out of DuckDB takes ~10 ms, and an operator editing a
    segment re-previews the same leaves. Keys are a leaf (its JSON and the evaluation date) or
    one indexed value; never a leaf that reads another table (region and city read `stores`,
    which every sync replaces: their store codes are looked up each time, the bitmaps of the
    codes are cached). Least recently used out beyond `size`. Cached bitmaps are frozen:
    evaluations combine them into new ones, never change them."""

    def __init__(self, state: tuple[int, ...], size: int = 64) -> None:
        self.state = state
        self.size = size
        self._bitmaps: OrderedDict[Hashable, FrozenBitMap] = OrderedDict()
        self._lock = threading.Lock()  # the API previews from a thread pool

    def get(self, key: Hashable, read: Callable[[], BitMap]) -> FrozenBitMap:
        with self._lock:
            found = self._bitmaps.get(key)
            if found is not None:
                self._bitmaps.move_to_end(key)
                return found
        found = FrozenBitMap(read())  # outside the lock: a slow read must not stall the others
        with self._lock:
            self._bitmaps[key] = found
            while len(self._bitmaps) > self.size:
                self._bitmaps.popitem(last=False)
        return found


_caches: WeakKeyDictionary[Any, BitmapCache] = WeakKeyDictionary()


def cache_for(warehouse: Any, state: tuple[int, ...]) -> BitmapCache:
    """The warehouse's cache for this index state (a new, empty one when the state moved)."""
    cache = _caches.get(warehouse)
    if cache is None or cache.state != state:
        cache = _caches[warehouse] = BitmapCache(state)
    return cache


@dataclass
class BitmapEvaluation:
    """One evaluation: `sql_members(condition)` gives the SQL text selecting a leaf's member
    ids (the caller's compiler settings: instant, time zone, order sources, saved segments)."""

    warehouse: IndexedWarehouse
    sql_members: Callable[[Condition], str]
    now: datetime
    timezone: ZoneInfo
    cache: BitmapCache | None = None

    def members(self, condition: Condition) -> BitMap | FrozenBitMap:
        """The condition's members. Read-only: it may be a cached bitmap itself (operands are
        never changed here, every combination builds a new bitmap)."""
        if isinstance(condition, AllOf):
            if not condition.all:
                return self.universe()
            return BitMap.intersection(BitMap(self.universe()), *map(self.members, condition.all))
        if isinstance(condition, AnyOf):
            return BitMap.union(BitMap(), *map(self.members, condition.any))
        if isinstance(condition, NotOf):
            return BitMap(self.universe()) - self.members(condition.not_)
        if not is_indexed(condition):
            return self._from_sql(condition)
        found, complement = self._leaf(condition)
        return BitMap(self.universe()) - found if complement else found

    def universe(self) -> BitMap | FrozenBitMap:
        return self._value(UNIVERSE, "")

    def _leaf(self, condition: Condition) -> tuple[BitMap | FrozenBitMap, bool]:
        if isinstance(condition, AttrCondition) and condition.attr in STORE_DIMENSIONS:
            query, complement = store_codes(condition)
            codes = [row[0] for row in self.warehouse.query(render(query, "duckdb"))]
            found = BitMap.union(BitMap(), *(self._value("store_code", code) for code in codes))
            return found, complement

        def read() -> BitMap:  # only on a cache miss: building the query costs ~1-2 ms
            found = leaf_bitmaps(condition, now=self.now, timezone=self.timezone)
            assert found is not None  # is_indexed said so
            return self._union(render(found[0], "duckdb"), [])

        as_of = self.now.astimezone(self.timezone).date()  # an age depends on it
        complement = isinstance(condition, TagCondition) and condition.op == Op.NOT_HAS
        return self._cached(("leaf", condition.model_dump_json(), as_of), read), complement

    def _value(self, dimension: str, value: str) -> BitMap | FrozenBitMap:
        sql = f"SELECT members FROM {TABLE} WHERE dimension = ? AND value = ?"
        return self._cached(
            ("value", dimension, value), lambda: self._union(sql, [dimension, value])
        )

    def _cached(self, key: Hashable, read: Callable[[], BitMap]) -> BitMap | FrozenBitMap:
        return read() if self.cache is None else self.cache.get(key, read)

    def _union(self, sql: str, parameters: list[Any]) -> BitMap:
        blobs = [row[0] for row in self.warehouse.query(sql, parameters)]
        return BitMap.union(BitMap(), *(BitMap.deserialize(blob) for blob in blobs))

    def _from_sql(self, condition: Condition) -> BitMap:
        ids = self.warehouse.first_column(self.sql_members(condition))
        return bitmap_of(ids)


def bitmap_of(ids: Any) -> BitMap:
    """A bitmap of a NumPy array of member ids (through its buffer, not one int at a time)."""
    buffer = array.array("I")
    buffer.frombytes(ids.astype("uint32").tobytes())
    return BitMap(buffer)


def first_members(bitmap: BitMap | FrozenBitMap, count: int) -> list[int]:
    """The `count` lowest member ids (a bitmap iterates in order)."""
    found: list[int] = []
    for member_id in bitmap:
        if len(found) == count:
            break
        found.append(member_id)
    return found


def answered_by_index(definition: Condition | dict[str, Any]) -> str:
    """How a preview is evaluated when the index is current: "bitmap index" (every leaf
    indexed), "bitmap index + SQL", or "SQL".

    Measured at 10M members (ADR 0005): a tree whose leaves are all indexed is 2-50× faster
    from bitmaps; a tree that only ANDs indexed leaves with SQL ones is faster as one SQL
    query (the indexed tests are cheap filters on the members scan there, while loading the
    SQL leaf's millions of ids into a bitmap is not), so it stays SQL; an `any` that mixes an
    indexed subtree with a SQL one costs SQL two mark joins over millions of members, and is
    faster combined as bitmaps."""
    condition = parse_definition(definition) if isinstance(definition, dict) else definition
    indexed = [is_indexed(leaf) for leaf in leaves_of(condition)]
    if all(indexed):
        return "bitmap index"
    if any(indexed) and _mixed_any(condition):
        return "bitmap index + SQL"
    return "SQL"


def _mixed_any(condition: Condition) -> bool:
    """Whether some `any` has a child answered by the index alone beside one that is not."""
    if isinstance(condition, AnyOf):
        alone = [all(map(is_indexed, leaves_of(child))) for child in condition.any]
        if any(alone) and not all(alone):
            return True
    children: list[Condition] = []
    if isinstance(condition, AllOf | AnyOf):
        children = list(condition.all if isinstance(condition, AllOf) else condition.any)
    elif isinstance(condition, NotOf):
        children = [condition.not_]
    return any(_mixed_any(child) for child in children)


def leaves_of(condition: Condition) -> Iterable[Condition]:
    """The leaves of a condition tree, left to right (saved segments are leaves here)."""
    if isinstance(condition, AllOf):
        for child in condition.all:
            yield from leaves_of(child)
    elif isinstance(condition, AnyOf):
        for child in condition.any:
            yield from leaves_of(child)
    elif isinstance(condition, NotOf):
        yield from leaves_of(condition.not_)
    else:
        yield condition


def is_indexed(condition: Condition) -> bool:
    """Whether the index answers this leaf (through `leaf_bitmaps`, or `store_codes` for a
    region or city)."""
    if isinstance(condition, TagCondition):
        return True
    return (
        isinstance(condition, AttrCondition)
        and condition.op is not None
        and condition.attr in (*INDEXED_COLUMNS, *STORE_DIMENSIONS, "age")
    )


def leaf_bitmaps(
    condition: Condition, *, now: datetime, timezone: ZoneInfo
) -> tuple[exp.Select, bool] | None:
    """The query selecting the bitmaps whose union is the leaf's members, and whether the
    leaf is their complement; None for a leaf the index does not answer this way (region and
    city: `store_codes`). `now` and `timezone` fix the date an age is counted on."""
    if not is_indexed(condition):
        return None
    if isinstance(condition, TagCondition):
        query = _bitmaps_where(
            exp.and_(
                exp.column("dimension").eq(TAG),
                exp.column("value").eq(exp.Literal.string(condition.tag)),
            )
        )
        return query, condition.op == Op.NOT_HAS
    assert isinstance(condition, AttrCondition) and condition.op is not None
    if condition.attr in ("birthday", "age"):
        # The leaf's own test over `m.birthday`, applied to the indexed birthdays instead.
        test = attribute_test(condition, now=now, timezone=timezone).transform(_indexed_birthday)
        where = exp.and_(exp.column("dimension").eq("birthday"), test)
        return _bitmaps_where(where), False
    if condition.attr in STORE_DIMENSIONS:
        return None  # through `store_codes`: the stores table is read each time
    test = value_test(exp.column("value"), condition.op, condition.value)
    return _bitmaps_where(exp.and_(exp.column("dimension").eq(condition.attr), test)), False


def store_codes(condition: AttrCondition) -> tuple[exp.Select, bool]:
    """For a region or city leaf: the query of the store codes whose members it holds, and
    whether the leaf is their complement (like the compiler, `not_exists` is "not in a store
    whose region is set")."""
    table, key, column, member_key = DIMENSION_ATTRS[condition.attr]
    assert member_key == "store_code" and condition.op is not None
    complement = condition.op == Op.NOT_EXISTS
    op, value = (Op.EXISTS, None) if complement else (condition.op, condition.value)
    return exp.select(key).from_(table).where(value_test(exp.column(column), op, value)), complement


def _indexed_birthday(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Column) and node.name == "birthday":
        return exp.cast(exp.column("value"), exp.DataType.build("DATE"))
    return node


def _bitmaps_where(where: exp.Expr) -> exp.Select:
    return exp.select("members").from_(TABLE).where(where)
