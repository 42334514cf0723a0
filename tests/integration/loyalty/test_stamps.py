"""Stamp cards: N qualifying orders complete the card; a refund takes the stamp back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from siyu.bootstrap import Siyu
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.stamps import StampCardSpec

from .points_fixtures import T0, events, paid_order, wang_fang

CARD = StampCardSpec(
    code="TEA5",
    name="Five teas, one free",
    stamps_required=3,
    min_order_yuan=20,
    category="tea",
    reward_points=200,
)


def _buy(siyu: Siyu, member: int, order: str, amount: str, day: int, **kw: Any) -> None:
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id=order,
        amount=amount,
        paid_at=T0 + timedelta(days=day),
        **kw,
    )
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0 + timedelta(days=day))


def _card(siyu: Siyu, member: int) -> tuple[int, int]:
    (status,) = points_service.stamp_cards(siyu.session_factory, member_id=member)
    return status.open_stamps, status.completions


def test_three_qualifying_orders_complete_the_card_and_earn_the_reward(siyu: Siyu) -> None:
    points_service.create_stamp_card(siyu.session_factory, spec=CARD, now=T0)
    member = wang_fang(siyu.session_factory)
    _buy(siyu, member, "SO-1", "25", 0)
    _buy(siyu, member, "SO-2", "15", 1)  # below ¥20: no stamp
    _buy(siyu, member, "SO-3", "30", 2, category="cake")  # not tea: no stamp
    _buy(siyu, member, "SO-4", "25", 3)
    _buy(siyu, member, "SO-5", "25", 4)
    assert _card(siyu, member) == (0, 1)
    assert [e for e, _ in events(siyu.session_factory, "stamp_card_completed")] == [
        f"stamp_card_completed:TEA5:{member}:1"
    ]
    balance = points_service.balance(siyu.session_factory, member_id=member)
    assert balance.points == 200  # the reward; order points are still pending


def test_refunding_a_stamped_order_revokes_the_completion_and_its_reward(siyu: Siyu) -> None:
    points_service.create_stamp_card(siyu.session_factory, spec=CARD, now=T0)
    member = wang_fang(siyu.session_factory)
    for n in range(3):
        _buy(siyu, member, f"SO-{n}", "25", n)
    _buy(siyu, member, "SO-1", "25", 4, line_no=2, status="refunded")
    assert _card(siyu, member) == (2, 0)
    assert points_service.balance(siyu.session_factory, member_id=member).points == 0
    _buy(siyu, member, "SO-9", "25", 5)
    assert _card(siyu, member) == (0, 1)
    assert points_service.balance(siyu.session_factory, member_id=member).points == 200


def test_an_order_stamps_a_card_once_however_often_the_job_runs(siyu: Siyu) -> None:
    points_service.create_stamp_card(siyu.session_factory, spec=CARD, now=T0)
    member = wang_fang(siyu.session_factory)
    _buy(siyu, member, "SO-1", "25", 0)
    for _ in range(3):
        points_jobs.earn_for_orders(siyu.session_factory, since=T0 - timedelta(days=1), now=T0)
    assert _card(siyu, member) == (1, 0)
