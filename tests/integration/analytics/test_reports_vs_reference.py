"""The four reports agree with the simple reference implementation on seeded brands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest

from siyu.analytics.reports import (
    lifecycle_report,
    orders_table_of,
    repurchase_report,
    retention_report,
    rfm_report,
)
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.order_totals import rebuild_order_totals
from tests.factories.warehouse import seeded_brand
from tests.integration.analytics import reference as ref

AS_OF_DATES = [date(2026, 6, 18), date(2025, 12, 31), date(2025, 3, 1), date(2024, 1, 31)]


# Each seed twice: reports over the `orders` view, and over `order_totals` materialised as the
# warehouse sync keeps it (the reports read it whenever its guard says it is current).
@pytest.fixture(
    scope="module",
    params=[(seed, totals) for seed in (1, 2, 3) for totals in (False, True)],
    ids=lambda p: f"seed{p[0]}-{'order_totals' if p[1] else 'orders_view'}",
)
def brand(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[DuckDBWarehouse, dict[int, datetime | None], list]]:  # type: ignore[type-arg]
    seed, totals = request.param
    warehouse = DuckDBWarehouse(":memory:")
    members, lines = seeded_brand(warehouse, seed=seed)
    if totals:
        rebuild_order_totals(warehouse)
    assert orders_table_of(warehouse) == ("order_totals" if totals else "orders")
    yield warehouse, members, lines
    warehouse.close()


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_lifecycle_matches_reference(brand: tuple, as_of: date) -> None:  # type: ignore[type-arg]
    warehouse, members, lines = brand
    # End of the Shanghai day in naive UTC: 16:00 the same date.
    end_utc = datetime(as_of.year, as_of.month, as_of.day, 16, 0)
    expected = ref.lifecycle(members, ref.orders_of(lines, as_of), as_of, end_utc)
    assert lifecycle_report(warehouse=warehouse, as_of=as_of)["stages"] == expected


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_rfm_matches_reference(brand: tuple, as_of: date) -> None:  # type: ignore[type-arg]
    warehouse, _, lines = brand
    n, classes = ref.rfm(ref.orders_of(lines, as_of), as_of)
    report = rfm_report(warehouse=warehouse, as_of=as_of)
    assert (report["members"], report["classes"]) == (n, classes)


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_retention_matches_reference(brand: tuple, as_of: date) -> None:  # type: ignore[type-arg]
    warehouse, _, lines = brand
    expected = ref.retention(ref.orders_of(lines, as_of), as_of)
    assert retention_report(warehouse=warehouse, as_of=as_of)["cohorts"] == expected


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_repurchase_matches_reference(brand: tuple, as_of: date) -> None:  # type: ignore[type-arg]
    warehouse, _, lines = brand
    buyers, repeat = ref.repurchase(ref.orders_of(lines, as_of), as_of)
    report = repurchase_report(warehouse=warehouse, as_of=as_of)
    assert (report["buyers"], report["repeat_buyers"]) == (buyers, repeat)
    assert report["rate"] == (round(repeat / buyers, 4) if buyers else 0.0)
