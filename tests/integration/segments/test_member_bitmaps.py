"""The member bitmap index: built by the sync, answering previews, never read when stale."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pyroaring import BitMap

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.identity.models import Member
from siyu.segments import service as segments_service
from siyu.segments.schemas import Preview
from siyu.tags import service as tags_service
from siyu.warehouse.member_bitmaps import member_bitmaps_current, rebuild_member_bitmaps
from siyu.warehouse.sync import sync_all
from tests.factories import operational as op

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
TEA_LOVERS = {"tag": "偏好:茶", "op": "has"}
WOMEN_OUTSIDE_SH002 = {
    "all": [
        {"attr": "gender", "op": "eq", "value": "F"},
        {"not": {"attr": "store_code", "op": "in", "value": ["SH002"]}},
    ]
}


def _sync(siyu: Siyu) -> None:
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=SHANGHAI)


def _preview(siyu: Siyu, definition: dict[str, Any]) -> Preview:
    return segments_service.preview_segment(
        warehouse=siyu.warehouse, definition=definition, now=NOW
    )


def _members(siyu: Siyu, *names: str) -> list[int]:
    with transaction(siyu.session_factory) as session:
        return [op.member(session, name=name).id for name in names]


def _define_tea_tag(siyu: Siyu) -> None:
    common: dict[str, Any] = {"session_factory": siyu.session_factory, "clock": siyu.clock}
    tags_service.create_group(**common, name="偏好", exclusive=False, actor="ops")
    tags_service.define_tag(**common, tag="偏好:茶", actor="ops")


def test_a_sync_leaves_the_index_current(siyu: Siyu) -> None:
    # Given two members
    _members(siyu, "Wang Fang", "Li Na")
    # When the warehouse is synced
    _sync(siyu)
    # Then the bitmap index matches the warehouse
    assert member_bitmaps_current(siyu.warehouse)


def test_a_preview_from_the_index_counts_and_samples_like_sql(siyu: Siyu) -> None:
    # Given three women, one of them registered at store SH002, synced
    wang, li, zhao = _members(siyu, "Wang Fang", "Li Na", "Zhao Min")
    with transaction(siyu.session_factory) as session:
        moved = session.get(Member, li)
        assert moved is not None
        moved.store_code, moved.updated_at = "SH002", NOW
    _sync(siyu)
    # When the builder previews "women outside SH002"
    preview = _preview(siyu, WOMEN_OUTSIDE_SH002)
    # Then the count and the masked sample are the two others, lowest id first
    assert preview.count == 2
    assert [(m.member_id, m.name) for m in preview.sample] == [
        (wang, "W********"),
        (zhao, "Z*******"),
    ]


def test_a_tag_put_on_after_a_sync_is_counted_after_the_next_sync(siyu: Siyu) -> None:
    # Given a synced member without tags
    _define_tea_tag(siyu)
    (wang,) = _members(siyu, "Wang Fang")
    _sync(siyu)
    assert _preview(siyu, TEA_LOVERS).count == 0
    # When an operator tags her and the warehouse syncs
    tags_service.tag_member(
        session_factory=siyu.session_factory, clock=siyu.clock, member_id=wang, tag="偏好:茶",
        actor="ops",
    )  # fmt: skip
    _sync(siyu)
    # Then the index is current again and the tag segment holds her
    assert member_bitmaps_current(siyu.warehouse)
    assert [m.member_id for m in _preview(siyu, TEA_LOVERS).sample] == [wang]


def test_a_member_written_outside_the_sync_makes_previews_use_sql(siyu: Siyu) -> None:
    # Given a synced warehouse with one woman
    _members(siyu, "Wang Fang")
    _sync(siyu)
    # When a row is written into the warehouse directly (a hand repair, a test fixture)
    siyu.warehouse.query(
        "INSERT INTO members (member_id, gender, name) VALUES (99, 'F', 'Hand Written')"
    )
    # Then the index is no longer current and the preview still counts both women
    assert not member_bitmaps_current(siyu.warehouse)
    assert _preview(siyu, {"attr": "gender", "op": "eq", "value": "F"}).count == 2


def test_a_merged_member_leaves_the_index_with_the_next_sync(siyu: Siyu) -> None:
    # Given two synced women
    wang, li = _members(siyu, "Wang Fang", "Li Na")
    _sync(siyu)
    # When OneID merges Li Na into Wang Fang and the warehouse syncs
    with transaction(siyu.session_factory) as session:
        merged, survivor = session.get(Member, li), session.get(Member, wang)
        assert merged is not None and survivor is not None
        op.merge(session, merged=merged, survivor=survivor, at=NOW)
    _sync(siyu)
    # Then only the survivor is in the segment
    assert member_bitmaps_current(siyu.warehouse)
    preview = _preview(siyu, {"attr": "gender", "op": "eq", "value": "F"})
    assert (preview.count, [m.member_id for m in preview.sample]) == (1, [wang])


def test_an_empty_warehouse_builds_an_empty_index(siyu: Siyu) -> None:
    # Given a warehouse without members, When the index is built
    built = rebuild_member_bitmaps(siyu.warehouse)
    # Then it holds no bitmap, is current, and every preview is empty
    assert built == 0
    assert member_bitmaps_current(siyu.warehouse)
    assert _preview(siyu, {"not": TEA_LOVERS}).count == 0


def _index(siyu: Siyu) -> dict[tuple[str, str | None], list[int]]:
    rows = siyu.warehouse.query("SELECT dimension, value, members FROM member_bitmaps")
    return {(d, v): sorted(BitMap.deserialize(blob)) for d, v, blob in rows}


def test_a_sync_updates_the_index_in_place_to_what_a_rebuild_gives(siyu: Siyu) -> None:
    # Given three synced members, one tagged
    _define_tea_tag(siyu)
    wang, li, zhao = _members(siyu, "Wang Fang", "Li Na", "Zhao Min")
    common: dict[str, Any] = {"session_factory": siyu.session_factory, "clock": siyu.clock}
    tags_service.tag_member(**common, member_id=zhao, tag="偏好:茶", actor="ops")
    _sync(siyu)
    # When Wang Fang becomes a man at SH002 born 1990-05-01, Li Na gets the tag, Zhao Min
    # merges into Li Na
    with transaction(siyu.session_factory) as session:
        changed, merged, survivor = (session.get(Member, i) for i in (wang, zhao, li))
        assert changed is not None and merged is not None and survivor is not None
        changed.gender, changed.store_code, changed.updated_at = "M", "SH002", NOW
        changed.birthday = date(1990, 5, 1)
        op.merge(session, merged=merged, survivor=survivor, at=NOW)
    tags_service.tag_member(**common, member_id=li, tag="偏好:茶", actor="ops")
    _sync(siyu)
    # Then the index updated batch by batch is current and equals one built from scratch
    assert member_bitmaps_current(siyu.warehouse)
    updated = _index(siyu)
    rebuild_member_bitmaps(siyu.warehouse)
    assert updated == _index(siyu)
    assert updated[("tag", "偏好:茶")] == [li]
    assert updated[("gender", "M")] == [wang]
    assert updated[("birthday", "1990-05-01")] == [wang]
