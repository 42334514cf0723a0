"""Coupon issuing and the redemption protocol, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.ingest.models import Event
from siyu.loyalty import service
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import Coupon, CouponTemplate
from tests.integration.loyalty.coupon_fixtures import a_template, members, tea_cart


def test_issuing_twice_with_the_same_key_gives_one_coupon(siyu: Siyu) -> None:
    # given Demo Tea's 满100减20 template and member Wang Fang
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    # when the same request is sent twice
    for _ in range(2):
        with transaction(siyu.session_factory) as db:
            issued = service.issue_coupon(
                db, template_code=code, member_id=wang_fang, idempotency_key="req-1", now=now
            )
    # then one coupon exists, valid 30 days from now, and one coupon_issued event
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 1
        assert db.scalar(sa.select(CouponTemplate.issued_count)) == 1
        assert db.scalar(sa.select(sa.func.count()).where(Event.type == "coupon_issued")) == 1
    assert issued.created is False
    assert issued.valid_until - issued.valid_from == timedelta(days=30)


def test_a_claim_over_the_member_limit_is_refused_and_consumes_no_budget(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, budget_total=10, per_member_limit=1)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    with transaction(siyu.session_factory) as db:
        service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
    # when she claims a second time under another key
    with pytest.raises(LoyaltyError) as refused, transaction(siyu.session_factory) as db:
        service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="b", now=now
        )
    # then it is refused and the budget still shows one coupon issued
    assert refused.value.code == LoyaltyErrorCode.MEMBER_LIMIT_REACHED
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(CouponTemplate.issued_count)) == 1


def test_the_total_budget_stops_issuing(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, budget_total=1)
    wang_fang, li_na = members(siyu.session_factory, "Wang Fang", "Li Na")
    with transaction(siyu.session_factory) as db:
        service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
    with pytest.raises(LoyaltyError) as refused, transaction(siyu.session_factory) as db:
        service.issue_coupon(db, template_code=code, member_id=li_na, idempotency_key="a", now=now)
    assert refused.value.code == LoyaltyErrorCode.BUDGET_EXHAUSTED


def test_reserve_redeem_reverse_round_trip(siyu: Siyu) -> None:
    # given Wang Fang holds a 满100减20 coupon
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    with transaction(siyu.session_factory) as db:
        coupon = service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
    cart = tea_cart(12800)
    # when the POS lists, reserves and redeems it on order SO-1
    with transaction(siyu.session_factory) as db:
        usable = service.usable_coupons(db, member_id=wang_fang, cart=cart, now=now)
        service.reserve_coupons(
            db,
            member_id=wang_fang,
            coupon_ids=[coupon.coupon_id],
            order_no="SO-1",
            cart=cart,
            now=now,
        )
    with transaction(siyu.session_factory) as db:
        first = service.redeem_coupons(db, member_id=wang_fang, order_no="SO-1", cart=cart, now=now)
    with transaction(siyu.session_factory) as db:
        again = service.redeem_coupons(db, member_id=wang_fang, order_no="SO-1", cart=cart, now=now)
    # then 20 yuan came off, once
    assert [(q.coupon_id, q.discount_fen) for q in usable] == [(coupon.coupon_id, 2000)]
    assert [r.discount_fen for r in first] == [2000]
    assert again == first
    # when the order is refunded (twice, same refund number)
    for _ in range(2):
        with transaction(siyu.session_factory) as db:
            reversed_ = service.reverse_redemptions(db, order_no="SO-1", refund_no="RF-1", now=now)
    # then the coupon is back in the wallet, usable again
    assert [r.state for r in reversed_] == ["reversed"]
    with transaction(siyu.session_factory) as db:
        wallet = service.member_wallet(db, member_id=wang_fang, now=now)
        types = db.scalars(sa.select(Event.type).order_by(Event.id)).all()
    assert [w.state for w in wallet] == ["issued"]
    assert types == ["coupon_issued", "coupon_redeemed", "coupon_reversed"]


def test_a_timed_out_reservation_frees_the_coupon_for_another_order(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    cart = tea_cart()
    with transaction(siyu.session_factory) as db:
        coupon = service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
        service.reserve_coupons(
            db,
            member_id=wang_fang,
            coupon_ids=[coupon.coupon_id],
            order_no="SO-1",
            cart=cart,
            now=now,
            ttl_seconds=60,
        )
    # while it is held, another order cannot take it
    with pytest.raises(LoyaltyError) as refused, transaction(siyu.session_factory) as db:
        service.redeem_coupons(
            db,
            member_id=wang_fang,
            order_no="SO-2",
            cart=cart,
            now=now,
            coupon_ids=[coupon.coupon_id],
        )
    assert refused.value.code == LoyaltyErrorCode.COUPON_STATE_CONFLICT
    # after the timeout the worker hook releases it and SO-2 redeems it
    later = now + timedelta(seconds=61)
    assert service.run_coupon_housekeeping(session_factory=siyu.session_factory, now=later) == 1
    with transaction(siyu.session_factory) as db:
        done = service.redeem_coupons(
            db,
            member_id=wang_fang,
            order_no="SO-2",
            cart=cart,
            now=later,
            coupon_ids=[coupon.coupon_id],
        )
    assert [r.order_no for r in done] == ["SO-2"]


def test_bulk_issuance_respects_budget_and_is_resumable(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, budget_total=5)
    ids = members(siyu.session_factory, *[f"Member {i}" for i in range(8)])
    seen: list[int] = []
    report = service.issue_to_members(
        siyu.session_factory,
        template_code=code,
        member_ids=ids,
        key="vip-618",
        now=now,
        batch_size=3,
        progress=lambda r: seen.append(r.issued),
    )
    again = service.issue_to_members(
        siyu.session_factory, template_code=code, member_ids=ids, key="vip-618", now=now
    )
    assert (report.issued, report.skipped, report.budget_exhausted) == (5, 3, True)
    assert seen == [3, 5, 5]
    assert again.issued == 0
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 5
        assert db.scalar(sa.select(sa.func.count()).where(Event.type == "coupon_issued")) == 5
        assert db.scalar(sa.select(CouponTemplate.issued_count)) == 5


def test_expiring_coupons_are_announced_once(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, valid_days=5)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    with transaction(siyu.session_factory) as db:
        service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
    day3 = now + timedelta(days=3)
    assert service.run_coupon_housekeeping(session_factory=siyu.session_factory, now=day3) == 1
    assert service.run_coupon_housekeeping(session_factory=siyu.session_factory, now=day3) == 0
    # and after the validity it is expired
    assert (
        service.run_coupon_housekeeping(
            session_factory=siyu.session_factory, now=now + timedelta(days=6)
        )
        == 1
    )
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(Coupon.state)) == "expired"


def test_the_demo_offers_install_twice_without_duplicates(siyu: Siyu) -> None:
    from siyu.loyalty.demo_offers import install_demo_offers

    now = siyu.clock.now()
    ids = members(siyu.session_factory, *[f"Member {i}" for i in range(20)])
    first = install_demo_offers(siyu.session_factory, member_ids=ids, now=now)
    second = install_demo_offers(siyu.session_factory, member_ids=ids, now=now)
    assert first.issued + first.held_out == 20
    assert second.issued == 0
    with transaction(siyu.session_factory) as db:
        assert len(service.list_templates(db)) == 5
        pack = service.issue_pack(
            db, pack_code="NEW_MEMBER", member_id=ids[0], idempotency_key="signup", now=now
        )
    assert [c.template_code for c in pack] == ["NEW_CASH_10", "FREE_SHIP"]
