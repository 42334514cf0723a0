"""Concurrency against a real PostgreSQL server: threads, each with its own connection.
The redeem/refund rounds mix both redemption paths: one transaction per call, and the
RedemptionBatcher's shared writes (what the API uses).

SIYU_LOYALTY_STRESS_SECONDS / SIYU_LOYALTY_STRESS_ROUNDS raise the redeem/refund run to the
issue's 30 s × 10 (default 3 s × 3 keeps `make test` fast).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.clock import FixedClock
from siyu.db import create_session_factory, transaction
from siyu.loyalty import service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.models import Coupon, CouponRedemption, CouponTemplate
from siyu.loyalty.redemption_batch import RedemptionBatcher
from tests.conftest import POSTGRES_URL, require_real
from tests.integration.loyalty.coupon_fixtures import a_template, members, tea_cart

STRESS_SECONDS = float(os.environ.get("SIYU_LOYALTY_STRESS_SECONDS", "3"))
STRESS_ROUNDS = int(os.environ.get("SIYU_LOYALTY_STRESS_ROUNDS", "3"))


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    require_real("PostgreSQL", bool(POSTGRES_URL), "set SIYU_TEST_POSTGRES_URL")
    engine = sa.create_engine(postgres_url, pool_size=70, max_overflow=0)
    yield create_session_factory(engine)
    engine.dispose()


def _in_parallel(n: int, work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_64_parallel_claims_on_a_coupon_of_total_1_give_exactly_1(
    pg_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    # given a template with total 1 and per-member limit 1, and Wang Fang
    now = clock.now()
    code = a_template(pg_factory, now, budget_total=1, per_member_limit=1)
    (wang_fang,) = members(pg_factory, "Wang Fang")
    outcomes: list[str] = []

    def claim(i: int) -> None:
        try:
            with transaction(pg_factory) as db:
                service.issue_coupon(
                    db, template_code=code, member_id=wang_fang, idempotency_key=f"r{i}", now=now
                )
            outcomes.append("issued")
        except LoyaltyError as exc:
            outcomes.append(exc.code.value)

    # when 64 requests claim at the same instant
    _in_parallel(64, claim)
    # then exactly one coupon exists and 63 were refused with a reason
    assert outcomes.count("issued") == 1
    assert len(outcomes) == 64
    with transaction(pg_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 1
        assert db.scalar(sa.select(CouponTemplate.issued_count)) == 1


def test_64_members_racing_for_a_total_of_10_get_exactly_10(
    pg_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    now = clock.now()
    code = a_template(pg_factory, now, budget_total=10)
    ids = members(pg_factory, *[f"Member {i}" for i in range(64)])
    issued: list[int] = []

    def claim(i: int) -> None:
        try:
            with transaction(pg_factory) as db:
                service.issue_coupon(
                    db, template_code=code, member_id=ids[i], idempotency_key="618", now=now
                )
            issued.append(i)
        except LoyaltyError:
            pass

    _in_parallel(64, claim)
    assert len(issued) == 10
    with transaction(pg_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Coupon)) == 10


def _stress_round(
    factory: sessionmaker[Session], now: datetime, round_no: int, seconds: float
) -> int:
    code = a_template(factory, now, code=f"STRESS_{round_no}", budget_total=100)
    ids = members(factory, *[f"Member {round_no}-{i}" for i in range(16)])
    coupons = []
    for member_id in ids:
        with transaction(factory) as db:
            coupons.append(
                (
                    member_id,
                    service.issue_coupon(
                        db, template_code=code, member_id=member_id, idempotency_key="s", now=now
                    ).coupon_id,
                )
            )
    deadline = time.monotonic() + seconds
    done = [0]
    batcher = RedemptionBatcher(factory)

    def client(i: int) -> None:
        rnd = random.Random(i)
        n = 0
        while time.monotonic() < deadline:
            member_id, coupon_id = rnd.choice(coupons)
            order = f"R{round_no}-C{i}-{n}"
            n += 1
            try:
                if i % 2:  # odd clients alone, even ones through the batcher (the API's path)
                    with transaction(factory) as db:
                        service.redeem_coupons(
                            db,
                            member_id=member_id,
                            order_no=order,
                            cart=tea_cart(),
                            now=now,
                            coupon_ids=[coupon_id],
                        )
                else:
                    batcher.redeem(
                        member_id=member_id,
                        order_no=order,
                        cart=tea_cart(),
                        now=now,
                        coupon_ids=[coupon_id],
                    )
                done[0] += 1
                if rnd.random() < 0.8:
                    with transaction(factory) as db:
                        service.reverse_redemptions(
                            db, order_no=order, refund_no=f"RF-{order}", now=now
                        )
            except LoyaltyError:
                pass

    _in_parallel(32, client)
    _assert_invariants(factory, code)
    return done[0]


def _assert_invariants(factory: sessionmaker[Session], code: str) -> None:
    with transaction(factory) as db:
        template = db.scalar(sa.select(CouponTemplate).where(CouponTemplate.code == code))
        assert template is not None
        rows = db.execute(
            sa.select(Coupon.id, Coupon.state).where(Coupon.template_id == template.id)
        ).all()
        active = dict(
            db.execute(
                sa.select(CouponRedemption.coupon_id, sa.func.count())
                .where(CouponRedemption.template_id == template.id, CouponRedemption.active == 1)
                .group_by(CouponRedemption.coupon_id)
            ).all()
        )
    assert template.issued_count == len(rows) <= (template.budget_total or 0)
    for coupon_id, state in rows:
        # a coupon is redeemed exactly when it has one standing redemption
        assert active.get(coupon_id, 0) == (1 if state == "redeemed" else 0)


def test_32_clients_redeeming_and_refunding_keep_the_invariants(
    pg_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    now = clock.now()
    redeemed = [_stress_round(pg_factory, now, r, STRESS_SECONDS) for r in range(STRESS_ROUNDS)]
    assert all(n > 0 for n in redeemed)
