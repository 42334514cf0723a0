"""Tiers with an injected clock: upgrade at once, warning before the period end, downgrade."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from siyu.bootstrap import Siyu
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode

from .points_fixtures import T0, events, paid_order, wang_fang

PROGRAM: dict[str, Any] = {
    "measure": "spend",
    "window": "rolling",
    "window_days": 365,
    "period_days": 365,
    "downgrade": "one_step",
    "warning_days": 30,
    "levels": [
        {"code": "mini", "name": "Mini member", "threshold": 0},
        {"code": "big", "name": "Big member", "threshold": 500, "multiplier": "1.5"},
        {
            "code": "vip",
            "name": "VIP",
            "threshold": 2000,
            "multiplier": 2,
            "member_day_weekday": 1,
            "member_day_multiplier": 2,
            "perks": ["free delivery"],
        },
    ],
}


def _program(siyu: Siyu, **changes: Any) -> None:
    points_service.save_tier_rules(siyu.session_factory, data={**PROGRAM, **changes}, now=T0)


def _run(siyu: Siyu, days: int) -> None:
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0 + timedelta(days=days))


def _tier(siyu: Siyu, member: int, days: int = 0) -> str | None:
    now = T0 + timedelta(days=days)
    return points_service.tier_status(siyu.session_factory, member_id=member, now=now).tier


def test_a_member_is_upgraded_as_soon_as_her_spend_qualifies(siyu: Siyu) -> None:
    _program(siyu)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="620.00")
    _run(siyu, 0)
    assert _tier(siyu, member) == "big"
    assert [p["to_tier"] for _, p in events(siyu.session_factory, "tier_upgraded")] == ["big"]


def test_the_tier_multiplier_applies_to_later_orders(siyu: Siyu) -> None:
    _program(siyu)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="600")
    _run(siyu, 0)
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id="SO-2",
        amount="100",
        paid_at=T0 + timedelta(days=1),
    )
    _run(siyu, 1)
    pending = points_service.balance(siyu.session_factory, member_id=member).pending
    assert pending == 600 + 150


def test_a_vip_whose_spend_leaves_the_window_drops_one_step_at_period_end(siyu: Siyu) -> None:
    # given Wang Fang became VIP today with ¥2,100 and buys nothing more
    _program(siyu)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="2100")
    _run(siyu, 0)
    # when the jobs run 340 and 341 days later (her spend is still in the window until day 365)
    _run(siyu, 340)
    # … the spend leaves the rolling window on day 365, the period ends the same day
    _run(siyu, 366)
    # then no warning was due while she still qualified; she drops one step at period end
    assert events(siyu.session_factory, "tier_downgrade_warning") == []
    assert _tier(siyu, member, 366) == "big"
    downgrades = events(siyu.session_factory, "tier_downgraded")
    assert [(p["from_tier"], p["to_tier"]) for _, p in downgrades] == [("vip", "big")]


def test_a_member_falling_short_is_warned_once_before_the_downgrade(siyu: Siyu) -> None:
    # given a 180-day window and a 365-day period: the spend leaves the window long before
    _program(siyu, window_days=180, downgrade="to_qualifying")
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="2100")
    _run(siyu, 0)
    # when the jobs run during the warning window, twice, and after the period end
    _run(siyu, 340)
    _run(siyu, 341)
    _run(siyu, 365)
    # then one warning, then straight to the qualifying level (mini)
    warnings = events(siyu.session_factory, "tier_downgrade_warning")
    assert [(p["from_tier"], p["to_tier"]) for _, p in warnings] == [("vip", "mini")]
    assert _tier(siyu, member, 365) == "mini"


def test_a_member_who_still_qualifies_keeps_her_tier_for_another_period(siyu: Siyu) -> None:
    _program(siyu)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="800")
    _run(siyu, 0)
    paid_order(
        siyu.session_factory,
        member_id=member,
        order_id="SO-2",
        amount="600",
        paid_at=T0 + timedelta(days=300),
    )
    _run(siyu, 300)
    _run(siyu, 365)
    status = points_service.tier_status(
        siyu.session_factory, member_id=member, now=T0 + timedelta(days=365)
    )
    assert status.tier == "big"
    assert status.period_end == T0 + timedelta(days=730)
    assert events(siyu.session_factory, "tier_downgraded") == []


def test_member_day_doubles_the_vip_multiplier(siyu: Siyu) -> None:
    _program(siyu)
    member = wang_fang(siyu.session_factory)
    paid_order(siyu.session_factory, member_id=member, order_id="SO-1", amount="2000")
    _run(siyu, 0)
    tuesday = T0 + timedelta(days=5)  # 2026-06-23 is a Tuesday
    status = points_service.tier_status(siyu.session_factory, member_id=member, now=tuesday)
    assert (status.tier, status.multiplier, status.perks) == ("vip", 4, ["free delivery"])


def test_levels_out_of_order_are_refused(siyu: Siyu) -> None:
    with pytest.raises(LoyaltyError) as refused:
        _program(siyu, levels=[{"code": "big", "name": "Big", "threshold": 500}])
    assert refused.value.code == LoyaltyErrorCode.INVALID_RULES
    assert "threshold 0" in refused.value.message
