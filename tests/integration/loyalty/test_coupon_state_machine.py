"""Hypothesis stateful test of coupons: random claims, reservations, redemptions, releases,
refunds and time passing, with the invariants of issue #7 checked after every step."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy.pool import StaticPool

from siyu.db import Base, create_session_factory, transaction
from siyu.identity.models import Member
from siyu.ingest.models import Event
from siyu.loyalty import service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.models import Coupon, CouponRedemption, CouponTemplate
from siyu.model_registry import load_all_models
from tests.integration.loyalty.coupon_fixtures import SPEND_100_SAVE_20, tea_cart

T0 = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
BUDGET, LIMIT, MEMBERS = 6, 2, 3
_TABLES = (CouponTemplate, Coupon, CouponRedemption, Event)


class CouponMachine(RuleBasedStateMachine):
    @initialize()
    def a_brand_with_one_template(self) -> None:
        load_all_models()
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        Base.metadata.create_all(engine)
        self.factory = create_session_factory(engine)
        self.now = T0
        self.orders = 0
        with transaction(self.factory) as db:
            self.members = []
            for i in range(MEMBERS):
                row = Member(name=f"M{i}", registered_at=T0, created_at=T0, updated_at=T0)
                db.add(row)
                db.flush()
                self.members.append(row.id)
            spec = {
                **SPEND_100_SAVE_20,
                "budget_total": BUDGET,
                "per_member_limit": LIMIT,
                "valid_days": 3,
            }
            service.create_template(db, spec=spec, now=T0, actor="test")

    def _snapshot(self) -> list[Any]:
        with transaction(self.factory) as db:
            return [db.execute(sa.select(t.__table__)).all() for t in _TABLES]

    def _attempt(self, use_case: Any) -> None:
        """Run a use case; if it is refused, nothing at all may have changed."""
        before = self._snapshot()
        try:
            with transaction(self.factory) as db:
                use_case(db)
        except LoyaltyError:
            assert self._snapshot() == before

    def _coupon_of(self, member: int, pick: int) -> list[int]:
        with transaction(self.factory) as db:
            ids = db.scalars(sa.select(Coupon.id).where(Coupon.member_id == member)).all()
        return [ids[pick % len(ids)]] if ids else []

    @rule(member=st.integers(0, MEMBERS - 1), key=st.sampled_from(["a", "b", "c"]))
    def claim(self, member: int, key: str) -> None:
        self._attempt(
            lambda db: service.issue_coupon(
                db,
                template_code="TEA_100_20",
                member_id=self.members[member],
                idempotency_key=key,
                now=self.now,
            )
        )

    @rule(
        member=st.integers(0, MEMBERS - 1),
        pick=st.integers(0, 5),
        reserve=st.booleans(),
        amount=st.sampled_from([5000, 12800]),
    )
    def pay(self, member: int, pick: int, reserve: bool, amount: int) -> None:
        ids = self._coupon_of(self.members[member], pick)
        if not ids:
            return
        self.orders += 1
        order = f"SO-{self.orders}"
        m, cart = self.members[member], tea_cart(amount)
        if reserve:
            self._attempt(
                lambda db: service.reserve_coupons(
                    db,
                    member_id=m,
                    coupon_ids=ids,
                    order_no=order,
                    cart=cart,
                    now=self.now,
                    ttl_seconds=600,
                )
            )
            self._attempt(
                lambda db: service.redeem_coupons(
                    db, member_id=m, order_no=order, cart=cart, now=self.now
                )
            )
        else:
            self._attempt(
                lambda db: service.redeem_coupons(
                    db, member_id=m, order_no=order, cart=cart, now=self.now, coupon_ids=ids
                )
            )

    @rule(member=st.integers(0, MEMBERS - 1), pick=st.integers(0, 5))
    def hold_and_abandon(self, member: int, pick: int) -> None:
        ids = self._coupon_of(self.members[member], pick)
        if ids:
            self.orders += 1
            self._attempt(
                lambda db: service.reserve_coupons(
                    db,
                    member_id=self.members[member],
                    coupon_ids=ids,
                    order_no=f"SO-{self.orders}",
                    cart=tea_cart(),
                    now=self.now,
                    ttl_seconds=600,
                )
            )

    @rule(order=st.integers(1, 20), twice=st.booleans())
    def refund(self, order: int, twice: bool) -> None:
        for _ in range(2 if twice else 1):
            self._attempt(
                lambda db: service.reverse_redemptions(
                    db, order_no=f"SO-{order}", refund_no=f"RF-{order}", now=self.now
                )
            )

    @rule(order=st.integers(1, 20))
    def release(self, order: int) -> None:
        self._attempt(lambda db: service.release_coupons(db, order_no=f"SO-{order}", now=self.now))

    @rule(minutes=st.sampled_from([5, 15, 60 * 24]))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        service.run_coupon_housekeeping(session_factory=self.factory, now=self.now)

    @invariant()
    def limits_hold(self) -> None:
        if not hasattr(self, "factory"):
            return
        with transaction(self.factory) as db:
            issued = db.scalar(sa.select(CouponTemplate.issued_count))
            per_member = db.execute(
                sa.select(Coupon.member_id, sa.func.count()).group_by(Coupon.member_id)
            ).all()
            total = db.scalar(sa.select(sa.func.count()).select_from(Coupon))
        assert issued == total <= BUDGET
        assert all(n <= LIMIT for _, n in per_member)

    @invariant()
    def a_coupon_is_redeemed_at_most_once_and_exactly_when_redeemed(self) -> None:
        if not hasattr(self, "factory"):
            return
        with transaction(self.factory) as db:
            states = dict(db.execute(sa.select(Coupon.id, Coupon.state)).all())
            standing = db.execute(
                sa.select(CouponRedemption.coupon_id, sa.func.count())
                .where(CouponRedemption.active == 1)
                .group_by(CouponRedemption.coupon_id)
            ).all()
        counts = dict(standing)
        assert all(n == 1 for n in counts.values())
        assert {c for c, s in states.items() if s == "redeemed"} == set(counts)


CouponMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SIYU_LOYALTY_HYPOTHESIS_EXAMPLES", "10")),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_coupon_state_machine = CouponMachine.TestCase
