"""Member profiles: incremental refresh, millisecond reads, agreement with the reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from siyu.analytics.lifecycle import lifecycle_sql
from siyu.analytics.rfm import rfm_sql
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.profiles.service import get_profile, refresh_profiles
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.sync import sync_all
from tests.factories import operational as op
from tests.factories.warehouse import seeded_brand

AS_OF = date(2026, 6, 18)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sync(siyu: Siyu) -> None:
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI)


def test_profile_of_wang_fang(siyu: Siyu) -> None:
    # given Wang Fang: a two-line tea basket at SH001, a refunded order, a cake order at SH002
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        op.order_line(session, member_id=wang.id, order_id="A", amount="30.00")
        op.order_line(session, member_id=wang.id, order_id="A", line_no=2, amount="9.00")
        op.order_line(session, member_id=wang.id, order_id="R", amount="500.00")
        op.order_line(session, member_id=wang.id, order_id="R", line_no=2, status="refunded")
        op.order_line(
            session,
            member_id=wang.id,
            order_id="B",
            amount="12.50",
            category="cake",
            store_code="SH002",
            paid_at=datetime(2026, 6, 10, 4, 0, tzinfo=UTC),
        )
        op.event(session, member_id=wang.id, event_id="s1", type="share")
        op.event(session, member_id=wang.id, event_id="i1", type="invite")
    sync(siyu)
    # when
    refresh_profiles(warehouse=siyu.warehouse)
    profile = get_profile(warehouse=siyu.warehouse, member_id=wang.id, as_of=AS_OF)
    # then
    assert profile is not None
    assert profile.as_dict() == {
        "member_id": wang.id,
        "as_of": "2026-06-18",
        "first_order_date": "2026-06-01",
        "last_order_date": "2026-06-10",
        "orders_lifetime": 2,
        "spend_lifetime": "51.50",
        "orders_365": 2,
        "spend_365": "51.50",
        "average_order_value": "25.75",
        "favourite_category": "tea",
        "favourite_store": "SH001",
        "days_since_last_order": 8,
        "lifecycle_stage": "growing",
        "rfm_class": "general_winback",
        "koc_score": 4.0,
    }


def test_refresh_recomputes_only_touched_members(siyu: Siyu) -> None:
    with transaction(siyu.session_factory) as session:
        wang = op.member(session, name="Wang Fang")
        li = op.member(session, name="Li Lei")
        op.order_line(session, member_id=wang.id, order_id="A")
    sync(siyu)
    assert refresh_profiles(warehouse=siyu.warehouse).members == 2
    # when only Li Lei buys
    with transaction(siyu.session_factory) as session:
        op.order_line(session, member_id=li.id, order_id="L")
    sync(siyu)
    result = refresh_profiles(warehouse=siyu.warehouse)
    # then only Li Lei is recomputed, and a second refresh has nothing to do
    assert result.members == 1
    assert refresh_profiles(warehouse=siyu.warehouse).members == 0
    profile = get_profile(warehouse=siyu.warehouse, member_id=li.id, as_of=AS_OF)
    assert profile is not None and profile.orders_lifetime == 1


def test_profile_follows_a_merge(siyu: Siyu) -> None:
    with transaction(siyu.session_factory) as session:
        pos = op.member(session, name="Wang Fang")
        mini = op.member(session, name="王芳")
        op.order_line(session, member_id=pos.id, order_id="P")
        op.order_line(session, member_id=mini.id, order_id="M")
    sync(siyu)
    refresh_profiles(warehouse=siyu.warehouse)
    with transaction(siyu.session_factory) as session:
        op.merge(session, merged=session.merge(mini), survivor=session.merge(pos))
    sync(siyu)
    refresh_profiles(warehouse=siyu.warehouse)
    survivor = get_profile(warehouse=siyu.warehouse, member_id=pos.id, as_of=AS_OF)
    assert survivor is not None and survivor.orders_lifetime == 2
    assert get_profile(warehouse=siyu.warehouse, member_id=mini.id, as_of=AS_OF) is None


@pytest.fixture(scope="module")
def brand() -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(":memory:")
    seeded_brand(warehouse, seed=7, members=400)
    refresh_profiles(warehouse=warehouse, full=True)
    yield warehouse
    warehouse.close()


@pytest.mark.parametrize("as_of", [AS_OF, date(2025, 9, 30), date(2024, 12, 31)])
def test_profile_stage_and_class_agree_with_the_reports(
    brand: DuckDBWarehouse, as_of: date
) -> None:
    stages = dict(brand.query(lifecycle_sql(as_of=as_of)))
    classes = dict(brand.query(f"SELECT member_id, rfm_class FROM ({rfm_sql(as_of=as_of)})"))
    for member_id in sorted(stages):
        profile = get_profile(warehouse=brand, member_id=member_id, as_of=as_of)
        assert profile is not None
        assert (profile.lifecycle_stage, profile.rfm_class) == (
            stages[member_id],
            classes.get(member_id),
        ), member_id
