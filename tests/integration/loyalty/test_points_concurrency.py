"""32 threads spending one member's points on a real PostgreSQL: never below zero, and the
points spent are exactly the sum of the spends that succeeded."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import create_session_factory, transaction
from siyu.loyalty import points_service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.ledger import ReversalPolicy
from siyu.loyalty.models_points import PointsEntry, PointsLot
from tests.conftest import POSTGRES_URL, require_real
from tests.factories import operational

from .points_fixtures import T0

SECONDS = float(os.environ.get("SIYU_POINTS_CONCURRENCY_SECONDS", "3"))
THREADS = 32


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    require_real("PostgreSQL", bool(POSTGRES_URL), "set SIYU_TEST_POSTGRES_URL")
    engine = sa.create_engine(postgres_url, pool_size=THREADS, max_overflow=4)
    yield create_session_factory(engine)
    engine.dispose()


def test_32_concurrent_spenders_never_overdraw_one_member(
    pg_factory: sessionmaker[Session],
) -> None:
    # given Wang Fang holds 2,000 points in four lots
    with transaction(pg_factory) as session:
        member = operational.member(session, name="Wang Fang").id
    for n in range(4):
        points_service.grant(
            pg_factory,
            member_id=member,
            points=500,
            reason="welcome",
            idempotency_key=f"grant-{n}",
            now=T0,
        )
    succeeded: list[int] = []
    refused = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(worker: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            amount = 1 + (worker * 7 + n) % 13
            key = f"pos-{worker}-{n}"
            try:
                points_service.spend(
                    pg_factory,
                    member_id=member,
                    points=amount,
                    idempotency_key=key,
                    reason="tea",
                    now=T0,
                )
            except LoyaltyError:
                with lock:
                    refused[0] += 1
                continue
            with lock:
                succeeded.append(amount)
            if n % 5 == 0:  # a refund now and then, so spending goes on for the whole run
                points_service.reverse(
                    pg_factory,
                    member_id=member,
                    original_key=key,
                    idempotency_key=f"{key}:refund",
                    now=T0,
                    policy=ReversalPolicy.WITHIN_BALANCE,
                )
                with lock:
                    succeeded.append(-amount)

    # when 32 clients spend concurrently
    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then the balance never went below zero and equals grants minus successful spends
    with pg_factory() as session:
        balance = int(
            session.execute(
                sa.select(sa.func.sum(PointsEntry.points)).where(PointsEntry.member_id == member)
            ).scalar_one()
        )
        lots = int(
            session.execute(
                sa.select(sa.func.sum(PointsLot.remaining)).where(PointsLot.member_id == member)
            ).scalar_one()
        )
        negative = session.execute(
            sa.select(sa.func.count()).where(PointsLot.remaining < 0)
        ).scalar_one()
    assert len(succeeded) > 50
    assert balance == 2000 - sum(succeeded)
    assert balance == lots
    assert balance >= 0 and negative == 0
