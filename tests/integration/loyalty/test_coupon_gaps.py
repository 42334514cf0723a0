"""Pausing templates, refunded orders, stamp-card reward coupons, points for coupons and tier
upgrade coupons — the joints between coupons and points, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.ingest.models import Event
from siyu.loyalty import points_jobs, points_service, service, template_admin
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import Coupon
from siyu.loyalty.stamps import StampCardSpec
from tests.integration.loyalty.coupon_fixtures import a_template, members, tea_cart
from tests.integration.loyalty.points_fixtures import T0, paid_order


def _claim(siyu: Siyu, code: str, member: int, key: str) -> int:
    with transaction(siyu.session_factory) as db:
        return service.issue_coupon(
            db, template_code=code, member_id=member, idempotency_key=key, now=siyu.clock.now()
        ).coupon_id


def _pause(siyu: Siyu, code: str) -> str:
    with transaction(siyu.session_factory) as db:
        return template_admin.pause_template(db, code=code, now=siyu.clock.now(), actor="hq")


def _resume(siyu: Siyu, code: str) -> str:
    with transaction(siyu.session_factory) as db:
        return template_admin.resume_template(db, code=code, now=siyu.clock.now(), actor="hq")


def _coupon_states(siyu: Siyu, member: int) -> list[str]:
    with siyu.session_factory() as db:
        query = sa.select(Coupon.state).where(Coupon.member_id == member).order_by(Coupon.id)
        return list(db.scalars(query))


def test_a_paused_template_issues_nothing_but_its_coupons_stay_usable(siyu: Siyu) -> None:
    # given Wang Fang holds a 满100减20 coupon and the template is then paused
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, per_member_limit=3)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _claim(siyu, code, wang_fang, "first")
    assert _pause(siyu, code) == "paused"
    # when another claim comes in, then it is refused
    with pytest.raises(LoyaltyError) as refused:
        _claim(siyu, code, wang_fang, "second")
    assert refused.value.code == LoyaltyErrorCode.TEMPLATE_INACTIVE
    # and her coupon still redeems at the till
    with transaction(siyu.session_factory) as db:
        (done,) = service.redeem_coupons(
            db, member_id=wang_fang, order_no="SO-1", cart=tea_cart(), now=now, coupon_ids=[coupon]
        )
    assert done.discount_fen == 2000
    assert _resume(siyu, code) == "active"
    assert _claim(siyu, code, wang_fang, "third") > coupon


def test_pausing_twice_changes_nothing_the_second_time(siyu: Siyu) -> None:
    code = a_template(siyu.session_factory, siyu.clock.now())
    assert [_pause(siyu, code), _pause(siyu, code)] == ["paused", "paused"]
    with siyu.session_factory() as db:
        actions = db.scalars(sa.text("SELECT action FROM audit_log ORDER BY id")).all()
    assert [a for a in actions if a.startswith("coupon_template.")] == [
        "coupon_template.create",
        "coupon_template.pause",
    ]


def test_a_pause_stops_a_running_bulk_issuance_which_finishes_after_resume(siyu: Siyu) -> None:
    # given eight members and an issuance in batches of three, paused after its first batch
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    ids = members(siyu.session_factory, *[f"Member {i}" for i in range(8)])

    def pause_after_first_batch(report: service.IssuanceReport) -> None:
        if report.issued == 3:
            _pause(siyu, code)

    with pytest.raises(LoyaltyError) as stopped:
        service.issue_to_members(
            siyu.session_factory, template_code=code, member_ids=ids, key="vip", now=now,
            batch_size=3, progress=pause_after_first_batch,
        )  # fmt: skip
    # then only the first batch was issued; after resume the same key issues the rest once
    assert stopped.value.code == LoyaltyErrorCode.TEMPLATE_INACTIVE
    with siyu.session_factory() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 3
    _resume(siyu, code)
    rest = service.issue_to_members(
        siyu.session_factory, template_code=code, member_ids=ids, key="vip", now=now
    )
    assert rest.issued == 5
    with siyu.session_factory() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 8


def test_redeeming_a_refunded_order_again_is_refused_with_a_clear_error(siyu: Siyu) -> None:
    # given Wang Fang's coupon was redeemed on SO-1 and SO-1 was refunded
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _claim(siyu, code, wang_fang, "k")
    with transaction(siyu.session_factory) as db:
        service.redeem_coupons(
            db, member_id=wang_fang, order_no="SO-1", cart=tea_cart(), now=now, coupon_ids=[coupon]
        )
        service.reverse_redemptions(db, order_no="SO-1", refund_no="RF-1", now=now)
    # when the till sends SO-1 again, then it is refused as a refunded order (no unique error)
    with pytest.raises(LoyaltyError) as refused, transaction(siyu.session_factory) as db:
        service.redeem_coupons(
            db, member_id=wang_fang, order_no="SO-1", cart=tea_cart(), now=now, coupon_ids=[coupon]
        )
    assert refused.value.code == LoyaltyErrorCode.ORDER_REVERSED
    # and the coupon is back in her wallet for a new order number
    with transaction(siyu.session_factory) as db:
        (again,) = service.redeem_coupons(
            db, member_id=wang_fang, order_no="SO-2", cart=tea_cart(), now=now, coupon_ids=[coupon]
        )
    assert again.coupon_id == coupon


def _card_with_coupon(siyu: Siyu) -> tuple[int, str]:
    code = a_template(siyu.session_factory, T0, code="FREE_TEA", name="Free tea", kind="cash",
                      threshold_fen=0, value_fen=1500)  # fmt: skip
    card = StampCardSpec(
        code="TEA3", name="3 teas", stamps_required=3, category="tea", reward_coupon=code
    )
    points_service.create_stamp_card(siyu.session_factory, spec=card, now=T0)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    for n in range(3):
        paid_order(siyu.session_factory, member_id=wang_fang, order_id=f"SO-{n}", amount="25")
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=T0)
    return wang_fang, code


def _refund(siyu: Siyu, member: int, order: str, day: int) -> None:
    at = T0 + timedelta(days=day)
    paid_order(siyu.session_factory, member_id=member, order_id=order, amount="25", line_no=2,
               status="refunded", paid_at=at)  # fmt: skip
    points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=at)


def test_a_refund_voids_the_unused_reward_coupon_of_a_stamp_card(siyu: Siyu) -> None:
    # given three tea orders completed the card and gave Wang Fang a free-tea coupon
    wang_fang, _ = _card_with_coupon(siyu)
    assert _coupon_states(siyu, wang_fang) == ["issued"]
    # when one of the orders is refunded
    _refund(siyu, wang_fang, "SO-1", 1)
    # then the unused coupon is voided, with a coupon_voided event
    assert _coupon_states(siyu, wang_fang) == ["voided"]
    with siyu.session_factory() as db:
        assert db.scalar(sa.select(sa.func.count()).where(Event.type == "coupon_voided")) == 1


def test_a_refund_keeps_a_reward_coupon_that_was_already_used(siyu: Siyu) -> None:
    wang_fang, _ = _card_with_coupon(siyu)
    with siyu.session_factory() as db:
        coupon = db.scalar(sa.select(Coupon.id).where(Coupon.member_id == wang_fang))
    assert coupon is not None
    with transaction(siyu.session_factory) as db:
        service.redeem_coupons(
            db, member_id=wang_fang, order_no="SO-9", cart=tea_cart(), now=T0, coupon_ids=[coupon]
        )
    _refund(siyu, wang_fang, "SO-1", 1)
    assert _coupon_states(siyu, wang_fang) == ["redeemed"]


def test_points_buy_a_coupon_once_per_request(siyu: Siyu) -> None:
    # given Wang Fang has 500 points and a 满100减20 coupon costs 300 points
    code = a_template(siyu.session_factory, T0)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    points_service.save_earn_rules(
        siyu.session_factory, data={"coupon_prices": {code: 300}}, now=T0
    )
    points_service.grant(siyu.session_factory, member_id=wang_fang, points=500, reason="welcome",
                         idempotency_key="welcome", now=T0)  # fmt: skip
    # when she exchanges twice with the same request number
    for _ in range(2):
        result, coupon = points_service.redeem_for_coupon(
            siyu.session_factory, member_id=wang_fang, coupon_code=code,
            idempotency_key="mall-001", now=T0,
        )  # fmt: skip
    # then 300 points were spent once and she holds one coupon
    assert result.balance == 200
    assert coupon.startswith(f"coupon {code} #")
    assert _coupon_states(siyu, wang_fang) == ["issued"]


def test_too_few_points_buy_nothing(siyu: Siyu) -> None:
    code = a_template(siyu.session_factory, T0)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    points_service.save_earn_rules(
        siyu.session_factory, data={"coupon_prices": {code: 300}}, now=T0
    )
    points_service.grant(siyu.session_factory, member_id=wang_fang, points=100, reason="welcome",
                         idempotency_key="welcome", now=T0)  # fmt: skip
    with pytest.raises(LoyaltyError) as refused:
        points_service.redeem_for_coupon(
            siyu.session_factory, member_id=wang_fang, coupon_code=code,
            idempotency_key="mall-001", now=T0,
        )  # fmt: skip
    assert refused.value.code == LoyaltyErrorCode.INSUFFICIENT_POINTS
    assert _coupon_states(siyu, wang_fang) == []
    assert points_service.balance(siyu.session_factory, member_id=wang_fang).points == 100


def test_a_tier_upgrade_issues_the_levels_upgrade_coupons_once(siyu: Siyu) -> None:
    # given the Bud level (≥ 300 points earned) gives a 满100减20 coupon on upgrade
    code = a_template(siyu.session_factory, T0)
    rules = {
        "measure": "points_earned",
        "levels": [
            {"code": "leaf", "name": "Leaf", "threshold": 0},
            {"code": "bud", "name": "Bud", "threshold": 300, "upgrade_coupons": [code]},
        ],
    }
    points_service.save_tier_rules(siyu.session_factory, data=rules, now=T0)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    # when she is granted 350 points, then recomputed again
    points_service.grant(siyu.session_factory, member_id=wang_fang, points=350, reason="welcome",
                         idempotency_key="welcome", now=T0)  # fmt: skip
    points_jobs.recompute_tiers(siyu.session_factory, now=T0)
    # then she is Bud and holds one upgrade coupon
    status = points_service.tier_status(siyu.session_factory, member_id=wang_fang, now=T0)
    assert status.tier == "bud"
    assert _coupon_states(siyu, wang_fang) == ["issued"]
