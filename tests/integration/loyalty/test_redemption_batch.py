"""The redemption batcher (group commit): on SQLite and PostgreSQL every request gets exactly
the outcome `redeem_coupons` would give it alone; on PostgreSQL concurrent requests share
writes without ever redeeming a coupon twice."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.db import create_session_factory, transaction
from siyu.ingest.models import Event
from siyu.loyalty import service
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import Coupon, CouponRedemption
from siyu.loyalty.redemption import RedemptionRecord
from siyu.loyalty.redemption_batch import RedemptionBatcher, RedemptionRequest
from tests.conftest import POSTGRES_URL, require_real
from tests.integration.loyalty.coupon_fixtures import a_template, members, tea_cart


def _coupon(siyu: Siyu, code: str, member_id: int, key: str = "a") -> int:
    with transaction(siyu.session_factory) as db:
        issued = service.issue_coupon(
            db, template_code=code, member_id=member_id, idempotency_key=key, now=siyu.clock.now()
        )
    return issued.coupon_id


def _ask(
    siyu: Siyu, member_id: int, order_no: str, *coupon_ids: int, **cart: int
) -> RedemptionRequest:
    return RedemptionRequest(
        member_id=member_id,
        order_no=order_no,
        cart=tea_cart(**cart),
        now=siyu.clock.now(),
        coupon_ids=list(coupon_ids) if coupon_ids else None,
    )


def _code(outcome: list[RedemptionRecord] | LoyaltyError) -> str:
    return outcome.code.value if isinstance(outcome, LoyaltyError) else "redeemed"


def test_each_request_in_a_batch_gets_its_own_outcome(siyu: Siyu) -> None:
    # given Wang Fang holds two 满100减20 coupons and Li Lei one
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, per_member_limit=2)
    wang_fang, li_lei = members(siyu.session_factory, "Wang Fang", "Li Lei")
    first, second = _coupon(siyu, code, wang_fang, "a"), _coupon(siyu, code, wang_fang, "b")
    li_leis = _coupon(siyu, code, li_lei)
    # when one batch carries a good request, someone else's coupon, a cart under the
    # threshold and a second order for a coupon the batch already uses
    outcomes = siyu.redemptions.redeem_batch(
        [
            _ask(siyu, wang_fang, "SO-1", first),
            _ask(siyu, wang_fang, "SO-2", li_leis),
            _ask(siyu, wang_fang, "SO-3", second, amount_fen=5000),
            _ask(siyu, wang_fang, "SO-4", first),
        ]
    )
    # then only the first is redeemed, and each refusal says why
    assert [_code(o) for o in outcomes] == [
        "redeemed",
        "coupon_not_found",
        "coupon_not_usable",
        "coupon_state_conflict",
    ]
    redeemed = outcomes[0]
    assert isinstance(redeemed, list)
    assert [(r.coupon_id, r.order_no, r.discount_fen) for r in redeemed] == [(first, "SO-1", 2000)]
    with transaction(siyu.session_factory) as db:
        states = dict(db.execute(sa.select(Coupon.id, Coupon.state)).all())
    assert states == {first: "redeemed", second: "issued", li_leis: "issued"}
    # (on PostgreSQL the three that named a fresh coupon and order shared one write)
    assert siyu.redemptions.batches == (1 if siyu.engine.dialect.name == "postgresql" else 0)


def test_a_batched_redemption_writes_the_redemption_and_its_event(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _coupon(siyu, code, wang_fang)
    (outcome,) = siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", coupon)])
    assert isinstance(outcome, list)
    with transaction(siyu.session_factory) as db:
        redemption = db.scalars(sa.select(CouponRedemption)).one()
        event = db.scalars(sa.select(Event).where(Event.type == "coupon_redeemed")).one()
    assert (redemption.id, redemption.order_no, redemption.store_code) == (
        outcome[0].redemption_id,
        "SO-1",
        "SH001",
    )
    assert redemption.order_amount_fen == 12800 and redemption.redeemed_at == now
    assert event.event_id == f"coupon_redeemed:{redemption.id}"
    assert event.member_id == wang_fang and event.occurred_at == now
    assert event.properties == {
        "coupon_id": coupon,
        "template_code": code,
        "order_no": "SO-1",
        "discount_fen": 2000,
    }


def test_replaying_an_order_in_a_batch_returns_its_first_redemption(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _coupon(siyu, code, wang_fang)
    (first,) = siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", coupon)])
    # the POS retries SO-1 twice, both retries landing in one batch
    again = siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", coupon)] * 2)
    assert again == [first, first]
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(CouponRedemption)) == 1


def test_a_refunded_order_is_refused_in_a_batch(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _coupon(siyu, code, wang_fang)
    siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", coupon)])
    with transaction(siyu.session_factory) as db:
        service.reverse_redemptions(db, order_no="SO-1", refund_no="RF-1", now=now)
    (outcome,) = siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", coupon)])
    assert _code(outcome) == "order_reversed"


def test_two_coupons_on_one_order_are_all_or_nothing_in_a_batch(siyu: Siyu) -> None:
    # given Wang Fang holds a coupon that is valid and one that has expired
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now, per_member_limit=2)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    valid, expired = _coupon(siyu, code, wang_fang, "a"), _coupon(siyu, code, wang_fang, "b")
    with transaction(siyu.session_factory) as db:
        db.execute(
            sa.update(Coupon)
            .where(Coupon.id == expired)
            .values(valid_from=now - timedelta(days=9), valid_until=now - timedelta(days=1))
        )
    (outcome,) = siyu.redemptions.redeem_batch([_ask(siyu, wang_fang, "SO-1", valid, expired)])
    assert _code(outcome) == "coupon_not_usable"
    with transaction(siyu.session_factory) as db:
        assert db.scalar(sa.select(Coupon.state).where(Coupon.id == valid)) == "issued"


def test_an_order_redeems_what_it_reserved_through_the_batcher(siyu: Siyu) -> None:
    now = siyu.clock.now()
    code = a_template(siyu.session_factory, now)
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    coupon = _coupon(siyu, code, wang_fang)
    with transaction(siyu.session_factory) as db:
        service.reserve_coupons(
            db, member_id=wang_fang, coupon_ids=[coupon], order_no="SO-1", cart=tea_cart(), now=now
        )
    records = siyu.redemptions.redeem(
        member_id=wang_fang, order_no="SO-1", cart=tea_cart(), now=now
    )
    assert [(r.coupon_id, r.order_no) for r in records] == [(coupon, "SO-1")]


def test_a_refusal_through_redeem_raises_the_loyalty_error(siyu: Siyu) -> None:
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    with pytest.raises(LoyaltyError) as refused:
        siyu.redemptions.redeem(
            member_id=wang_fang,
            order_no="SO-1",
            cart=tea_cart(),
            now=siyu.clock.now(),
            coupon_ids=[404],
        )
    assert refused.value.code == LoyaltyErrorCode.COUPON_NOT_FOUND


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    require_real("PostgreSQL", bool(POSTGRES_URL), "set SIYU_TEST_POSTGRES_URL")
    engine = sa.create_engine(postgres_url, pool_size=40, max_overflow=0)
    yield create_session_factory(engine)
    engine.dispose()


def test_32_threads_through_one_batcher_share_writes_and_redeem_each_coupon_once(
    pg_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    # given 24 members with one coupon each, and one batcher for 32 POS threads
    now = clock.now()
    code = a_template(pg_factory, now, budget_total=100)
    ids = members(pg_factory, *[f"Member {i}" for i in range(24)])
    coupons: list[tuple[int, int]] = []
    for member_id in ids:
        with transaction(pg_factory) as db:
            issued = service.issue_coupon(
                db, template_code=code, member_id=member_id, idempotency_key="s", now=now
            )
        coupons.append((member_id, issued.coupon_id))
    batcher = RedemptionBatcher(pg_factory)
    won: list[RedemptionRecord] = []
    refused: list[str] = []
    barrier = threading.Barrier(32)
    deadline: list[float] = []

    def client(i: int) -> None:
        rnd = random.Random(i)
        barrier.wait()
        deadline.append(time.monotonic() + 2)
        n = 0
        while time.monotonic() < deadline[0]:
            member_id, coupon_id = rnd.choice(coupons)
            n += 1
            try:
                won.extend(
                    batcher.redeem(
                        member_id=member_id,
                        order_no=f"C{i}-{n}",
                        cart=tea_cart(),
                        now=now,
                        coupon_ids=[coupon_id],
                    )
                )
            except LoyaltyError as exc:
                refused.append(exc.code.value)
            if rnd.random() < 0.5 and won:  # refunds put coupons back in play
                # (a concurrent thread may have refunded that order first: fine here)
                with suppress(LoyaltyError), transaction(pg_factory) as db:
                    order = won[-1].order_no
                    service.reverse_redemptions(
                        db, order_no=order, refund_no=f"RF-{order}", now=now
                    )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then every success is a redemption row of its own, no coupon has two standing ones,
    # and requests did share writes
    with transaction(pg_factory) as db:
        rows = db.execute(sa.select(CouponRedemption.id, CouponRedemption.order_no)).all()
        standing = db.execute(
            sa.select(CouponRedemption.coupon_id, sa.func.count())
            .where(CouponRedemption.active == 1)
            .group_by(CouponRedemption.coupon_id)
        ).all()
        redeemed = set(db.scalars(sa.select(Coupon.id).where(Coupon.state == "redeemed")))
    assert sorted((r.redemption_id, r.order_no) for r in won) == sorted(map(tuple, rows))
    assert all(count == 1 for _, count in standing)
    assert {coupon_id for coupon_id, _ in standing} == redeemed
    assert set(refused) <= {"coupon_state_conflict"}
    assert batcher.batches < batcher.batched_requests
