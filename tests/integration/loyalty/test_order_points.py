"""Set-based earning for orders (loyalty/order_points.py) on SQLite and PostgreSQL: batches give
the same keys, lots and events as order-by-order earning, replays add nothing, late old orders
repay debts, and tier upgrades happen once per batch."""

from __future__ import annotations

from datetime import timedelta

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.ledger import ReversalPolicy
from tests.factories import operational

from .points_fixtures import T0, entries, events, lots, paid_order, wang_fang

SINCE = T0 - timedelta(days=30)


def _member(siyu: Siyu, name: str) -> int:
    with transaction(siyu.session_factory) as session:
        return operational.member(session, name=name).id


def test_orders_of_several_members_earn_across_batches_once(siyu: Siyu) -> None:
    # given Wang Fang (two orders, one of two lines) and Li Lei (one order)
    wang, li = wang_fang(siyu.session_factory), _member(siyu, "Li Lei")
    paid_order(siyu.session_factory, member_id=wang, order_id="SO-1", amount="20.90")
    paid_order(siyu.session_factory, member_id=wang, order_id="SO-1", amount="9", line_no=2)
    paid_order(siyu.session_factory, member_id=wang, order_id="SO-2", amount="35")
    paid_order(siyu.session_factory, member_id=li, order_id="SO-3", amount="12.50")
    # when the job runs in batches of one order, twice
    for _ in range(2):
        done = points_jobs.earn_for_orders(
            siyu.session_factory, since=SINCE, now=T0, batch_orders=1
        )
    # then each line earned one pending lot, once
    assert done == 3
    assert entries(siyu.session_factory, wang) == [("earn", 0, 20), ("earn", 0, 9), ("earn", 0, 35)]
    assert entries(siyu.session_factory, li) == [("earn", 0, 12)]
    assert [e for e, _ in events(siyu.session_factory, "points_earned")] == [
        "points_earned:order:SO-1:1",
        "points_earned:order:SO-1:2",
        "points_earned:order:SO-2:1",
        "points_earned:order:SO-3:1",
    ]


def test_an_order_past_its_refund_window_is_spendable_and_its_event_shows_the_balance(
    siyu: Siyu,
) -> None:
    # given Wang Fang has 10 points and an order paid 10 days ago is imported only now
    member = wang_fang(siyu.session_factory)
    points_service.grant(
        siyu.session_factory, member_id=member, points=10, reason="welcome",
        idempotency_key="welcome", now=T0,
    )  # fmt: skip
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id="SO-OLD",
        amount="50",
        paid_at=T0 - timedelta(days=10),
    )
    # when the job runs
    points_jobs.earn_for_orders(siyu.session_factory, since=SINCE, now=T0)
    # then the 50 points are active at once and the event carries the balance after them
    assert lots(siyu.session_factory, member) == [("active", 10, 10), ("active", 50, 50)]
    (event,) = [p for e, p in events(siyu.session_factory, "points_earned") if "SO-OLD" in e]
    assert (event["points"], event["pending"], event["balance"]) == (50, False, 60)


def test_a_late_old_order_repays_the_members_debt(siyu: Siyu) -> None:
    # given Wang Fang owes 100 points (a granted 100 was spent, then reversed: allow_negative)
    member = wang_fang(siyu.session_factory)
    points_service.save_earn_rules(
        siyu.session_factory, data={"reversal_policy": "allow_negative"}, now=T0
    )
    points_service.grant(
        siyu.session_factory, member_id=member, points=100, reason="welcome",
        idempotency_key="welcome", now=T0,
    )  # fmt: skip
    points_service.spend(
        siyu.session_factory, member_id=member, points=100, idempotency_key="spend",
        reason="tea set", now=T0,
    )  # fmt: skip
    points_service.reverse(
        siyu.session_factory,
        member_id=member,
        original_key="welcome",
        idempotency_key="welcome:undo",
        now=T0,
        policy=ReversalPolicy.ALLOW_NEGATIVE,
    )
    assert points_service.balance(siyu.session_factory, member_id=member).points == -100
    # when an order paid 10 days ago (150 points, spendable at once) is earned
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id="SO-OLD",
        amount="150",
        paid_at=T0 - timedelta(days=10),
    )
    points_jobs.earn_for_orders(siyu.session_factory, since=SINCE, now=T0)
    # then the debt lot is repaid from the new lot and the balance is 50
    assert points_service.balance(siyu.session_factory, member_id=member).points == 50
    assert lots(siyu.session_factory, member) == [
        ("active", 100, 0),
        ("active", -100, 0),
        ("active", 150, 50),
    ]


def test_a_batch_upgrades_a_member_once_with_one_event(siyu: Siyu) -> None:
    # given a programme where ¥300 of spend makes a Bud member
    points_service.save_tier_rules(
        siyu.session_factory,
        data={
            "levels": [
                {"code": "leaf", "name": "Leaf", "threshold": 0},
                {"code": "bud", "name": "Bud", "threshold": 300, "multiplier": "1.5"},
            ]
        },
        now=T0,
    )
    member = wang_fang(siyu.session_factory)
    for n in range(4):
        paid_order(siyu.session_factory, member_id=member, order_id=f"SO-{n}", amount="100")
    # when the job runs twice
    for _ in range(2):
        points_jobs.earn_for_orders(siyu.session_factory, since=SINCE, now=T0)
    # then she is Bud after the batch (her orders earned at the Leaf rate) with one event
    status = points_service.tier_status(siyu.session_factory, member_id=member, now=T0)
    assert status.tier == "bud"
    assert len(events(siyu.session_factory, "tier_upgraded")) == 1
    assert entries(siyu.session_factory, member) == [("earn", 0, 100)] * 4
