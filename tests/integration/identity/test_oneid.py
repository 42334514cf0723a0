"""OneID on SQLite and PostgreSQL: merges with history, survivors, tags following, pollution,
splits when a value becomes polluted, the phone-changes-owner rule and the full rebuild."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.identity import service as identity_service
from siyu.identity.models import Identity, IdentityObservation, Member, MemberMerge
from siyu.ingest import service as ingest_service
from siyu.ingest.models import Event
from siyu.orders.models import OrderLine
from siyu.tags.models import MemberTag, Tag, TagGroup

WANG_POS = {"member_no": "M001", "phone": "13800138000", "name": "Wang Fang", "channel": "pos"}
WANG_MP = {"member_no": "M002", "unionid": "oU-wang", "name": "Wang Fang", "channel": "miniprogram"}
BRIDGE = {
    "order_id": "O1",
    "phone": "13800138000",
    "unionid": "oU-wang",
    "paid_at": "2026-06-01T12:00:00",
    "amount": "39.00",
    "store_code": "SH001",
}


def _ingest(
    siyu: Siyu, kind: str, rows: list[dict[str, Any]], limit: int = 20
) -> ingest_service.ImportResult:
    return ingest_service.ingest_records(
        session_factory=siyu.session_factory,
        kind=kind,
        rows=rows,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        max_member_nos=limit,
    )


def _member(siyu: Siyu, identity: str) -> int:
    return identity_service.find_member_by_identity(
        session_factory=siyu.session_factory, identity=identity
    )


def _count(siyu: Siyu) -> int:
    return identity_service.count_members(session_factory=siyu.session_factory)


def test_an_order_carrying_phone_and_unionid_merges_two_accounts(siyu: Siyu) -> None:
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    pos, mini = _member(siyu, "M001"), _member(siyu, "M002")
    assert pos != mini

    result = _ingest(siyu, "orders", [BRIDGE])

    assert result.merges == 1
    assert _member(siyu, "M002") == pos
    assert _count(siyu) == 1
    with siyu.session_factory() as session:
        merge = session.scalars(sa.select(MemberMerge)).one()
        line = session.scalars(sa.select(OrderLine)).one()
        old = session.get(Member, mini)
    assert (merge.survivor_id, merge.merged_id, merge.via_type) == (pos, mini, "unionid")
    assert line.member_id == pos
    assert old is not None and old.merged_into_id == pos


def test_the_old_member_id_resolves_to_the_survivor(siyu: Siyu) -> None:
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    mini = _member(siyu, "M002")
    _ingest(siyu, "orders", [BRIDGE])

    assert identity_service.resolve_member_id(
        session_factory=siyu.session_factory, member_id=mini
    ) == _member(siyu, "M001")


def test_tags_follow_the_survivor(siyu: Siyu) -> None:
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    mini = _member(siyu, "M002")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with siyu.session_factory() as session:
        group = TagGroup(name="interest", created_at=now)
        session.add(group)
        session.flush()
        tag = Tag(group_id=group.id, name="oolong", created_at=now)
        session.add(tag)
        session.flush()
        session.add(MemberTag(member_id=mini, tag_id=tag.id, tagged_at=now))
        session.commit()

    _ingest(siyu, "orders", [BRIDGE])

    with siyu.session_factory() as session:
        assert session.scalars(sa.select(MemberTag.member_id)).all() == [_member(siyu, "M001")]


def test_members_show_explains_which_identities_joined_which_records(siyu: Siyu) -> None:
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    _ingest(siyu, "orders", [BRIDGE])

    explanation = identity_service.explain_member(
        session_factory=siyu.session_factory, identity="+86 138 0013 8000"
    ).as_dict()

    by_value = {row["value"]: row["records"] for row in explanation["identities"]}
    assert by_value == {
        "M001": ["member:M001"],
        "M002": ["member:M002"],
        "13800138000": ["member:M001", "order:O1:1"],
        "oU-wang": ["member:M002", "order:O1:1"],
    }
    assert [(m["via"], m["record"]) for m in explanation["merges"]] == [
        ("unionid:oU-wang", "order:O1:1")
    ]


def test_a_placeholder_phone_shared_by_many_member_nos_never_merges(siyu: Siyu) -> None:
    rows = [{"member_no": f"M{n:03d}", "phone": "13000000000"} for n in range(1, 5)]

    _ingest(siyu, "members", rows, limit=3)

    assert _count(siyu) == 4
    assert identity_service.list_polluted(session_factory=siyu.session_factory) == [
        {"type": "phone", "value": "13000000000", "member_nos": 4}
    ]


def test_a_value_that_becomes_polluted_later_splits_the_members_it_had_joined(siyu: Siyu) -> None:
    _ingest(
        siyu, "members", [{"member_no": f"M00{n}", "phone": "13000000000"} for n in (1, 2)], limit=2
    )
    assert _count(siyu) == 1

    _ingest(siyu, "members", [{"member_no": "M003", "phone": "13000000000"}], limit=2)

    assert _count(siyu) == 3
    assert len({_member(siyu, f"M00{n}") for n in (1, 2, 3)}) == 3


def test_a_member_who_changes_phone_releases_the_old_number(siyu: Siyu) -> None:
    # Given Wang Fang bought with her old number, then changed it in the POS.
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "orders", [{**BRIDGE, "unionid": ""}])
    _ingest(siyu, "members", [{**WANG_POS, "phone": "13900139000"}])

    # When the carrier gives the old number to Li Lei, who registers with it.
    _ingest(siyu, "members", [{"member_no": "M050", "phone": "13800138000", "name": "Li Lei"}])

    # Then Li Lei is his own member and Wang Fang keeps her order and her new number.
    wang, li = _member(siyu, "M001"), _member(siyu, "M050")
    assert wang != li
    assert _member(siyu, "13800138000") == li
    assert _member(siyu, "13900139000") == wang
    with siyu.session_factory() as session:
        assert session.scalars(sa.select(OrderLine.member_id)).all() == [wang]
        released = session.scalars(
            sa.select(Identity).where(Identity.released_at.is_not(None))
        ).one()
    assert (released.value, released.member_id) == ("13800138000", wang)


def test_rebuild_reproduces_the_incremental_result(siyu: Siyu) -> None:
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    _ingest(siyu, "orders", [BRIDGE])
    _ingest(siyu, "members", [{"member_no": "M003", "phone": "13700137000"}])

    outcome = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=20
    )

    assert (outcome["merges"], outcome["splits"]) == (0, 0)
    assert _count(siyu) == 2
    assert _member(siyu, "M002") == _member(siyu, "M001")


def test_an_event_with_a_wecom_id_and_a_phone_joins_the_contact_to_the_pos_member(
    siyu: Siyu,
) -> None:
    # Given Wang Fang's POS account and her WeCom contact, first seen as separate members
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [{"member_no": "WX01", "external_userid": "wm-wang"}])
    contact = _member(siyu, "wm-wang")

    # When a WeCom event carries both her external_userid and her phone
    event = {
        "event_id": "E1",
        "type": "wecom_add",
        "occurred_at": "2026-06-02T09:00:00",
        "identities": {"external_userid": "wm-wang", "phone": "138 0013 8000"},
        "properties": {"staff_no": "xiaoli"},
    }
    result = _ingest(siyu, "events", [event])

    # Then the contact is merged into the POS member, and the event belongs to the survivor
    pos = _member(siyu, "M001")
    assert (result.merges, _count(siyu)) == (1, 1)
    assert _member(siyu, "wm-wang") == pos
    with siyu.session_factory() as session:
        assert session.scalars(sa.select(Event.member_id)).all() == [pos]
        merge = session.scalars(sa.select(MemberMerge)).one()
    # (the contact joined through its own value; the event that bridged it is named)
    assert (merge.survivor_id, merge.merged_id, merge.via_type, merge.detail) == (
        pos,
        contact,
        "external_userid",
        {"record": "event:E1"},
    )


def test_orders_and_events_of_a_merged_member_follow_the_survivor(siyu: Siyu) -> None:
    # Given the mini-program account already has an order and an event of its own
    _ingest(siyu, "members", [WANG_POS])
    _ingest(siyu, "members", [WANG_MP])
    _ingest(siyu, "orders", [{**BRIDGE, "order_id": "O0", "phone": ""}])
    _ingest(
        siyu,
        "events",
        [{"event_id": "E0", "type": "page_view", "occurred_at": "2026-06-01T08:00:00",
          "identities": {"unionid": "oU-wang"}}],
    )  # fmt: skip

    # When the bridging order arrives
    _ingest(siyu, "orders", [BRIDGE])

    # Then every order line and event points at the surviving member
    pos = _member(siyu, "M001")
    with siyu.session_factory() as session:
        lines = session.execute(sa.select(OrderLine.order_id, OrderLine.member_id)).all()
        events = session.scalars(sa.select(Event.member_id)).all()
    assert sorted(lines) == [("O0", pos), ("O1", pos)]
    assert events == [pos]


def test_rebuild_with_a_higher_pollution_limit_merges_what_the_guard_had_kept_apart(
    siyu: Siyu,
) -> None:
    # Given three member_nos sharing a phone, polluted under a limit of 2
    rows = [{"member_no": f"M00{n}", "phone": "13000000000"} for n in (1, 2, 3)]
    _ingest(siyu, "members", rows, limit=2)
    assert _count(siyu) == 3

    # When OneID is rebuilt with the default limit of 20
    outcome = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=20
    )

    # Then the phone is no longer polluted and the three records are one member
    assert (outcome["merges"], outcome["polluted"]) == (2, 0)
    assert _count(siyu) == 1
    assert identity_service.list_polluted(session_factory=siyu.session_factory) == []


def test_an_order_line_keeps_the_identity_ids_of_its_values_as_its_evidence(siyu: Siyu) -> None:
    _ingest(siyu, "orders", [BRIDGE])

    with siyu.session_factory() as session:
        ids = {kind: i for kind, i in session.execute(sa.select(Identity.type, Identity.id))}
        line = session.scalars(sa.select(OrderLine)).one()
        observed = session.scalars(sa.select(sa.func.count()).select_from(IdentityObservation))
        assert observed.one() == 0  # a line's evidence is its own columns, not observation rows
    assert (line.member_no_identity_id, line.phone_identity_id, line.unionid_identity_id) == (
        None,
        ids["phone"],
        ids["unionid"],
    )


def test_a_value_edited_away_still_counts_its_member_no_toward_pollution(siyu: Siyu) -> None:
    # Given M001 and M002 sharing a phone (two member_nos: at the limit of 2), then M002
    # editing it away
    shared = [{"member_no": f"M00{n}", "phone": "13000000000"} for n in (1, 2)]
    _ingest(siyu, "members", shared, limit=2)
    _ingest(siyu, "members", [{"member_no": "M002", "phone": "13900139000"}], limit=2)

    # When a third member_no registers with the phone
    _ingest(siyu, "members", [{"member_no": "M003", "phone": "13000000000"}], limit=2)

    # Then the phone has been seen with three member_nos: polluted, it joins nobody
    assert identity_service.list_polluted(session_factory=siyu.session_factory) == [
        {"type": "phone", "value": "13000000000", "member_nos": 3}
    ]
    assert len({_member(siyu, f"M00{n}") for n in (1, 2, 3)}) == 3
