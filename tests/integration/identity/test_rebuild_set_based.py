"""The set-based full rebuild (identity/rebuild.py) gives the regroup's result: same components,
same survivors, same merges and splits, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from siyu import store_copy
from siyu.bootstrap import Siyu
from siyu.identity import service as identity_service
from siyu.identity.models import Identity, Member, MemberMerge, MemberRecord
from siyu.identity.regroup import RegroupOutcome, regroup
from siyu.ingest import service as ingest_service
from siyu.ingest.models import Event
from siyu.orders.models import OrderLine

SHARED_PHONE = [{"member_no": f"M10{n}", "phone": "13000000000"} for n in (1, 2, 3)]
WANG = [
    {"member_no": "M001", "phone": "13800138000", "name": "Wang Fang", "channel": "pos"},
    {"member_no": "M002", "unionid": "oU-wang", "name": "Wang Fang", "channel": "miniprogram"},
]
ORDERS = [
    {"order_id": "O1", "phone": "13800138000", "unionid": "oU-wang",
     "paid_at": "2026-06-01T12:00:00", "amount": "39.00", "store_code": "SH001"},
    {"order_id": "O2", "phone": "13000000000", "paid_at": "2026-06-02T12:00:00",
     "amount": "18.00", "store_code": "SH001"},
]  # fmt: skip
EVENTS = [
    {"event_id": "E1", "type": "page_view", "occurred_at": "2026-06-01T08:00:00",
     "identities": {"unionid": "oU-wang"}},
]  # fmt: skip


def _given_a_brand(siyu: Siyu, *, limit: int) -> None:
    for kind, rows in (("members", SHARED_PHONE), ("members", WANG), ("orders", ORDERS)):
        ingest_service.ingest_records(
            session_factory=siyu.session_factory,
            kind=kind,
            rows=rows,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
            max_member_nos=limit,
        )
    ingest_service.ingest_records(
        session_factory=siyu.session_factory,
        kind="events",
        rows=EVENTS,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        max_member_nos=limit,
    )


def _state(session: Any, known: int) -> dict[str, Any]:
    """Who owns what, with members created by the rebuild renamed in order of appearance."""
    fresh: dict[int, str] = {}

    def name(member_id: int) -> Any:
        if member_id <= known:
            return member_id
        return fresh.setdefault(member_id, f"new{len(fresh)}")

    records = session.execute(
        sa.select(MemberRecord.record_key, MemberRecord.member_id).order_by(MemberRecord.id)
    ).all()
    lines = session.execute(sa.select(OrderLine.order_id, OrderLine.member_id)).all()
    events = session.execute(sa.select(Event.event_id, Event.member_id)).all()
    values = session.execute(
        sa.select(Identity.value, Identity.member_id, Identity.polluted).order_by(Identity.id)
    ).all()
    merges = session.execute(
        sa.select(MemberMerge.survivor_id, MemberMerge.merged_id, MemberMerge.via_value)
        .order_by(MemberMerge.id)
    ).all()  # fmt: skip
    return {
        "records": [(key, name(m)) for key, m in records],
        "lines": sorted((key, name(m)) for key, m in lines),
        "events": [(key, name(m)) for key, m in events],
        "values": [(v, name(m), bool(p)) for v, m, p in values],
        "merges": [(name(s), name(m), via) for s, m, via in merges],
    }


def _regrouped(siyu: Siyu, *, limit: int) -> tuple[int, RegroupOutcome, dict[str, Any]]:
    """What the regroup would make of the store under `limit` (rolled back): the members known
    before, its outcome and the state it leaves."""
    with siyu.session_factory() as session:
        known = session.scalar(sa.select(sa.func.max(Member.id))) or 0
        expected = regroup(
            session, member_ids=None, now=siyu.clock.now(), max_member_nos=limit,
            recompute_pollution=True,
        )  # fmt: skip
        expected_state = _state(session, known)
        session.rollback()
    return known, expected, expected_state


@pytest.mark.parametrize(("imported", "rebuilt"), [(2, 20), (20, 2), (20, 20), (2, 1)])
def test_set_based_rebuild_agrees_with_the_regroup(siyu: Siyu, imported: int, rebuilt: int) -> None:
    # Given a brand imported under one pollution limit
    _given_a_brand(siyu, limit=imported)
    # When the regroup rebuilds under another limit (rolled back) …
    known, expected, expected_state = _regrouped(siyu, limit=rebuilt)

    # … and the set-based rebuild does the same for real
    outcome = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=rebuilt
    )

    # Then both give the same counts, owners, flags and merge history
    assert outcome == {
        "records": expected.records,
        "merges": expected.merges,
        "splits": expected.splits,
        "polluted": expected.polluted,
    }
    with siyu.session_factory() as session:
        assert _state(session, known) == expected_state


def test_a_lower_limit_splits_the_members_a_shared_phone_had_merged(siyu: Siyu) -> None:
    # Given three member_nos merged through one phone under the default limit
    _given_a_brand(siyu, limit=20)
    with siyu.session_factory() as session:
        before = session.scalars(
            sa.select(MemberRecord.member_id).where(MemberRecord.member_no.like("M10%"))
        ).all()
    assert len(set(before)) == 1

    # When OneID is rebuilt with a limit of 2
    outcome = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=2
    )

    # Then the phone is polluted: the three records and order O2 (phone only) are four members,
    # the first keeping its id
    assert (outcome["splits"], outcome["polluted"]) == (3, 1)
    with siyu.session_factory() as session:
        after = session.scalars(
            sa.select(MemberRecord.member_id)
            .where(MemberRecord.member_no.like("M10%"))
            .order_by(MemberRecord.id)
        ).all()
    assert after[0] == before[0]
    assert len(set(after)) == 3


def test_a_copy_in_many_blocks_agrees_and_a_second_rebuild_changes_nothing(
    siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a brand imported under a limit of 20, and copies cut into blocks of two rows
    # (real blocks are 200k rows: every other test copies each table in one block)
    _given_a_brand(siyu, limit=20)
    monkeypatch.setattr(store_copy, "BLOCK", 2)
    monkeypatch.setattr(store_copy, "RANGE", 2)  # ADBC reads of two ids (real ones: 2M)
    known, expected, expected_state = _regrouped(siyu, limit=2)

    # When the set-based rebuild runs under a limit of 2, then once more
    first = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=2
    )
    second = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=2
    )

    # Then the first gives the regroup's result and the second finds nothing left to change
    assert first == {
        "records": expected.records,
        "merges": expected.merges,
        "splits": expected.splits,
        "polluted": expected.polluted,
    }
    assert second == {"records": expected.records, "merges": 0, "splits": 0, "polluted": 1}
    with siyu.session_factory() as session:
        assert _state(session, known) == expected_state


# One order whose two lines carry two members' values: the order joins them (its lines are one
# node of the rebuild's graph, with the values of both).
BRIDGING_ORDER = [
    {"order_id": "O9", "line_no": "1", "phone": "13800138000",
     "paid_at": "2026-06-03T12:00:00", "amount": "10.00", "store_code": "SH001"},
    {"order_id": "O9", "line_no": "2", "member_no": "M101",
     "paid_at": "2026-06-03T12:00:00", "amount": "12.00", "store_code": "SH001"},
]  # fmt: skip


def test_an_order_whose_lines_carry_two_members_values_joins_them_as_the_regroup_does(
    siyu: Siyu,
) -> None:
    _given_a_brand(siyu, limit=20)
    ingest_service.ingest_records(
        session_factory=siyu.session_factory, kind="orders", rows=BRIDGING_ORDER,
        now=siyu.clock.now(), tz=siyu.settings.tz, max_member_nos=20,
    )  # fmt: skip
    known, expected, expected_state = _regrouped(siyu, limit=2)

    outcome = identity_service.rebuild_identities(
        session_factory=siyu.session_factory, now=siyu.clock.now(), max_member_nos=2
    )

    assert outcome["splits"] == expected.splits and outcome["merges"] == expected.merges
    with siyu.session_factory() as session:
        state = _state(session, known)
    assert state == expected_state
    owner = dict(state["records"])
    assert {m for order, m in state["lines"] if order == "O9"} == {owner["M101"]} == {owner["M001"]}
