"""Coupon states reach the warehouse's member_coupons on sync, and changes are re-copied."""

from __future__ import annotations

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.loyalty import service
from siyu.warehouse.sync import sync_all
from tests.integration.loyalty.coupon_fixtures import a_template, members, tea_cart


def test_sync_copies_coupons_and_their_later_redemption(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    with transaction(siyu.session_factory) as db:
        coupon = service.issue_coupon(
            db, template_code=code, member_id=wang_fang, idempotency_key="a", now=now
        )
    sync = dict(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    sync_all(**sync)  # type: ignore[arg-type]
    assert siyu.warehouse.query("SELECT coupon_id, template_code, state FROM member_coupons") == [
        (str(coupon.coupon_id), code, "available")
    ]
    with transaction(siyu.session_factory) as db:
        service.redeem_coupons(
            db,
            member_id=wang_fang,
            order_no="SO-1",
            cart=tea_cart(),
            now=now,
            coupon_ids=[coupon.coupon_id],
        )
    sync_all(**sync)  # type: ignore[arg-type]
    assert siyu.warehouse.query("SELECT state FROM member_coupons") == [("redeemed",)]
