"""Owner guide and store by rules, manual assignment, franchise stickiness, leaving guides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.ingest.models import Event
from siyu.staff import attribution
from siyu.staff.errors import StaffError
from tests.factories.people import People, seed_people

T1 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def people(siyu: Siyu) -> People:
    return seed_people(siyu.session_factory, owners=False)


def _owner(siyu: Siyu, member_id: int) -> tuple[int | None, int | None, str]:
    with siyu.session_factory() as session:
        found = attribution.owner_of(session, member_id=member_id)
    assert found is not None
    return found.guide_id, found.store_id, found.rule


def _served(siyu: Siyu, member_id: int, staff_no: str, event_id: str) -> None:
    with transaction(siyu.session_factory) as session:
        session.add(
            Event(event_id=event_id, type="guide_served", occurred_at=T1, member_id=member_id,
                  identities={}, properties={"staff_no": staff_no}, received_at=T1)
        )  # fmt: skip


def test_registration_store_spreads_members_over_its_guides(siyu: Siyu, people: People) -> None:
    counts = attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    assert counts == {"registration_store": 3}
    assert _owner(siyu, people.members["Wang Fang"]) == (
        people.guides["xiaoli"], people.stores["SH001"], "registration_store",
    )  # fmt: skip
    assert _owner(siyu, people.members["Li Na"])[0] == people.guides["xiaochen"]


def test_last_guide_who_served_wins_over_registration(siyu: Siyu, people: People) -> None:
    _served(siyu, people.members["Wang Fang"], "xiaowang", "e1")
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    assert _owner(siyu, people.members["Wang Fang"]) == (
        people.guides["xiaowang"], people.stores["SH001"], "last_served",
    )  # fmt: skip


def test_franchise_member_stays_with_the_franchise_store(siyu: Siyu, people: People) -> None:
    # Zhou Min registered at franchise SH002; Xiao Li of direct store SH001 served her once.
    _served(siyu, people.members["Zhou Min"], "xiaoli", "e2")
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    assert _owner(siyu, people.members["Zhou Min"]) == (
        people.guides["xiaozhao"], people.stores["SH002"], "registration_store",
    )  # fmt: skip


def test_manual_assignment_is_not_overridden_by_rules(siyu: Siyu, people: People) -> None:
    attribution.assign_member(
        session_factory=siyu.session_factory, clock=siyu.clock,
        member_id=people.members["Wang Fang"], staff_no="xiaowang", actor="zhang.hq",
    )  # fmt: skip
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    assert _owner(siyu, people.members["Wang Fang"])[:2] == (
        people.guides["xiaowang"], people.stores["SH001"],
    )  # fmt: skip


def test_rule_order_is_configurable_and_validated(siyu: Siyu, people: People) -> None:
    _served(siyu, people.members["Wang Fang"], "xiaowang", "e3")
    attribution.set_rules(
        session_factory=siyu.session_factory, clock=siyu.clock,
        rules=["registration_store", "last_served"], actor="zhang.hq",
    )  # fmt: skip
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    assert _owner(siyu, people.members["Wang Fang"])[2] == "registration_store"
    with pytest.raises(StaffError, match="attribution rules"):
        attribution.set_rules(
            session_factory=siyu.session_factory, clock=siyu.clock, rules=["astrology"], actor="x"
        )


def test_leaving_guide_hands_members_to_the_successor_with_history(
    siyu: Siyu, people: People
) -> None:
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    later = FixedClock(T1)
    result = attribution.staff_leave(
        session_factory=siyu.session_factory, clock=later, staff_no="xiaoli",
        to_staff_no=None, actor="zhang.hq",
    )  # fmt: skip
    assert result == {"moved": 1, "without_guide": 0, "tasks_cancelled": 0}
    assert _owner(siyu, people.members["Wang Fang"])[0] == people.guides["xiaowang"]
    with siyu.session_factory() as session:
        history = attribution.owner_history(session, member_id=people.members["Wang Fang"])
    assert [(h["rule"], h["reason"], h["to_guide_id"]) for h in history] == [
        ("registration_store", None, people.guides["xiaoli"]),
        ("reassigned", "xiaoli left", people.guides["xiaowang"]),
    ]


def test_franchise_member_does_not_follow_an_explicit_successor_elsewhere(
    siyu: Siyu, people: People
) -> None:
    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    attribution.staff_leave(
        session_factory=siyu.session_factory, clock=siyu.clock, staff_no="xiaozhao",
        to_staff_no="xiaoli", actor="zhang.hq",
    )  # fmt: skip
    # No other guide at SH002: the member keeps the store and waits for a new guide there.
    assert _owner(siyu, people.members["Zhou Min"]) == (None, people.stores["SH002"], "reassigned")


def test_owners_are_copied_into_the_warehouse_for_segments(siyu: Siyu, people: People) -> None:
    from siyu.staff.warehouse_owners import sync_member_owners

    attribution.attribute_members(session_factory=siyu.session_factory, clock=siyu.clock)
    siyu.warehouse.ensure_schema()
    assert sync_member_owners(session_factory=siyu.session_factory, warehouse=siyu.warehouse) == 3
    rows = siyu.warehouse.query("SELECT member_id, owner_guide, owner_store FROM member_owners")
    assert (people.members["Zhou Min"], "xiaozhao", "SH002") in rows
