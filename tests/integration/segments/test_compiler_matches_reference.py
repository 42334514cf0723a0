"""The compiled SQL returns exactly what the row-by-row reference returns, on DuckDB and chDB;
so does the bitmap-index evaluation of previews (segments/bitmaps.py) on DuckDB.

Hypothesis draws small datasets whose instants sit on window boundaries (now − N days, ±1 s)
and DSL trees mixing every condition kind with all/any/not and a nested saved segment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.segments.bitmaps import BitmapEvaluation
from siyu.segments.compiler import compile_segment, render
from siyu.segments.dsl import Condition, parse_definition
from siyu.segments.reference import Dataset, evaluate
from siyu.warehouse.clickhouse import ClickHouseWarehouse
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.member_bitmaps import rebuild_member_bitmaps
from siyu.warehouse.order_totals import (
    MemberOrderStats,
    member_order_stats,
    rebuild_order_totals,
)
from siyu.warehouse.schema import WAREHOUSE_TABLES
from tests.factories.segments import Warehouse, load

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
NAIVE_NOW = NOW.replace(tzinfo=None)
SAVED = {"vip": parse_definition({"tag": "等级:VIP"})}

INSTANTS = [
    NAIVE_NOW + timedelta(seconds=s) - timedelta(days=d)
    for d in (0, 1, 7, 30, 90, 365, 400)
    for s in (-1, 0, 1)
]
BIRTHDAYS = [
    None,
    date(2000, 2, 29),
    date(2001, 6, 18),
    date(2001, 6, 19),
    date(1990, 6, 17),
    date(1970, 1, 1),
]
STORES = ["SH001", "SH002", "BJ001", None]
TAGS = ["等级:VIP", "偏好:家居", "偏好:茶"]
CATEGORIES = ["beauty", "tea", None]


def _resolve(name: str) -> Condition:
    return SAVED[name]


# --- datasets ---------------------------------------------------------------------------------


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    member_ids = list(range(1, draw(st.integers(1, 7)) + 1))
    ids = st.sampled_from(member_ids)
    members = [
        {
            "member_id": member_id,
            "gender": draw(st.sampled_from(["F", "M", "U", None])),
            "birthday": draw(st.sampled_from(BIRTHDAYS)),
            "registered_at": draw(st.sampled_from([None, *INSTANTS])),
            "store_code": draw(st.sampled_from(STORES)),
            "channel": draw(st.sampled_from(["pos", "mini", None])),
        }
        for member_id in member_ids
    ]
    lines = []
    for number in range(draw(st.integers(0, 8))):
        owner, paid_at = draw(ids), draw(st.sampled_from(INSTANTS))
        for line_no in range(1, draw(st.integers(1, 2)) + 1):
            lines.append(
                {
                    "line_key": f"o{number}:{line_no}",
                    "order_id": f"o{number}",
                    "line_no": line_no,
                    "member_id": owner,
                    "store_code": draw(st.sampled_from(STORES)),
                    "channel": "pos",
                    "paid_at": paid_at,
                    "paid_date": (paid_at + timedelta(hours=8)).date(),
                    "amount": draw(
                        st.sampled_from(
                            [Decimal("0"), Decimal("99.90"), Decimal("1000.00"), Decimal("1500.50")]
                        )
                    ),
                    "status": draw(st.sampled_from(["paid", "paid", "paid", "refunded"])),
                    "category": draw(st.sampled_from(CATEGORIES)),
                    "sku": draw(st.sampled_from(["A", "B", None])),
                }
            )
    events = [
        {
            "event_id": f"e{number}",
            "member_id": draw(st.one_of(ids, st.none())),
            "type": draw(st.sampled_from(["page_view", "share"])),
            "occurred_at": draw(st.sampled_from(INSTANTS)),
            "properties": json.dumps(draw(_properties())),
        }
        for number in range(draw(st.integers(0, 8)))
    ]
    pairs = st.tuples(ids, st.sampled_from(TAGS))
    tags = [{"member_id": m, "tag": t} for m, t in draw(st.sets(pairs, max_size=8))]
    clusters = [{"member_id": m, "cluster": "白领妈妈"} for m in draw(st.sets(ids, max_size=3))]
    owners = [
        {
            "member_id": m,
            "owner_guide": draw(st.sampled_from(["xiaoli", "xiaowang", None])),
            "owner_store": "SH001",
        }
        for m in draw(st.sets(ids, max_size=4))
    ]
    coupons = [
        {
            "coupon_id": f"c{number}",
            "member_id": draw(ids),
            "template_code": draw(st.sampled_from(["NEW100", "BDAY"])),
            "state": draw(st.sampled_from(["available", "redeemed", "expired"])),
            "expires_at": draw(st.sampled_from([None, *INSTANTS, NAIVE_NOW + timedelta(days=2)])),
        }
        for number in range(draw(st.integers(0, 5)))
    ]
    stores = [
        {"store_code": "SH001", "name": "Jing'an", "city": "Shanghai", "region": "East"},
        {
            "store_code": "SH002",
            "name": "Xuhui",
            "city": "Shanghai",
            "region": draw(st.sampled_from(["East", None])),
        },
        {"store_code": "BJ001", "name": "Chaoyang", "city": "Beijing", "region": "North"},
    ]
    return Dataset(members, lines, events, tags, stores, owners, clusters, coupons)


def _properties() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "sku": st.sampled_from(["A", "B", ""]),
            "n": st.sampled_from([1, 2, 5, "x"]),
            "page": st.sampled_from(["home", "新品"]),
        },
    )


# --- conditions -------------------------------------------------------------------------------


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    text_ops = st.sampled_from(["eq", "ne"])
    return st.one_of(
        st.builds(
            lambda op, v: {"attr": "gender", "op": op, "value": v},
            text_ops,
            st.sampled_from(["F", "M"]),
        ),
        st.builds(
            lambda v: {"attr": "store_code", "op": "in", "value": v},
            st.lists(st.sampled_from(["SH001", "SH002"]), min_size=1, max_size=2),
        ),
        st.builds(
            lambda v: {"attr": "store_code", "op": "not_in", "value": v},
            st.lists(st.sampled_from(["SH001", "BJ001"]), min_size=1, max_size=2),
        ),
        st.sampled_from(
            [
                {"attr": "channel", "op": "exists"},
                {"attr": "channel", "op": "not_exists"},
                {"attr": "store_code", "op": "contains", "value": "SH"},
            ]
        ),
        st.builds(
            lambda op, v: {"attr": "age", "op": op, "value": v},
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
            st.sampled_from([24, 25, 26, 36, 56]),
        ),
        st.builds(
            lambda lo, span: {"attr": "age", "op": "between", "value": [lo, lo + span]},
            st.sampled_from([24, 25, 26]),
            st.integers(0, 12),
        ),
        st.builds(
            lambda v: {"attr": "age", "op": "in", "value": v},
            st.lists(st.sampled_from([24, 25, 36]), min_size=1, max_size=2),
        ),
        st.builds(
            lambda d: {"attr": "registered_at", "within_days": d}, st.sampled_from([1, 30, 365])
        ),
        st.builds(
            lambda op: {"attr": "registered_at", "op": op, "value": "2026-05-19T10:00:00+08:00"},
            st.sampled_from(["gt", "lte"]),
        ),
        st.builds(
            lambda op, v: {"attr": "region", "op": op, "value": v},
            text_ops,
            st.sampled_from(["East", "North"]),
        ),
        st.sampled_from(
            [
                {"attr": "region", "op": "not_exists"},
                {"attr": "owner_guide", "op": "eq", "value": "xiaoli"},
                {"attr": "owner_store", "op": "exists"},
            ]
        ),
        st.builds(
            lambda t, op: {"tag": t, "op": op},
            st.sampled_from(TAGS),
            st.sampled_from(["has", "not_has"]),
        ),
        _events(),
        st.builds(
            # with and without `registered`: the compiler reads the buyers alone when it is absent
            lambda op, v: {"lifecycle": op, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(
                st.sampled_from(
                    ["registered", "introduced", "growing", "mature", "silent", "churned"]
                ),
                min_size=1,
                max_size=3,
            ),
        ),
        st.builds(
            lambda op, v: {"rfm": op, "value": v},
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(
                ["important_value", "general_winback", "important_develop", "general_develop"]
            ),
        ),
        st.just({"in_group_cluster": "白领妈妈"}),
        st.builds(
            lambda c, s: {"coupon": c, "state": s},
            st.sampled_from(["*", "NEW100"]),
            st.sampled_from(["available", "redeemed", "expired"]),
        ),
        st.builds(
            lambda d: {"coupon": "*", "state": "available", "expires_within_days": d},
            st.sampled_from([1, 3]),
        ),
        st.just({"segment": "vip"}),
    )


def _events() -> st.SearchStrategy[dict[str, Any]]:
    windows = st.sampled_from([None, 1, 7, 30, 90, 365])
    measures = st.one_of(
        st.just({}),
        st.builds(
            lambda op, v: {"count": {"op": op, "value": v}},
            st.sampled_from(["gte", "eq", "lt", "ne"]),
            st.integers(0, 3),
        ),
        st.builds(
            lambda lo, hi: {"count": {"op": "between", "value": [lo, lo + hi]}},
            st.integers(0, 2),
            st.integers(0, 2),
        ),
    )
    order_where = st.lists(
        st.one_of(
            st.builds(
                lambda op, v: {"prop": "category", "op": op, "value": v},
                st.sampled_from(["in", "not_in"]),
                st.lists(st.sampled_from(["beauty", "tea"]), min_size=1, max_size=2),
            ),
            st.builds(
                lambda op, v: {"prop": "sku", "op": op, "value": v},
                st.sampled_from(["eq", "ne"]),
                st.sampled_from(["A", "B"]),
            ),
            st.builds(
                lambda op, v: {"prop": "amount", "op": op, "value": v},
                st.sampled_from(["gte", "lt"]),
                st.sampled_from([99.9, 1000]),
            ),
            st.sampled_from(
                [
                    {"prop": "category", "op": "not_exists"},
                    {"prop": "store_code", "op": "eq", "value": "SH001"},
                ]
            ),
        ),
        max_size=2,
    )
    order_measures = st.one_of(
        measures,
        st.builds(
            lambda op, v: {"sum": "amount", "op": op, "value": v},
            st.sampled_from(["gt", "lte", "eq"]),
            st.sampled_from([0, 99.9, 1000, 2000]),
        ),
        st.builds(
            lambda p, op, v: {"distinct": p, "op": op, "value": v},
            st.sampled_from(["category", "sku"]),
            st.sampled_from(["gte", "eq"]),
            st.integers(0, 2),
        ),
    )
    event_where = st.lists(
        st.one_of(
            st.builds(
                lambda op, v: {"prop": "sku", "op": op, "value": v},
                st.sampled_from(["eq", "ne", "in"]),
                st.sampled_from(["A", "B"]),
            ).map(lambda c: c if c["op"] != "in" else {**c, "value": [c["value"]]}),
            st.builds(
                lambda op, v: {"prop": "n", "op": op, "value": v},
                st.sampled_from(["gte", "lt", "eq"]),
                st.sampled_from([1, 2, 5]),
            ),
            st.sampled_from(
                [
                    {"prop": "page", "op": "contains", "value": "新"},
                    {"prop": "sku", "op": "exists"},
                    {"prop": "sku", "op": "not_exists"},
                ]
            ),
        ),
        max_size=2,
    )
    event_measures = st.one_of(
        measures,
        st.builds(
            lambda op, v: {"sum": "n", "op": op, "value": v},
            st.sampled_from(["gt", "lte"]),
            st.sampled_from([0, 2, 6]),
        ),
        st.builds(
            lambda op, v: {"distinct": "sku", "op": op, "value": v},
            st.sampled_from(["gte", "eq", "lt"]),
            st.integers(0, 2),
        ),
    )
    orders = st.builds(
        lambda w, where, m: _event("order_paid", w, where, m), windows, order_where, order_measures
    )
    others = st.builds(
        lambda t, w, where, m: _event(t, w, where, m),
        st.sampled_from(["page_view", "share"]),
        windows,
        event_where,
        event_measures,
    )
    return st.one_of(orders, others)


def _event(
    kind: str, window: int | None, where: list[dict[str, Any]], measure: dict[str, Any]
) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": kind, **measure}
    if window is not None:
        condition["within_days"] = window
    if where:
        condition["where"] = where
    return condition


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        _leaf(),
        lambda children: st.one_of(
            st.builds(lambda c: {"all": c}, st.lists(children, max_size=3)),
            st.builds(lambda c: {"any": c}, st.lists(children, max_size=3)),
            st.builds(lambda c: {"not": c}, children),
        ),
        max_leaves=6,
    )


# --- the engines ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def duckdb_warehouse() -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(":memory:")
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def chdb_warehouse() -> Iterator[ClickHouseWarehouse]:
    warehouse = ClickHouseWarehouse.in_process()
    yield warehouse
    warehouse.close()


def _reload(warehouse: Warehouse, data: Dataset, orders_table: str) -> MemberOrderStats | None:
    """Load the dataset; with `order_totals`, also the totals and the member summary (which
    lifecycle conditions then read)."""
    for table in WAREHOUSE_TABLES:
        warehouse.query(f"TRUNCATE TABLE {table}")
    load(warehouse, data)
    if orders_table != "order_totals":
        return None
    rebuild_order_totals(warehouse)
    stats = member_order_stats(warehouse)
    assert stats is not None and stats.cover(NOW.date())
    return stats


# Both sources of order totals: the materialised table (the sync keeps it) and the view.
ORDERS_TABLES = st.sampled_from(["order_totals", "orders"])


def _compiled(condition: Condition, orders_table: str, stats: MemberOrderStats | None) -> Any:
    return compile_segment(
        condition, now=NOW, resolve=_resolve, orders_table=orders_table, member_stats=stats
    )


def _members(warehouse: Warehouse, sql: str) -> list[int]:
    return sorted(row[0] for row in warehouse.query(sql))


FAST = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FAST
@given(data=datasets(), definition=conditions(), orders_table=ORDERS_TABLES)
def test_compiled_sql_on_duckdb_equals_the_reference(
    duckdb_warehouse: DuckDBWarehouse,
    data: Dataset,
    definition: dict[str, Any],
    orders_table: str,
) -> None:
    # Given a dataset in DuckDB and a segment definition
    stats = _reload(duckdb_warehouse, data, orders_table)
    condition = parse_definition(definition)
    # When the compiled query runs
    found = _members(duckdb_warehouse, render(_compiled(condition, orders_table, stats), "duckdb"))
    # Then it returns exactly the reference's members, each once
    assert found == sorted(evaluate(condition, data=data, now=NOW, resolve=_resolve))


@FAST
@given(data=datasets(), definition=conditions(), orders_table=ORDERS_TABLES)
def test_compiled_sql_on_chdb_equals_the_reference(
    chdb_warehouse: ClickHouseWarehouse,
    data: Dataset,
    definition: dict[str, Any],
    orders_table: str,
) -> None:
    stats = _reload(chdb_warehouse, data, orders_table)
    condition = parse_definition(definition)
    found = _members(
        chdb_warehouse, render(_compiled(condition, orders_table, stats), "clickhouse")
    )
    assert found == sorted(evaluate(condition, data=data, now=NOW, resolve=_resolve))


@FAST
@given(data=datasets(), definition=conditions(), orders_table=ORDERS_TABLES)
def test_bitmap_index_evaluation_on_duckdb_equals_the_reference(
    duckdb_warehouse: DuckDBWarehouse,
    data: Dataset,
    definition: dict[str, Any],
    orders_table: str,
) -> None:
    # Given a dataset in DuckDB with its member bitmap index built
    stats = _reload(duckdb_warehouse, data, orders_table)
    assert rebuild_member_bitmaps(duckdb_warehouse) is not None
    condition = parse_definition(definition)

    # When the tree is evaluated with bitmaps (SQL for the leaves the index does not answer)
    evaluation = BitmapEvaluation(
        duckdb_warehouse,
        lambda leaf: render(_compiled(leaf, orders_table, stats), "duckdb"),
        now=NOW,
        timezone=ZoneInfo("Asia/Shanghai"),
    )
    found = evaluation.members(condition)
    # Then it holds exactly the reference's members
    assert sorted(found) == sorted(evaluate(condition, data=data, now=NOW, resolve=_resolve))


def test_an_age_bound_before_1970_holds_on_chdb(chdb_warehouse: ClickHouseWarehouse) -> None:
    # Given a member born on 1970-01-01 (56 on 2026-06-18: born after 1969-06-18)
    data = Dataset(members=[{"member_id": 1, "gender": "F", "birthday": date(1970, 1, 1)}])
    _reload(chdb_warehouse, data, "orders")
    condition = parse_definition({"attr": "age", "op": "eq", "value": 56})
    # When the age test runs on ClickHouse, whose `Date` cannot hold 1969-06-18
    query = compile_segment(condition, now=NOW, resolve=_resolve)
    # Then the bound is compared as a Date32 and the member is in the segment
    assert _members(chdb_warehouse, render(query, "clickhouse")) == [1]
