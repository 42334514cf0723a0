"""Saved segments on SQLite and PostgreSQL: save, preview, refresh, diffs, window movement, export.

Warehouse rows are written directly (the sync has its own tests); the clock is moved by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
import pytest

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.segments import refresh
from siyu.segments import service as segment_service
from siyu.segments.errors import (
    SegmentCycleError,
    SegmentDefinitionError,
    SegmentInUseError,
    SegmentNameTakenError,
    SegmentNotFoundError,
)
from siyu.segments.reference import Dataset
from siyu.segments.schemas import ExportFormat, Schedule
from tests.factories.segments import load, member, order_line

NOW = datetime.fromisoformat("2026-06-18T02:00:00+00:00")
NAIVE_NOW = NOW.replace(tzinfo=None)
WOMEN = {"attr": "gender", "op": "eq", "value": "F"}
VIP = {"tag": "等级:VIP", "op": "has"}
RECENT_BUYERS = {"event": "order_paid", "within_days": 90, "count": {"op": "gte", "value": 1}}


def _personas(siyu: Siyu) -> None:
    """Wang Fang (1, F, VIP, bought 80 days ago), Li Na (2, F), Zhang Wei (3, M, VIP)."""
    load(
        siyu.warehouse,
        Dataset(
            members=[
                member(1, gender="F", name="Wang Fang"),
                member(2, gender="F", name="Li Na"),
                member(3, gender="M", name="Zhang Wei"),
            ],
            member_tags=[{"member_id": 1, "tag": "等级:VIP"}, {"member_id": 3, "tag": "等级:VIP"}],
            order_lines=[order_line("O1", 1, NAIVE_NOW - timedelta(days=80), "88.00")],
        ),
    )


def _save(siyu: Siyu, name: str, definition: dict, schedule: Schedule = Schedule.DAILY) -> None:
    with transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name=name, definition=definition, now=NOW, owner="xiao.li",
            schedule=schedule,
        )  # fmt: skip


def _refresh(siyu: Siyu, name: str, at: datetime, *, force: bool = False) -> refresh.RefreshResult:
    return refresh.refresh_segment(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, name=name, now=at,
        force=force,
    )  # fmt: skip


def test_a_saved_segment_keeps_its_canonical_definition_and_owner(siyu: Siyu) -> None:
    _save(siyu, "women", {"all": [WOMEN]})
    with transaction(siyu.session_factory) as db:
        saved = segment_service.get(db_session=db, name="women")
    assert saved.definition == {"all": [WOMEN]}
    assert (saved.owner, saved.schedule, saved.last_count) == ("xiao.li", Schedule.DAILY, None)


def test_saving_an_existing_name_replaces_its_definition(siyu: Siyu) -> None:
    _save(siyu, "women", WOMEN)
    _save(siyu, "women", VIP, schedule=Schedule.HOURLY)
    with transaction(siyu.session_factory) as db:
        segments = segment_service.get_all(db_session=db)
    assert [(s.name, s.definition, s.schedule) for s in segments] == [
        ("women", {"tag": "等级:VIP"}, Schedule.HOURLY)  # canonical: `has` is the default op
    ]


def test_creating_a_segment_under_a_taken_name_is_refused(siyu: Siyu) -> None:
    _save(siyu, "women", WOMEN)
    with pytest.raises(SegmentNameTakenError), transaction(siyu.session_factory) as db:
        segment_service.create_segment(
            db_session=db, name="women", definition=VIP, now=NOW, owner="xiao.li"
        )


def test_an_invalid_definition_is_refused_with_its_json_path(siyu: Siyu) -> None:
    bad = {"all": [WOMEN, {"event": "order_paid", "within_days": 0}]}
    with pytest.raises(SegmentDefinitionError) as refused, transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name="bad", definition=bad, now=NOW, owner="xiao.li"
        )
    assert "$.all[1].within_days" in str(refused.value)


def test_a_reference_to_an_unknown_segment_is_refused(siyu: Siyu) -> None:
    with pytest.raises(SegmentNotFoundError), transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name="a", definition={"segment": "nope"}, now=NOW, owner="xiao.li"
        )


def test_references_that_would_form_a_cycle_are_refused(siyu: Siyu) -> None:
    _save(siyu, "a", WOMEN)
    _save(siyu, "b", {"all": [{"segment": "a"}, VIP]})
    with pytest.raises(SegmentCycleError), transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name="a", definition={"segment": "b"}, now=NOW, owner="xiao.li"
        )


def test_a_segment_used_by_another_cannot_be_deleted(siyu: Siyu) -> None:
    _save(siyu, "women", WOMEN)
    _save(siyu, "vip_women", {"all": [{"segment": "women"}, VIP]})
    with pytest.raises(SegmentInUseError), transaction(siyu.session_factory) as db:
        segment_service.delete_segment(db_session=db, name="women", now=NOW, actor="xiao.li")
    with transaction(siyu.session_factory) as db:
        assert [s.name for s in segment_service.get_all(db_session=db)] == ["vip_women", "women"]


def test_preview_counts_and_masks_the_sample(siyu: Siyu) -> None:
    _personas(siyu)
    with transaction(siyu.session_factory) as db:
        preview = segment_service.preview_segment(
            warehouse=siyu.warehouse, definition={"all": [WOMEN]}, now=NOW, session=db
        )
    assert preview.count == 2
    assert [(s.member_id, s.name, s.gender) for s in preview.sample] == [
        (1, "W********", "F"),
        (2, "L****", "F"),
    ]


def test_preview_of_a_segment_nobody_is_in_counts_zero_with_an_empty_sample(siyu: Siyu) -> None:
    _personas(siyu)
    nobody = {"all": [WOMEN, {"attr": "gender", "op": "eq", "value": "M"}]}
    preview = segment_service.preview_segment(warehouse=siyu.warehouse, definition=nobody, now=NOW)
    assert (preview.count, preview.sample) == (0, [])


def test_preview_sample_is_the_first_members_by_id_and_the_count_is_all_of_them(
    siyu: Siyu,
) -> None:
    _personas(siyu)
    everyone = {"any": [WOMEN, {"attr": "gender", "op": "eq", "value": "M"}]}
    preview = segment_service.preview_segment(
        warehouse=siyu.warehouse, definition=everyone, now=NOW, sample_size=2
    )
    assert (preview.count, [s.member_id for s in preview.sample]) == (3, [1, 2])


def test_a_nested_saved_segment_is_evaluated_inside_another(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "women", WOMEN)
    with transaction(siyu.session_factory) as db:
        ids = segment_service.evaluate_member_ids(
            warehouse=siyu.warehouse,
            definition={"all": [{"segment": "women"}, {"not": VIP}]},
            now=NOW,
            session=db,
        )
    assert ids == {2}


def test_the_first_snapshot_has_everyone_entering(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "vip", VIP)
    result = _refresh(siyu, "vip", NOW)
    assert (result.refreshed, result.reason, result.member_count) == (True, "first snapshot", 2)
    assert (sorted(result.entered), result.exited) == ([1, 3], [])


def test_a_refresh_records_who_entered_and_who_left(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "vip", VIP)
    _refresh(siyu, "vip", NOW)
    siyu.warehouse.query("DELETE FROM member_tags WHERE member_id = 3")
    siyu.warehouse.query("INSERT INTO member_tags VALUES (2, '等级:VIP')")
    result = _refresh(siyu, "vip", NOW + timedelta(minutes=5), force=True)
    assert (result.entered, result.exited, result.member_count) == ([2], [3], 2)
    with transaction(siyu.session_factory) as db:
        change = refresh.segment_diff(db_session=db, name="vip")
        history = refresh.count_history(db_session=db, name="vip")
    assert (change.entered, change.exited, change.previous_at) == ([2], [3], NOW)
    assert [(h.member_count, h.entered_count, h.exited_count) for h in history] == [
        (2, 2, 0),
        (2, 1, 1),
    ]


def test_a_window_segment_is_re_evaluated_when_its_window_moves(siyu: Siyu) -> None:
    # Given Wang Fang's only order 80 days ago and a daily "bought in 90 days" segment
    _personas(siyu)
    _save(siyu, "recent", RECENT_BUYERS)
    assert _refresh(siyu, "recent", NOW).entered == [1]
    # When eleven days pass with no new data
    later = NOW + timedelta(days=11)
    result = _refresh(siyu, "recent", later)
    # Then the window moved past her order and she left
    assert (result.refreshed, result.reason, result.exited, result.member_count) == (
        True,
        "window moved",
        [1],
        0,
    )


def test_a_segment_without_window_is_not_refreshed_when_no_data_changed(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "women", WOMEN)
    _refresh(siyu, "women", NOW)
    result = _refresh(siyu, "women", NOW + timedelta(days=2))
    assert (result.refreshed, result.reason) == (False, "not due")


def test_a_segment_without_window_is_refreshed_when_synced_data_changed(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "women", WOMEN)
    _refresh(siyu, "women", NOW)
    siyu.warehouse.query("INSERT INTO sync_state VALUES ('members', 42)")
    siyu.warehouse.query("UPDATE members SET gender = 'F' WHERE member_id = 3")
    result = _refresh(siyu, "women", NOW + timedelta(days=1))
    assert (result.refreshed, result.reason, result.entered) == (True, "data changed", [3])


def test_a_daily_segment_is_not_due_within_the_day(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "recent", RECENT_BUYERS)
    _refresh(siyu, "recent", NOW)
    result = _refresh(siyu, "recent", NOW + timedelta(hours=23))
    assert (result.refreshed, result.reason) == (False, "not due")


def test_a_refresh_replayed_at_the_same_instant_adds_nothing(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "vip", VIP)
    _refresh(siyu, "vip", NOW)
    result = _refresh(siyu, "vip", NOW, force=True)
    assert (result.refreshed, result.reason) == (False, "not after last snapshot")
    with transaction(siyu.session_factory) as db:
        assert len(refresh.count_history(db_session=db, name="vip")) == 1


def test_due_segments_refresh_together_and_manual_ones_wait(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "recent", RECENT_BUYERS, schedule=Schedule.HOURLY)
    _save(siyu, "vip", VIP, schedule=Schedule.MANUAL)
    first = refresh.refresh_due_segments(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, now=NOW
    )
    again = refresh.refresh_due_segments(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, now=NOW + timedelta(hours=2)
    )
    assert [r.segment for r in first] == ["recent", "vip"]
    assert [r.segment for r in again] == ["recent"]


def test_only_the_latest_snapshots_keep_their_full_member_set(siyu: Siyu) -> None:
    _personas(siyu)
    _save(siyu, "vip", VIP)
    for hour in range(4):
        _refresh(siyu, "vip", NOW + timedelta(hours=hour), force=True)
    with transaction(siyu.session_factory) as db:
        segment = segment_service.get_row(db, "vip")
        kept = sorted(
            (s.taken_at, s.members is not None)
            for s in db.query(refresh.SegmentSnapshot).filter_by(segment_id=segment.id)
        )
        members = refresh.snapshot_members(db_session=db, name="vip")
    assert [full for _, full in kept] == [False, False, True, True]
    assert members == {1, 3}


@pytest.mark.parametrize("export_format", [ExportFormat.CSV, ExportFormat.PARQUET])
def test_export_writes_the_members_of_the_segment(
    siyu: Siyu, tmp_path: Path, export_format: ExportFormat
) -> None:
    _personas(siyu)
    out = tmp_path / f"women.{export_format.value}"
    rows = segment_service.export_segment(
        warehouse=siyu.warehouse, definition=WOMEN, now=NOW, out=out, export_format=export_format
    )
    table = (
        pa_parquet.read_table(out)
        if export_format == ExportFormat.PARQUET
        else pa_csv.read_csv(out)
    )
    assert rows == 2
    assert table.column("member_id").to_pylist() == [1, 2]
    assert table.column_names == ["member_id", "gender", "store_code", "channel", "registered_at"]
