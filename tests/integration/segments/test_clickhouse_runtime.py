"""Segments on ClickHouse at runtime: SIYU_WAREHOUSE_URL=chdb://… (ADR 0003), tested on chDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from siyu.segments import refresh
from siyu.segments import service as segment_service
from siyu.warehouse.clickhouse import ClickHouseWarehouse, export_to_clickhouse
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.order_totals import order_totals_current
from siyu.warehouse.sync import sync_all
from tests.factories import operational as op

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
BIG_SPENDERS = {"event": "order_paid", "within_days": 365, "sum": "amount", "op": "gt", "value": 50}
WOMEN_WHO_SPENT = {"all": [{"attr": "gender", "op": "eq", "value": "F"}, BIG_SPENDERS]}


@pytest.fixture
def chdb_siyu(tmp_path: Path) -> Iterator[Siyu]:
    settings = Settings(environment="test", data_dir=tmp_path / "data", warehouse_url="chdb://")
    siyu = bootstrap(settings, clock=FixedClock(NOW))
    yield siyu
    siyu.close()


def _demo_tea(siyu: Siyu) -> dict[str, int]:
    """Wang Fang spent 60 + 30 this year; Li Na 40; Zhang Wei (M) 120."""
    ids: dict[str, int] = {}
    with transaction(siyu.session_factory) as session:
        for name, amounts in (("Wang Fang", ["60.00", "30.00"]), ("Li Na", ["40.00"])):
            ids[name] = op.member(session, name=name).id
            for n, amount in enumerate(amounts):
                op.order_line(
                    session,
                    member_id=ids[name],
                    order_id=f"{name}-{n}",
                    amount=amount,
                    paid_at=NOW - timedelta(days=10),
                )
        zhang = op.member(session, name="Zhang Wei")
        zhang.gender, ids["Zhang Wei"] = "M", zhang.id
        op.order_line(session, member_id=zhang.id, order_id="Z1", amount="120.00", paid_at=NOW)
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    return ids


def _load(siyu: Siyu, tmp: Path) -> dict[str, int]:
    target = siyu.segment_warehouse
    assert isinstance(target, ClickHouseWarehouse)
    return export_to_clickhouse(source=siyu.warehouse, target=target, scratch=tmp / "export")


def test_a_chdb_warehouse_url_puts_segments_on_clickhouse_and_keeps_duckdb_for_the_sync(
    chdb_siyu: Siyu,
) -> None:
    assert isinstance(chdb_siyu.segment_warehouse, ClickHouseWarehouse)
    assert isinstance(chdb_siyu.warehouse, DuckDBWarehouse)
    assert chdb_siyu.warehouse.path.endswith("data/warehouse.duckdb")


def test_without_clickhouse_segments_use_the_duckdb_warehouse(sqlite_siyu: Siyu) -> None:
    assert sqlite_siyu.segment_warehouse is sqlite_siyu.warehouse


def test_export_copies_every_table_and_order_totals_stay_current(
    chdb_siyu: Siyu, tmp_path: Path
) -> None:
    # Given Demo Tea synced into DuckDB
    _demo_tea(chdb_siyu)
    # When the warehouse is exported to ClickHouse
    copied = _load(chdb_siyu, tmp_path)
    # Then rows arrive table by table, and the order totals are usable there
    assert (copied["members"], copied["order_lines"], copied["order_totals"]) == (3, 4, 4)
    assert order_totals_current(chdb_siyu.segment_warehouse)


def test_preview_on_clickhouse_equals_duckdb(chdb_siyu: Siyu, tmp_path: Path) -> None:
    ids = _demo_tea(chdb_siyu)
    _load(chdb_siyu, tmp_path)

    def preview(warehouse: Any) -> tuple[int, list[int]]:
        result = segment_service.preview_segment(
            warehouse=warehouse, definition=WOMEN_WHO_SPENT, now=NOW
        )
        return result.count, [member.member_id for member in result.sample]

    assert preview(chdb_siyu.segment_warehouse) == (1, [ids["Wang Fang"]])
    assert preview(chdb_siyu.warehouse) == preview(chdb_siyu.segment_warehouse)


def test_refresh_snapshots_through_clickhouse(chdb_siyu: Siyu, tmp_path: Path) -> None:
    ids = _demo_tea(chdb_siyu)
    _load(chdb_siyu, tmp_path)
    with transaction(chdb_siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name="big spenders", definition=BIG_SPENDERS, now=NOW, owner="xiao.li"
        )
    result = refresh.refresh_segment(
        session_factory=chdb_siyu.session_factory,
        warehouse=chdb_siyu.segment_warehouse,
        name="big spenders",
        now=NOW,
    )
    # Wang Fang spent 90 and Zhang Wei 120 (> 50); Li Na 40
    assert (result.refreshed, result.member_count) == (True, 2)
    assert sorted(result.entered) == sorted([ids["Wang Fang"], ids["Zhang Wei"]])
