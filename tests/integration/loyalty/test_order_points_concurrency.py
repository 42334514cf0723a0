"""Set-based earning on a real PostgreSQL: two workers earning the same orders at once, while
members spend, never deadlock, earn each line once and keep balance = ledger = active lots."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import create_session_factory, transaction
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.models_points import LotState, PointsEntry, PointsLot
from tests.conftest import POSTGRES_URL, require_real
from tests.factories import operational

from .points_fixtures import T0

MEMBERS, ORDERS_EACH = 12, 5


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    require_real("PostgreSQL", bool(POSTGRES_URL), "set SIYU_TEST_POSTGRES_URL")
    engine = sa.create_engine(postgres_url, pool_size=8, max_overflow=4)
    yield create_session_factory(engine)
    engine.dispose()


def _seed(factory: sessionmaker[Session]) -> list[int]:
    """Members with 100 granted points each and old orders (spendable at once when earned)."""
    with transaction(factory) as session:
        ids = [operational.member(session, name=f"Member {i}").id for i in range(MEMBERS)]
        for member in ids:
            for n in range(ORDERS_EACH):
                operational.order_line(
                    session, member_id=member, order_id=f"SO-{member}-{n}", amount="30",
                    paid_at=T0 - timedelta(days=10), line_no=1, status="paid", category="tea",
                )  # fmt: skip
    for member in ids:
        points_service.grant(factory, member_id=member, points=100, reason="welcome",
                             idempotency_key=f"welcome-{member}", now=T0)  # fmt: skip
    return ids


def test_two_workers_and_spenders_at_once_earn_each_line_once(
    pg_factory: sessionmaker[Session],
) -> None:
    ids = _seed(pg_factory)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            points_jobs.earn_for_orders(
                pg_factory, since=T0 - timedelta(days=30), now=T0, batch_orders=7
            )
        except BaseException as error:  # a deadlock would surface here
            errors.append(error)

    def spender(member: int) -> None:
        for n in range(3):
            try:
                points_service.spend(
                    pg_factory,
                    member_id=member,
                    points=40,
                    idempotency_key=f"spend-{member}-{n}",
                    reason="tea",
                    now=T0,
                )
            except LoyaltyError:
                pass
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    threads += [threading.Thread(target=spender, args=(m,)) for m in reversed(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pg_factory() as session:
        earned = session.scalar(
            sa.select(sa.func.count()).where(PointsEntry.reason == "order_paid")
        )
        assert earned == MEMBERS * ORDERS_EACH
        for member in ids:
            ledger = session.scalar(
                sa.select(sa.func.sum(PointsEntry.points)).where(PointsEntry.member_id == member)
            )
            lots = session.scalar(
                sa.select(sa.func.sum(PointsLot.remaining)).where(
                    PointsLot.member_id == member, PointsLot.state == LotState.ACTIVE
                )
            )
            assert ledger == lots and ledger is not None and ledger >= 0
