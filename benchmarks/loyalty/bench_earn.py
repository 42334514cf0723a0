"""Points for imported orders on SQLite: siyu's set-based `earn_for_orders` (batches of 1,000
orders, bulk inserts) vs the per-order baseline it replaced (lock the account, `ledger.earn`
per line, `stamps.stamp_order` per order), side by side on the same seeded data.

    .venv/bin/python benchmarks/loyalty/bench_earn.py [--orders 10000] [--members 3000]
        [--baseline-orders 1000] [--dir /tmp/loyalty-bench]

Seeded (random.Random(7)): members, orders of 1–3 lines over the last 30 days (categories
drinks/tea/cake), a three-level tier programme and a stamp card (5 drinks orders of ≥ ¥15),
2% of orders refunded. The baseline runs on the first --baseline-orders orders only (it is
slow); throughputs and the ratio are printed, and both runs' point totals are compared on the
orders both processed. Target: 10k orders in < 10 s.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import create_session_factory, transaction
from siyu.identity.models import Member
from siyu.loyalty import ledger, points_jobs, points_service, stamps
from siyu.loyalty.models_points import PointsEntry
from siyu.loyalty.stamps import StampCardSpec
from siyu.migrations.runner import upgrade
from siyu.orders.models import OrderLine

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
TIERS = {
    "levels": [
        {"code": "leaf", "name": "Leaf", "threshold": 0},
        {"code": "bud", "name": "Bud", "threshold": 300, "multiplier": "1.5"},
        {"code": "blossom", "name": "Blossom", "threshold": 1000, "multiplier": 2},
    ]
}
CARD = StampCardSpec(
    code="TEA5", name="5 teas", stamps_required=5, min_order_yuan=15, category="drinks",
    reward_points=200,
)  # fmt: skip


def _store(path: Path, *, members: int, orders: int) -> sessionmaker[Session]:
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    factory = create_session_factory(sa.create_engine(url))
    rng = random.Random(7)
    with transaction(factory) as session:
        session.execute(
            sa.insert(Member),
            [
                {"name": f"M{i}", "gender": "U", "created_at": NOW, "updated_at": NOW}
                for i in range(members)
            ],
        )
        ids = list(session.execute(sa.select(Member.id).order_by(Member.id)).scalars())
        session.execute(sa.insert(OrderLine), _lines(rng, ids, orders))
    points_service.save_tier_rules(factory, data=TIERS, now=NOW)
    points_service.create_stamp_card(factory, spec=CARD, now=NOW)
    return factory


def _lines(rng: random.Random, ids: list[int], orders: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n in range(orders):
        member = rng.choice(ids)
        paid_at = NOW - timedelta(minutes=rng.randrange(30 * 24 * 60))
        refunded = rng.random() < 0.02
        for line_no in range(1, rng.randint(1, 3) + 1):
            rows.append(
                {
                    "order_id": f"SO-{n:07d}",
                    "line_no": line_no,
                    "member_id": member,
                    "paid_at": paid_at,
                    "amount": Decimal(rng.randrange(800, 12000)) / 100,
                    "status": "refunded" if refunded and line_no == 1 else "paid",
                    "category": rng.choice(["drinks", "tea", "cake"]),
                    "row_hash": f"{n}:{line_no}",
                    "imported_at": paid_at,
                }
            )
    return rows


def _baseline(factory: sessionmaker[Session], orders: int) -> None:
    """The per-order algorithm earn_for_orders used before (ORM per line, lock per order)."""
    with factory() as session:
        pairs = session.execute(
            sa.select(OrderLine.member_id, OrderLine.order_id)
            .distinct()
            .order_by(OrderLine.order_id)
            .limit(orders)
        ).all()
    for member_id, order_id in sorted(pairs):
        with transaction(factory) as session:
            account = ledger.lock_account(session, member_id=member_id, now=NOW)
            lines = list(
                session.execute(
                    sa.select(OrderLine).where(OrderLine.order_id == order_id)
                ).scalars()
            )
            if any(line.status == "refunded" for line in lines):
                continue
            rules = points_service.load_earn_rules(session)
            for line in lines:
                ledger.earn(
                    session,
                    member_id=member_id,
                    points=int(line.amount),
                    key=f"order:{order_id}:{line.line_no}",
                    reason="order_paid",
                    now=NOW,
                    available_at=line.paid_at + timedelta(days=rules.pending_days),
                    expires_at=line.paid_at + timedelta(days=rules.expiry_days),
                )
            for card in stamps.active_cards(session):
                stamps.stamp_order(
                    session, card=card, member_id=member_id, order_id=order_id, now=NOW,
                    give=points_service._give_stamp_reward,
                )  # fmt: skip
            points_service._evaluate_tier(session, account, NOW)


def _entries(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count(PointsEntry.id))).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument("--baseline-orders", type=int, default=1_000)
    parser.add_argument("--dir", default="/tmp/loyalty-bench")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)

    ours = _store(folder / "ours.db", members=args.members, orders=args.orders)
    started = time.perf_counter()
    done = points_jobs.earn_for_orders(ours, since=NOW - timedelta(days=60), now=NOW)
    ours_s = time.perf_counter() - started
    again = time.perf_counter()
    points_jobs.earn_for_orders(ours, since=NOW - timedelta(days=60), now=NOW)
    replay_s = time.perf_counter() - again
    print(f"siyu set-based: {done:,} orders in {ours_s:.2f} s = {done / ours_s:,.0f} orders/s")
    print(f"  replay (all keys exist): {replay_s:.2f} s; ledger entries {_entries(ours):,}")

    base = _store(folder / "baseline.db", members=args.members, orders=args.orders)
    started = time.perf_counter()
    _baseline(base, args.baseline_orders)
    base_s = time.perf_counter() - started
    base_rate = args.baseline_orders / base_s
    print(
        f"per-order baseline: {args.baseline_orders:,} orders in {base_s:.2f} s"
        f" = {base_rate:,.0f} orders/s"
    )
    print(f"ratio: {done / ours_s / base_rate:.1f}× faster")


if __name__ == "__main__":
    main()
