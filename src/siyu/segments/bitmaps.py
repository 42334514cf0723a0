"""Segments evaluated over the member bitmap index (warehouse/member_bitmaps.py, ADR 0005).

Leaves the index answers become roaring bitmaps read from `member_bitmaps`: tests of `gender`,
`store_code` and `channel` (every operator), of `region` and `city` (through the stores they
name) and tags. `all`, `any` and `not` become intersection, union and complement against every
member. Any other leaf (behaviour, lifecycle, RFM, age, owners, coupons, saved segments…) is
compiled alone by the SQL compiler and its member ids loaded into a bitmap, so a tree mixing
both kinds needs no join of member sets in SQL.

Exactness: the bitmaps a leaf reads are chosen by applying the leaf's own SQL test (the
compiler's `value_test`) to the indexed values, NULL included, so operators and NULLs mean
what they mean in the compiled SQL; each SQL leaf is two-valued by construction (a member is
in its result or not), which is what `not` needs. The property test holds this evaluation to
the row-by-row reference, as it does the SQL.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyroaring import BitMap
from sqlglot import exp

from siyu.segments.compiler import DIMENSION_ATTRS, render, value_test
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
    """What the evaluator needs: the DuckDB warehouse (query, and ids as one array)."""

    dialect: str

    def query(self, sql: str, parameters: Any = None) -> list[tuple[Any, ...]]: ...

    def first_column(self, sql: str, parameters: Any = None) -> Any: ...


@dataclass
class BitmapEvaluation:
    """One evaluation: `sql_members(condition)` gives the SQL text selecting a leaf's member
    ids (the caller's compiler settings: instant, time zone, order sources, saved segments)."""

    warehouse: IndexedWarehouse
    sql_members: Callable[[Condition], str]
    _universe: BitMap | None = field(default=None, repr=False)

    def members(self, condition: Condition) -> BitMap:
        if isinstance(condition, AllOf):
            if not condition.all:
                return self.universe()
            parts = [self.members(child) for child in condition.all]
            return BitMap.intersection(*parts) if len(parts) > 1 else parts[0]
        if isinstance(condition, AnyOf):
            return BitMap.union(BitMap(), *[self.members(child) for child in condition.any])
        if isinstance(condition, NotOf):
            return self.universe() - self.members(condition.not_)
        read = leaf_bitmaps(condition)
        if read is None:
            return self._from_sql(condition)
        query, complement = read
        found = self._union(query)
        return self.universe() - found if complement else found

    def universe(self) -> BitMap:
        if self._universe is None:
            self._universe = self._union(_bitmaps_where(exp.column("dimension").eq(UNIVERSE)))
        return self._universe

    def _union(self, query: exp.Select) -> BitMap:
        blobs = [row[0] for row in self.warehouse.query(render(query, "duckdb"))]
        return BitMap.union(BitMap(), *(BitMap.deserialize(blob) for blob in blobs))

    def _from_sql(self, condition: Condition) -> BitMap:
        ids = self.warehouse.first_column(self.sql_members(condition))
        return bitmap_of(ids)


def bitmap_of(ids: Any) -> BitMap:
    """A bitmap of a NumPy array of member ids (through its buffer, not one int at a time)."""
    buffer = array.array("I")
    buffer.frombytes(ids.astype("uint32").tobytes())
    return BitMap(buffer)


def first_members(bitmap: BitMap, count: int) -> list[int]:
    """The `count` lowest member ids (a bitmap iterates in order)."""
    found: list[int] = []
    for member_id in bitmap:
        if len(found) == count:
            break
        found.append(member_id)
    return found


def answers_any(condition: Condition) -> bool:
    """Whether the index answers at least one leaf of the tree (else SQL alone is better)."""
    return any(leaf_bitmaps(leaf) is not None for leaf in leaves_of(condition))


def answered_by_index(definition: Condition | dict[str, Any]) -> str:
    """How a preview over a current index is evaluated: every leaf from bitmaps, or some
    leaves by SQL (a tree the index answers no leaf of is left to SQL alone)."""
    condition = parse_definition(definition) if isinstance(definition, dict) else definition
    indexed = [leaf_bitmaps(leaf) is not None for leaf in leaves_of(condition)]
    if not any(indexed):
        return "SQL"
    return "bitmap index" if all(indexed) else "bitmap index + SQL"


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


def leaf_bitmaps(condition: Condition) -> tuple[exp.Select, bool] | None:
    """The query selecting the bitmaps whose union is the leaf's members, and whether the
    leaf is their complement; None for a leaf the index does not answer."""
    if isinstance(condition, TagCondition):
        query = _bitmaps_where(
            exp.and_(
                exp.column("dimension").eq(TAG),
                exp.column("value").eq(exp.Literal.string(condition.tag)),
            )
        )
        return query, condition.op == Op.NOT_HAS
    if not isinstance(condition, AttrCondition) or condition.op is None:
        return None
    if condition.attr in INDEXED_COLUMNS:
        test = value_test(exp.column("value"), condition.op, condition.value)
        return _bitmaps_where(exp.and_(exp.column("dimension").eq(condition.attr), test)), False
    if condition.attr in STORE_DIMENSIONS:
        table, key, column, member_key = DIMENSION_ATTRS[condition.attr]
        assert member_key == "store_code"
        complement = condition.op == Op.NOT_EXISTS
        # Like the compiler: NOT_EXISTS is "not in a store whose column is set".
        op, value = (Op.EXISTS, None) if complement else (condition.op, condition.value)
        keys = exp.select(key).from_(table).where(value_test(exp.column(column), op, value))
        in_stores = exp.column("value").isin(query=keys)
        where = exp.and_(exp.column("dimension").eq(member_key), in_stores)
        return _bitmaps_where(where), complement
    return None


def _bitmaps_where(where: exp.Expr) -> exp.Select:
    return exp.select("members").from_(TABLE).where(where)
