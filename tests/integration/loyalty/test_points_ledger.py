"""The points ledger on SQLite and PostgreSQL: lots, spends, reversals, expiry, events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from siyu.bootstrap import Siyu
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.earn_rules import Behaviour
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.ledger import ReversalPolicy

from .points_fixtures import T0, entries, events, lots, paid_order, wang_fang


def _grant(siyu: Siyu, member_id: int, points: int, key: str, at=T0) -> None:  # type: ignore[no-untyped-def]
    points_service.grant(
        siyu.session_factory,
        member_id=member_id,
        points=points,
        reason="welcome",
        idempotency_key=key,
        now=at,
    )


def test_a_spend_draws_the_soonest_expiring_lot_first(siyu: Siyu) -> None:
    # given Wang Fang earned 100 points a month ago and 50 today (both expire after 365 days)
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-old", at=T0 - timedelta(days=30))
    _grant(siyu, member, 50, "grant-new")
    # when she spends 120
    result = points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=120,
        idempotency_key="spend-1",
        reason="tea set",
        now=T0,
    )
    # then the old lot is emptied and 20 come from the new one
    assert result.balance == 30
    assert lots(siyu.session_factory, member) == [("active", 100, 0), ("active", 50, 30)]


def test_a_spend_beyond_the_balance_is_refused_and_writes_nothing(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    with pytest.raises(LoyaltyError) as refused:
        points_service.spend(
            siyu.session_factory,
            member_id=member,
            points=101,
            idempotency_key="spend-1",
            reason="tea set",
            now=T0,
        )
    assert refused.value.code == LoyaltyErrorCode.INSUFFICIENT_POINTS
    assert entries(siyu.session_factory, member) == [("earn", 100, 0)]
    assert events(siyu.session_factory, "points_spent") == []


def test_replaying_a_spend_key_changes_nothing(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    first = points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=40,
        idempotency_key="pos-0001",
        reason="tea",
        now=T0,
    )
    again = points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=40,
        idempotency_key="pos-0001",
        reason="tea",
        now=T0,
    )
    assert (again.entry_id, again.created, again.balance) == (first.entry_id, False, 60)
    assert entries(siyu.session_factory, member) == [("earn", 100, 0), ("spend", -40, 0)]


def test_order_points_are_pending_until_the_refund_window_passes(siyu: Siyu) -> None:
    # given Wang Fang paid ¥128.50 today (1 point per yuan, 7 pending days by default)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="128.50")
    # when the worker hook runs today and again 7 days later
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0)
    pending = points_service.balance(siyu.session_factory, member_id=member)
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0 + timedelta(days=7))
    active = points_service.balance(siyu.session_factory, member_id=member)
    # then 128 points were pending, then spendable
    assert (pending.points, pending.pending) == (0, 128)
    assert (active.points, active.pending) == (128, 0)
    assert [e for e, _ in events(siyu.session_factory, "points_earned")] == [
        "points_earned:order:SO-1:1"
    ]


def test_a_refund_inside_the_window_cancels_the_pending_points(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="80")
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0)
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id="SO-1",
        amount="80",
        line_no=2,
        status="refunded",
        paid_at=T0 + timedelta(days=2),
    )
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0 + timedelta(days=2))
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0 + timedelta(days=9))
    assert points_service.balance(siyu.session_factory, member_id=member).points == 0
    assert entries(siyu.session_factory, member) == [("earn", 0, 80), ("reverse", 0, -80)]
    assert lots(siyu.session_factory, member) == [("reversed", 80, 0)]


def test_within_balance_reversal_takes_what_is_left_and_writes_off_the_rest(siyu: Siyu) -> None:
    # given 100 granted points of which 70 were spent
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=70,
        idempotency_key="spend-1",
        reason="tea",
        now=T0,
    )
    # when the grant is reversed under within_balance
    result = points_service.reverse(
        siyu.session_factory,
        member_id=member,
        original_key="grant-1",
        idempotency_key="grant-1:undo",
        now=T0,
        policy=ReversalPolicy.WITHIN_BALANCE,
    )
    # then 30 are taken back and 70 written off
    assert (result.points, result.balance, result.written_off) == (-30, 0, 70)


def test_allow_negative_reversal_leaves_a_debt_that_the_next_earning_repays(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=70,
        idempotency_key="spend-1",
        reason="tea",
        now=T0,
    )
    result = points_service.reverse(
        siyu.session_factory,
        member_id=member,
        original_key="grant-1",
        idempotency_key="grant-1:undo",
        now=T0,
        policy=ReversalPolicy.ALLOW_NEGATIVE,
    )
    assert result.balance == -70
    _grant(siyu, member, 50, "grant-2")
    assert points_service.balance(siyu.session_factory, member_id=member).points == -20
    assert lots(siyu.session_factory, member) == [
        ("active", 100, 0),
        ("active", -70, -20),
        ("active", 50, 0),
    ]


def test_only_pending_policy_writes_off_points_already_spendable(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    result = points_service.reverse(
        siyu.session_factory,
        member_id=member,
        original_key="grant-1",
        idempotency_key="grant-1:undo",
        now=T0,
        policy=ReversalPolicy.ONLY_PENDING,
    )
    assert (result.points, result.balance, result.written_off) == (0, 100, 100)


def test_reversing_a_spend_gives_its_points_back_to_the_same_lots(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=60,
        idempotency_key="spend-1",
        reason="tea",
        now=T0,
    )
    result = points_service.reverse(
        siyu.session_factory,
        member_id=member,
        original_key="spend-1",
        idempotency_key="spend-1:refund",
        now=T0,
    )
    assert (result.kind, result.points, result.balance) == ("restore", 60, 100)
    assert lots(siyu.session_factory, member) == [("active", 100, 100)]


def test_lots_expire_and_members_are_reminded_once_before(siyu: Siyu) -> None:
    # given 100 points granted today expire in 365 days (reminder 30 days before)
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-1")
    # when the jobs run 340 days later, twice, and then after the expiry
    for days in (340, 341, 365):
        points_jobs.run_points_jobs(
            session_factory=siyu.session_factory, now=T0 + timedelta(days=days)
        )
    # then one reminder was sent and the points expired
    reminders = events(siyu.session_factory, "points_expiring")
    assert [props["points"] for _, props in reminders] == [100]
    assert points_service.balance(siyu.session_factory, member_id=member).points == 0
    assert entries(siyu.session_factory, member)[-1] == ("expire", -100, 0)


def test_a_spend_never_draws_a_lot_past_its_expiry(siyu: Siyu) -> None:
    # given a lot that expired yesterday but no job has run since
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 100, "grant-old", at=T0 - timedelta(days=366))
    _grant(siyu, member, 30, "grant-new")
    with pytest.raises(LoyaltyError):
        points_service.spend(
            siyu.session_factory,
            member_id=member,
            points=50,
            idempotency_key="spend-1",
            reason="tea",
            now=T0,
        )
    result = points_service.spend(
        siyu.session_factory,
        member_id=member,
        points=30,
        idempotency_key="spend-2",
        reason="tea",
        now=T0,
    )
    assert result.balance == 0


def test_sign_in_streak_earns_the_weekly_bonus_on_day_seven(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    earned = [
        points_service.earn_for_behaviour(
            siyu.session_factory,
            member_id=member,
            behaviour=Behaviour.SIGN_IN,
            idempotency_key=f"signin:{day}",
            now=T0 + timedelta(days=day),
        ).points
        for day in range(7)
    ]
    assert earned == [5, 5, 5, 5, 5, 5, 25]


def test_shares_beyond_the_daily_cap_are_refused(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    for n in range(3):
        points_service.earn_for_behaviour(
            siyu.session_factory,
            member_id=member,
            behaviour=Behaviour.SHARE,
            idempotency_key=f"share:{n}",
            now=T0,
        )
    with pytest.raises(LoyaltyError) as refused:
        points_service.earn_for_behaviour(
            siyu.session_factory,
            member_id=member,
            behaviour=Behaviour.SHARE,
            idempotency_key="share:4",
            now=T0,
        )
    assert refused.value.code == LoyaltyErrorCode.DAILY_CAP_REACHED
    assert points_service.balance(siyu.session_factory, member_id=member).points == 30


def test_points_and_cash_spends_points_worth_part_of_the_total(siyu: Siyu) -> None:
    member = wang_fang(siyu.session_factory)
    _grant(siyu, member, 1000, "grant-1")
    paid = points_service.pay_with_points(
        siyu.session_factory,
        member_id=member,
        total_fen=3900,
        points=500,
        idempotency_key="pos-7",
        now=T0,
    )
    assert (paid.points_value_fen, paid.cash_fen, paid.entry.balance) == (500, 3400, 500)
