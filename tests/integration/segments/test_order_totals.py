"""`order_totals`: the materialised `orders` view segments read, kept exact by the sync."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.identity.models import Member
from siyu.segments import service as segments_service
from siyu.segments.compiler import compile_segment, render
from siyu.segments.dsl import parse_definition
from siyu.warehouse.order_totals import order_totals_current, rebuild_order_totals
from siyu.warehouse.sync import sync_all
from tests.factories import operational as op

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
PAID = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
TOTALS = "SELECT order_id, member_id, amount, refunded, categories FROM order_totals ORDER BY 1"
VIEW = "SELECT order_id, member_id, amount, refunded, categories FROM orders ORDER BY 1"
STATS = (
    "SELECT member_id, orders_ever, last_paid_date, recent_paid_dates FROM member_order_stats "
    "ORDER BY member_id"
)
SILENT = {"lifecycle": "in", "value": ["silent"]}
SPENT_OVER_50 = {"event": "order_paid", "sum": "amount", "op": "gt", "value": 50}


def _sync(siyu: Siyu) -> None:
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI)


def _lines(
    siyu: Siyu, member_id: int, *specs: tuple[str, int, str, str], paid_at: datetime = PAID
) -> None:
    with transaction(siyu.session_factory) as session:
        for order_id, line_no, amount, status in specs:
            op.order_line(
                session,
                member_id=member_id,
                order_id=order_id,
                line_no=line_no,
                amount=amount,
                status=status,
                paid_at=paid_at,
                category="milk" if line_no == 2 else "tea",
            )


def _count(siyu: Siyu, definition: dict[str, Any]) -> int:
    return segments_service.count_members(warehouse=siyu.warehouse, definition=definition, now=NOW)


def test_sync_keeps_order_totals_equal_to_the_orders_view(siyu: Siyu) -> None:
    # Given Wang Fang's two-line order A1 synced, then a refunded line of A1 and order A2
    with transaction(siyu.session_factory) as session:
        wang_id = op.member(session).id
    _lines(siyu, wang_id, ("A1", 1, "30.00", "paid"), ("A1", 2, "25.00", "paid"))
    _sync(siyu)
    _lines(siyu, wang_id, ("A1", 3, "5.00", "refunded"), ("A2", 1, "60.00", "paid"))
    # When the next sync copies the new lines
    _sync(siyu)
    # Then the totals were re-totalled incrementally and equal the view
    assert order_totals_current(siyu.warehouse)
    assert siyu.warehouse.query(TOTALS) == siyu.warehouse.query(VIEW)
    assert [row[3] for row in siyu.warehouse.query(TOTALS)] == [True, False]


def test_order_categories_are_the_set_of_their_lines_categories(siyu: Siyu) -> None:
    # Given a three-line order: tea, milk, tea
    with transaction(siyu.session_factory) as session:
        wang_id = op.member(session).id
    _lines(siyu, wang_id, ("A1", 1, "30.00", "paid"), ("A1", 2, "5.00", "paid"))
    _lines(siyu, wang_id, ("A1", 3, "9.00", "paid"))
    # When it is synced
    _sync(siyu)
    # Then its totals row lists each category once, and a category segment finds her
    assert siyu.warehouse.query("SELECT categories FROM order_totals") == [(["milk", "tea"],)]
    milk = {"event": "order_paid", "where": [{"prop": "category", "op": "eq", "value": "milk"}]}
    assert _count(siyu, {**milk, "count": {"op": "gte", "value": 1}}) == 1


def test_sync_keeps_the_member_summary_of_paid_orders(siyu: Siyu) -> None:
    # Given Wang Fang's orders A1 (later refunded) and A2 a day later, synced in two batches
    with transaction(siyu.session_factory) as session:
        wang_id = op.member(session).id
    _lines(siyu, wang_id, ("A1", 1, "30.00", "paid"))
    _sync(siyu)
    _lines(siyu, wang_id, ("A2", 1, "60.00", "paid"), paid_at=PAID + timedelta(days=1))
    _lines(siyu, wang_id, ("A1", 3, "30.00", "refunded"))
    # When the second sync copies them
    _sync(siyu)
    # Then her summary counts A2 alone, and equals a rebuild from scratch
    incremental = siyu.warehouse.query(STATS)
    assert incremental == [(wang_id, 1, date(2026, 6, 2), [date(2026, 6, 2)])]
    rebuild_order_totals(siyu.warehouse)
    assert siyu.warehouse.query(STATS) == incremental


def test_member_summary_follows_merges(siyu: Siyu) -> None:
    # Given an order of Wang Fang and one of a duplicate record of her, both synced
    with transaction(siyu.session_factory) as session:
        wang, duplicate = op.member(session), op.member(session, name="Wang F.")
    _lines(siyu, wang.id, ("A1", 1, "30.00", "paid"))
    _lines(siyu, duplicate.id, ("B1", 1, "40.00", "paid"), paid_at=PAID + timedelta(days=3))
    _sync(siyu)
    # When OneID merges the duplicate into her and the sync follows
    with transaction(siyu.session_factory) as session:
        merged, survivor = session.get(Member, duplicate.id), session.get(Member, wang.id)
        assert merged is not None and survivor is not None
        op.merge(session, merged=merged, survivor=survivor)
    _sync(siyu)
    # Then one summary row is left, hers, with both orders
    assert siyu.warehouse.query(STATS) == [
        (wang.id, 2, date(2026, 6, 4), [date(2026, 6, 4), date(2026, 6, 1)])
    ]


def test_lifecycle_segments_read_the_member_summary_when_it_covers_the_date(siyu: Siyu) -> None:
    # Given Wang Fang's last order 100 days before now, synced
    with transaction(siyu.session_factory) as session:
        wang_id = op.member(session).id
    _lines(siyu, wang_id, ("A1", 1, "30.00", "paid"), paid_at=NOW - timedelta(days=100))
    _sync(siyu)
    # When a lifecycle segment is compiled and counted
    sources = segments_service.order_sources(siyu.warehouse)
    sql = render(
        compile_segment(
            parse_definition(SILENT),
            now=NOW,
            orders_table=sources.orders_table,
            member_stats=sources.member_stats,
        ),
        "duckdb",
    )
    # Then it reads the summary, not the orders, and finds her silent
    assert "member_order_stats" in sql and "order_totals" not in sql
    assert _count(siyu, SILENT) == 1


def test_an_order_dated_after_the_evaluation_date_sends_lifecycle_back_to_the_orders(
    siyu: Siyu,
) -> None:
    # Given Wang Fang's order 100 days before now, and one dated two days after now
    with transaction(siyu.session_factory) as session:
        wang_id = op.member(session).id
    _lines(siyu, wang_id, ("A1", 1, "30.00", "paid"), paid_at=NOW - timedelta(days=100))
    _lines(siyu, wang_id, ("A2", 1, "30.00", "paid"), paid_at=NOW + timedelta(days=2))
    _sync(siyu)
    # When she is evaluated now, which the summary (last paid in the future) cannot answer
    stats = segments_service.order_sources(siyu.warehouse).member_stats
    assert stats is not None and not stats.cover(NOW.astimezone(SHANGHAI).date())
    # Then the orders answer: the later order does not count yet, so she is still silent
    assert _count(siyu, SILENT) == 1


def test_order_totals_follow_merges(siyu: Siyu) -> None:
    # Given orders of Wang Fang and of a duplicate record of her, both synced
    with transaction(siyu.session_factory) as session:
        wang, duplicate = op.member(session), op.member(session, name="Wang F.")
    _lines(siyu, wang.id, ("A1", 1, "30.00", "paid"))
    _lines(siyu, duplicate.id, ("B1", 1, "40.00", "paid"))
    _sync(siyu)
    assert _count(siyu, SPENT_OVER_50) == 0
    # When OneID merges the duplicate into her and the sync follows
    with transaction(siyu.session_factory) as session:
        merged, survivor = session.get(Member, duplicate.id), session.get(Member, wang.id)
        assert merged is not None and survivor is not None
        op.merge(session, merged=merged, survivor=survivor)
    _sync(siyu)
    # Then both orders are hers in the totals, and she spent 70 > 50
    assert siyu.warehouse.query("SELECT DISTINCT member_id FROM order_totals") == [(wang.id,)]
    assert _count(siyu, SPENT_OVER_50) == 1


def test_lines_written_outside_the_sync_fall_back_to_the_view(sqlite_siyu: Siyu) -> None:
    # Given current totals (empty), then a line inserted straight into the warehouse
    warehouse = sqlite_siyu.warehouse
    rebuild_order_totals(warehouse)
    warehouse.query(
        "INSERT INTO members (member_id, gender) VALUES (7, 'F');"
        "INSERT INTO order_lines VALUES ('X:1', 'X', 1, 7, 'SH001', 'pos', "
        "TIMESTAMP '2026-06-01 02:00:00', DATE '2026-06-01', 80.00, 'paid', 'tea', NULL)"
    )
    # When a segment is counted
    count = _count(sqlite_siyu, SPENT_OVER_50)
    # Then the stale totals were not used: the view answers, and a rebuild makes them current
    assert (count, order_totals_current(warehouse)) == (1, False)
    rebuild_order_totals(warehouse)
    assert order_totals_current(warehouse)
    assert _count(sqlite_siyu, SPENT_OVER_50) == 1
