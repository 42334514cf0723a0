"""Points spends per second with 32 concurrent clients on PostgreSQL: siyu's ledger (account row
lock, re-read under the lock, lots and allocations) vs a naive read-balance-then-write baseline,
side by side in one run over the same seeded members.

    .venv/bin/python benchmarks/loyalty/bench_points.py [--members 200] [--clients 32]
        [--seconds 5] [--postgres-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres]

Each member starts with --points points (two lots), so members run dry during the run.
Clients pick a member (seeded, per client) and spend 1–40 points with a fresh business key;
fewer members = more contention per member. The baseline reads the balance, and if it is
enough inserts a spend entry, with no lock: we count
members whose final balance is negative (violations) and the points overdrawn. For siyu we check
the invariants (balance ≥ 0 and = sum of active lots for every member). A scratch database
`siyu_bench_points` is created and dropped.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import create_session_factory, transaction
from siyu.identity.models import Member
from siyu.loyalty import ledger, points_service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.models_points import PointsEntry, PointsLot
from siyu.migrations.runner import upgrade

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
DB = "siyu_bench_points"


def _seed(factory: sessionmaker[Session], members: int, points: int) -> list[int]:
    with transaction(factory) as session:
        rows = [
            Member(name=f"M{i}", gender="U", created_at=NOW, updated_at=NOW) for i in range(members)
        ]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    for member in ids:
        for n in (1, 2):
            points_service.grant(
                factory,
                member_id=member,
                points=500,
                reason="seed",
                idempotency_key=f"seed:{member}:{n}",
                now=NOW,
            )
    return ids


def _ours(factory: sessionmaker[Session], member: int, points: int, key: str) -> bool:
    try:
        points_service.spend(
            factory, member_id=member, points=points, idempotency_key=key, reason="bench", now=NOW
        )
    except LoyaltyError:
        return False
    return True


def _naive(factory: sessionmaker[Session], member: int, points: int, key: str) -> bool:
    with transaction(factory) as session:
        if ledger.balance_of(session, member_id=member).points < points:
            return False
        session.add(
            PointsEntry(
                member_id=member,
                kind="spend",
                points=-points,
                pending=0,
                idempotency_key=key,
                reason="naive",
                created_at=NOW,
            )
        )
    return True


def _run(
    name: str,
    spend: Callable[[sessionmaker[Session], int, int, str], bool],
    factory: sessionmaker[Session],
    ids: list[int],
    clients: int,
    seconds: float,
) -> tuple[int, int, float]:
    ok, refused = [0] * clients, [0] * clients
    deadline = time.monotonic() + seconds

    def client(c: int) -> None:
        rng = random.Random(c)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if spend(factory, rng.choice(ids), rng.randint(1, 40), f"{name}:{c}:{n}"):
                ok[c] += 1
            else:
                refused[c] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(ok), sum(refused), time.monotonic() - started


def _negative(factory: sessionmaker[Session], ids: list[int]) -> tuple[int, int]:
    with factory() as session:
        sums = session.execute(
            sa.select(PointsEntry.member_id, sa.func.sum(PointsEntry.points))
            .where(PointsEntry.member_id.in_(ids))
            .group_by(PointsEntry.member_id)
        ).all()
    below = [int(s) for _, s in sums if s < 0]
    return len(below), -sum(below)


def _lots_agree(factory: sessionmaker[Session], ids: list[int]) -> bool:
    with factory() as session:
        for member in ids:
            balance = ledger.balance_of(session, member_id=member).points
            lots = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(PointsLot.remaining), 0)).where(
                    PointsLot.member_id == member, PointsLot.state == "active"
                )
            ).scalar_one()
            if balance != lots or balance < 0:
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--points", type=int, default=200, help="starting points per member")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres",
    )
    args = parser.parse_args()
    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{DB}"'))
    url = sa.engine.make_url(args.postgres_url).set(database=DB).render_as_string(False)
    try:
        upgrade(url)
        engine = sa.create_engine(url, pool_size=args.clients, max_overflow=4)
        factory = create_session_factory(engine)
        ours_ids = _seed(factory, args.members, args.points)
        naive_ids = _seed(factory, args.members, args.points)
        print(
            f"{args.members} members × {args.points} points, "
            f"{args.clients} clients, {args.seconds}s each"
        )
        o_ok, o_no, o_t = _run("ours", _ours, factory, ours_ids, args.clients, args.seconds)
        n_ok, n_no, n_t = _run("naive", _naive, factory, naive_ids, args.clients, args.seconds)
        o_bad, _ = _negative(factory, ours_ids)
        n_bad, n_over = _negative(factory, naive_ids)
        print(
            f"siyu ledger : {o_ok / o_t:8.0f} spends/s ({o_ok} ok, {o_no} refused), "
            f"members below zero {o_bad}, lots agree {_lots_agree(factory, ours_ids)}"
        )
        print(
            f"naive       : {n_ok / n_t:8.0f} spends/s ({n_ok} ok, {n_no} refused), "
            f"members below zero {n_bad} (overdrawn {n_over} points)"
        )
        print(f"ratio siyu/naive throughput: {(o_ok / o_t) / max(n_ok / n_t, 1e-9):.2f}")
        engine.dispose()
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
