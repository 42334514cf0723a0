"""Rankings and PK contests: GMV, buyers and tasks credited to owner guides and stores."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.orders.models import OrderLine
from siyu.staff import leaderboards
from siyu.staff.errors import StaffError
from siyu.warehouse.sync import sync_all
from tests.factories.people import People, seed_people

JUNE = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)


def _order(order_id: str, member_id: int, amount: str, status: str = "paid") -> OrderLine:
    return OrderLine(
        order_id=order_id, line_no=1, member_id=member_id, store_code="SH001", channel="pos",
        paid_at=JUNE, amount=Decimal(amount), status=status, category="tea", sku="oolong",
        row_hash=order_id, imported_at=JUNE,
    )  # fmt: skip


@pytest.fixture
def people(siyu: Siyu) -> People:
    found = seed_people(siyu.session_factory)
    with transaction(siyu.session_factory) as session:
        session.add(_order("SO-1", found.members["Wang Fang"], "128.00"))
        session.add(_order("SO-2", found.members["Wang Fang"], "72.00"))
        session.add(_order("SO-3", found.members["Li Na"], "300.00"))
        session.add(_order("SO-4", found.members["Zhou Min"], "99.00", status="refunded"))
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    return found


def _board(siyu: Siyu, viewer: Viewer, level: str = "guide") -> list[leaderboards.Performance]:
    return leaderboards.performance(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, viewer=viewer,
        level=level, start=date(2026, 6, 1), end=date(2026, 6, 30), tz=siyu.settings.tz,
    )  # fmt: skip


def test_hq_ranks_every_guide_by_gmv_of_the_members_they_own(siyu: Siyu, people: People) -> None:
    board = _board(siyu, Viewer.system())
    assert [(r.rank, r.key, r.gmv, r.orders, r.conversions) for r in board] == [
        (1, "xiaochen", Decimal("300.00"), 1, 1),
        (2, "xiaoli", Decimal("200.00"), 2, 1),
        (3, "xiaowang", Decimal("0"), 0, 0),
        (3, "xiaozhao", Decimal("0"), 0, 0),  # Zhou Min's only order was refunded
    ]


def test_a_supervisor_sees_their_regions_stores_only(siyu: Siyu, people: People) -> None:
    east = Viewer(role=Role.SUPERVISOR, actor="wu.east", region="East")
    assert [(r.key, r.gmv) for r in _board(siyu, east, "store")] == [
        ("SH001", Decimal("200.00")),
        ("SH002", Decimal("0")),
    ]


def test_a_store_contest_ranks_its_sides_on_its_metric(siyu: Siyu, people: People) -> None:
    contest = leaderboards.create_contest(
        session_factory=siyu.session_factory, clock=siyu.clock, viewer=Viewer.system(),
        name="June PK", level="store", metric="gmv", participants=["SH001", "BJ001"],
        starts_on=date(2026, 6, 1), ends_on=date(2026, 6, 30), tz=siyu.settings.tz,
    )  # fmt: skip
    _, board = leaderboards.contest_leaderboard(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, viewer=Viewer.system(),
        contest_id=contest.id, tz=siyu.settings.tz,
    )  # fmt: skip
    assert [(r.rank, r.key) for r in board] == [(1, "BJ001"), (2, "SH001")]


def test_a_guide_cannot_open_a_contest(siyu: Siyu, people: People) -> None:
    guide = Viewer(role=Role.GUIDE, actor="xiaoli", staff_id=people.guides["xiaoli"])
    with pytest.raises(StaffError):
        leaderboards.create_contest(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=guide, name="Mine",
            level="guide", metric="gmv", participants=["xiaoli", "xiaowang"],
            starts_on=date(2026, 6, 1), ends_on=date(2026, 6, 30), tz=siyu.settings.tz,
        )  # fmt: skip
