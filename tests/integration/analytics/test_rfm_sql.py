"""RFM classes as the SQL computes them on DuckDB (DESIGN §4.5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from siyu.analytics.rfm import RfmThresholds, rfm_query, rfm_sql
from siyu.warehouse.duckdb import DuckDBWarehouse
from tests.factories.warehouse import Line, add_lines, days_before

AS_OF = date(2026, 6, 18)


@pytest.fixture
def warehouse() -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(":memory:")
    yield wh
    wh.close()


def classes(warehouse: DuckDBWarehouse, **kwargs: object) -> dict[int, str]:
    rows = warehouse.query(rfm_sql(as_of=AS_OF, **kwargs))  # type: ignore[arg-type]
    return {row[0]: row[1] for row in rows}


def order(order_id: str, member_id: int, days: int, amount: str) -> Line:
    return Line(order_id, member_id, days_before(AS_OF, days), Decimal(amount))


def test_recent_frequent_big_spender_is_important_value_and_opposite_general_winback(
    warehouse: DuckDBWarehouse,
) -> None:
    add_lines(
        warehouse,
        [
            order("A1", 1, 1, "500.00"),
            order("A2", 1, 2, "500.00"),
            order("B1", 2, 300, "10.00"),
        ],
    )
    # means: R = 150.5, F = 1.5, M = 505
    assert classes(warehouse) == {1: "important_value", 2: "general_winback"}


def test_value_equal_to_mean_is_not_high(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, [order("A", 1, 10, "0.10"), order("B", 2, 10, "0.10")])
    assert classes(warehouse) == {1: "general_winback", 2: "general_winback"}


def test_order_365_days_ago_is_outside_the_window(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, [order("A", 1, 364, "10.00"), order("B", 2, 365, "10.00")])
    assert set(classes(warehouse)) == {1}


def test_refunded_order_counts_nowhere(warehouse: DuckDBWarehouse) -> None:
    add_lines(
        warehouse,
        [
            order("A", 1, 5, "100.00"),
            Line("A", 1, days_before(AS_OF, 5), Decimal("0"), line_no=2, status="refunded"),
            order("B", 2, 5, "10.00"),
        ],
    )
    assert classes(warehouse) == {2: "general_winback"}


def test_all_eight_classes_are_reachable_with_fixed_cuts(warehouse: DuckDBWarehouse) -> None:
    # (days since last order, orders, spend) per member 0..7, in the class order of §4.5.
    profiles = [(1, 2, "90"), (1, 1, "90"), (50, 2, "90"), (50, 1, "90")]
    profiles += [(1, 2, "10"), (1, 1, "10"), (50, 2, "10"), (50, 1, "10")]
    lines = []
    for i, (r, f, m) in enumerate(profiles):
        lines += [order(f"o{i}-{k}", i, r + k, str(Decimal(m) / f)) for k in range(f)]
    add_lines(warehouse, lines)
    thresholds = RfmThresholds(r_cut=30, f_cut=1, m_cut=Decimal("50"))
    assert classes(warehouse, thresholds=thresholds) == {
        0: "important_value",
        1: "important_develop",
        2: "important_retain",
        3: "important_winback",
        4: "general_value",
        5: "general_develop",
        6: "general_retain",
        7: "general_winback",
    }


def test_query_transpiles_to_clickhouse() -> None:
    assert "DATE_DIFF(DAY" in rfm_query(as_of=AS_OF).sql(dialect="clickhouse")
