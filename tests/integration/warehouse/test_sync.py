"""The warehouse sync: incremental, restartable, follows OneID merges (issue #3, DESIGN §3)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.identity.models import Member
from siyu.warehouse import sync as sync_module
from siyu.warehouse.sync import SyncResult, read_watermark, sync_all
from tests.factories import operational as op

SHANGHAI = ZoneInfo("Asia/Shanghai")


def run_sync(siyu: Siyu, **kwargs: Any) -> SyncResult:
    return sync_all(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI, **kwargs
    )


def test_order_lines_are_copied_with_business_date(siyu: Siyu) -> None:
    # given Wang Fang paid at 23:30 Shanghai on 2026-06-01 (15:30 UTC)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        op.order_line(
            session,
            member_id=wang.id,
            order_id="A1",
            paid_at=datetime(2026, 6, 1, 15, 30, tzinfo=UTC),
        )
        op.order_line(
            session,
            member_id=wang.id,
            order_id="A2",
            paid_at=datetime(2026, 6, 1, 16, 30, tzinfo=UTC),
        )
    # when
    result = run_sync(siyu)
    # then
    assert result.order_lines == 2
    assert siyu.warehouse.query(
        "SELECT order_id, member_id, paid_date, amount FROM order_lines ORDER BY order_id"
    ) == [
        ("A1", wang.id, date(2026, 6, 1), Decimal("39.00")),
        ("A2", wang.id, date(2026, 6, 2), Decimal("39.00")),
    ]


def test_any_text_and_amount_survive_the_copy_out_of_the_store(siyu: Siyu) -> None:
    # given lines whose texts hold commas, quotes, line breaks, CJK, an empty string and NULL
    awkward = ['tea, "oolong"', "line\nbreak", "茶\u001f叶", ""]
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        for number, text in enumerate(awkward):
            line = op.order_line(
                session, member_id=wang.id, order_id=f"T{number}", amount="1234567.89"
            )
            line.category, line.sku = text, None
    # when
    run_sync(siyu)
    # then every value arrives exactly, NULL stays NULL and the empty string stays empty
    assert siyu.warehouse.query(
        "SELECT category, sku, amount FROM order_lines ORDER BY order_id"
    ) == [(text, None, Decimal("1234567.89")) for text in awkward]


def test_business_dates_follow_a_daylight_saving_change(siyu: Siyu) -> None:
    # given a brand in New York, where clocks went back at 06:00 UTC on 2026-11-01
    new_york = ZoneInfo("America/New_York")
    instants = [
        datetime(2026, 11, 1, 3, 59, tzinfo=UTC),  # 23:59 EDT on Oct 31
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC),  # 00:00 EDT on Nov 1
        datetime(2026, 11, 2, 4, 30, tzinfo=UTC),  # 23:30 EST on Nov 1
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),  # 00:00 EST on Nov 2
    ]
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        for number, instant in enumerate(instants):
            op.order_line(session, member_id=wang.id, order_id=f"N{number}", paid_at=instant)
    # when
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=new_york)
    # then each line's business date is its New York calendar day
    assert siyu.warehouse.query("SELECT paid_date FROM order_lines ORDER BY order_id") == [
        (date(2026, 10, 31),),
        (date(2026, 11, 1),),
        (date(2026, 11, 1),),
        (date(2026, 11, 2),),
    ]


def test_an_hour_with_a_clock_change_inside_gets_dates_line_by_line() -> None:
    # given Lord Howe Island, whose clocks move half an hour at 15:30 UTC on 2026-10-03
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    connection = duckdb.connect()
    connection.execute("CREATE TABLE _staged_lines (paid_at TIMESTAMP)")
    connection.execute(
        "INSERT INTO _staged_lines VALUES ('2026-10-03 15:10:00'), ('2026-10-03 15:50:00'), "
        "('2026-10-03 16:10:00')"
    )
    # when
    zone = sync_module._zone_table(connection, lord_howe)
    # then the hour with the change has no single offset, only each instant's own date
    rows = sorted(zone.to_pylist(), key=lambda row: (row["hour"], row["instant"] or row["hour"]))
    assert [(r["instant"] is None, r["offset_seconds"]) for r in rows] == [
        (False, None),
        (False, None),
        (True, 11 * 3600),
    ]
    assert [r["paid_date"] for r in rows[:2]] == [date(2026, 10, 4), date(2026, 10, 4)]


def test_second_run_copies_only_new_rows(siyu: Siyu) -> None:
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        op.order_line(session, member_id=wang.id, order_id="A1")
    run_sync(siyu)
    with transaction(siyu.session_factory) as session:
        op.order_line(session, member_id=wang.id, order_id="A2")
        op.event(session, member_id=wang.id, event_id="e1")

    result = run_sync(siyu)

    assert (result.order_lines, result.events) == (1, 1)
    assert siyu.warehouse.query("SELECT count(*) FROM order_lines") == [(2,)]
    assert siyu.warehouse.query("SELECT event_id, member_id, properties FROM events") == [
        ("e1", wang.id, '{"page": "首页"}')
    ]


def test_crash_mid_sync_then_restart_copies_nothing_twice(
    siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given five order lines copied in batches of two, and a crash while writing the 2nd batch
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        lines = [op.order_line(session, member_id=wang.id, order_id=f"A{i}") for i in range(5)]
    real_insert = sync_module._Run._insert_arrow
    calls = {"order_lines": 0}

    def crashing_insert(self: Any, connection: Any, table: str, batch: Any, verb: str) -> None:
        real_insert(self, connection, table, batch, verb)
        if table == "order_lines":
            calls["order_lines"] += 1
            if calls["order_lines"] == 2:
                raise RuntimeError("power cut")

    monkeypatch.setattr(sync_module._Run, "_insert_arrow", crashing_insert)
    with pytest.raises(RuntimeError, match="power cut"):
        run_sync(siyu, batch_size=2)
    # then the first batch and its watermark survived, the second rolled back
    assert siyu.warehouse.query("SELECT count(*) FROM order_lines") == [(2,)]
    assert read_watermark(siyu.warehouse, "order_lines") == lines[1].id

    # when the sync restarts
    monkeypatch.setattr(sync_module._Run, "_insert_arrow", real_insert)
    result = run_sync(siyu, batch_size=2)

    # then the remaining three are copied exactly once
    assert result.order_lines == 3
    assert siyu.warehouse.query("SELECT count(*), count(DISTINCT line_key) FROM order_lines") == [
        (5, 5)
    ]
    assert read_watermark(siyu.warehouse, "order_lines") == lines[-1].id


def test_merge_moves_synced_orders_and_events_to_the_survivor(siyu: Siyu) -> None:
    # given two records of Wang Fang, synced separately
    with transaction(siyu.session_factory) as session:
        pos = op.member(session, name="Wang Fang")
        mini = op.member(session, name="王芳")
        op.order_line(session, member_id=mini.id, order_id="M1")
        op.event(session, member_id=mini.id, event_id="e1")
    run_sync(siyu)
    # when OneID merges the mini-program record into the POS member
    with transaction(siyu.session_factory) as session:
        op.merge(
            session,
            merged=session.merge(mini),
            survivor=session.merge(pos),
            at=datetime(2026, 6, 2, tzinfo=UTC),
        )
    result = run_sync(siyu)
    # then the warehouse follows
    assert result.merges == 1
    assert siyu.warehouse.query("SELECT member_id FROM order_lines") == [(pos.id,)]
    assert siyu.warehouse.query("SELECT member_id FROM events") == [(pos.id,)]
    assert siyu.warehouse.query("SELECT member_id FROM members") == [(pos.id,)]


def test_lines_of_a_merged_member_synced_late_land_on_the_survivor(siyu: Siyu) -> None:
    # given a merge A→B then B→C, and a line still recorded on A (not yet moved)
    with transaction(siyu.session_factory) as session:
        a, b, c = (op.member(session, name=n) for n in ("a", "b", "c"))
        a.merged_into_id, b.merged_into_id = b.id, c.id
        op.order_line(session, member_id=a.id, order_id="L1")
    run_sync(siyu)
    assert siyu.warehouse.query("SELECT member_id FROM order_lines") == [(c.id,)]


def test_member_changes_and_tags_are_copied(siyu: Siyu) -> None:
    from siyu.tags.models import MemberTag

    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        _tag_wang(session, wang.id)
        op.store(session)
    result = run_sync(siyu)
    assert (result.members, result.member_tags, result.stores) == (1, 1, 1)
    assert siyu.warehouse.query("SELECT tag FROM member_tags") == [("偏好:家居",)]

    # when the tag is removed and the member's name changes (updated_at bumped)
    with transaction(siyu.session_factory) as session:
        session.query(MemberTag).delete()
        row = session.get(Member, wang.id)
        assert row is not None
        row.name = "Wang Fang (VIP)"
        row.updated_at = datetime(2026, 6, 3, tzinfo=UTC)
    run_sync(siyu)
    assert siyu.warehouse.query("SELECT name FROM members") == [("Wang Fang (VIP)",)]
    assert siyu.warehouse.query("SELECT count(*) FROM member_tags") == [(0,)]


def test_touched_members_are_recorded_per_run(siyu: Siyu) -> None:
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        op.order_line(session, member_id=wang.id, order_id="A1")
    first = run_sync(siyu)
    second = run_sync(siyu)
    assert siyu.warehouse.query(
        "SELECT DISTINCT member_id FROM member_changes WHERE seq = ?", [first.seq]
    ) == [(wang.id,)]
    assert second.order_lines == 0


def _tag_wang(session: Any, member_id: int) -> None:
    from siyu.tags.models import MemberTag, Tag, TagGroup

    group = TagGroup(name="偏好", exclusive=False, created_at=op.T0)
    session.add(group)
    session.flush()
    tag = Tag(group_id=group.id, name="家居", created_at=op.T0)
    session.add(tag)
    session.flush()
    session.add(MemberTag(member_id=member_id, tag_id=tag.id, tagged_at=op.T0))


def test_rereading_unchanged_members_writes_nothing(siyu: Siyu) -> None:
    # given Wang Fang synced once (the next run re-reads her: she changed within the overlap)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
        _tag_wang(session, wang.id)
    run_sync(siyu)
    generation = read_watermark(siyu.warehouse, "members_generation")
    # when nothing changed since
    result = run_sync(siyu)
    # then she is read again but neither her row, her tags nor her bitmaps are rewritten
    assert result.members == 1
    assert read_watermark(siyu.warehouse, "members_generation") == generation
    assert siyu.warehouse.query("SELECT tag FROM member_tags") == [("偏好:家居",)]


def test_a_tag_added_at_the_same_instant_is_still_copied(siyu: Siyu) -> None:
    # given Wang Fang synced, then tagged with her updated_at unchanged (a fixed clock)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session)
    run_sync(siyu)
    with transaction(siyu.session_factory) as session:
        _tag_wang(session, wang.id)
    # when
    run_sync(siyu)
    # then the content differs from the warehouse's, so it is written
    assert siyu.warehouse.query("SELECT member_id, tag FROM member_tags") == [
        (wang.id, "偏好:家居")
    ]
