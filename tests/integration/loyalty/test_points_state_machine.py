"""Hypothesis state machine over the points ledger (SQLite): grants, spends, replays, reversals,
restores and the passing of time, with the ledger invariants checked after every step."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.loyalty import ledger, points_jobs, points_spend
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.ledger import ReversalPolicy
from siyu.loyalty.models_points import LotState, PointsAllocation, PointsEntry, PointsLot
from tests.factories import operational

from .points_fixtures import T0

EXAMPLES = int(os.environ.get("SIYU_LEDGER_EXAMPLES", "20"))


def _spendable(session: sa.orm.Session, member: int, now: datetime) -> list[tuple[int, int]]:
    """(lot id, remaining) a spend may draw, soonest expiry first, as the ledger must order it."""
    lots = session.execute(
        sa.select(PointsLot).where(
            PointsLot.member_id == member,
            PointsLot.state == LotState.ACTIVE,
            PointsLot.kind == "earn",
            PointsLot.remaining > 0,
        )
    ).scalars()
    alive = [lot for lot in lots if lot.expires_at is None or lot.expires_at > now]
    alive.sort(key=lambda lot: (lot.expires_at is None, lot.expires_at, lot.id))
    return [(lot.id, lot.remaining) for lot in alive]


def _greedy(lots: list[tuple[int, int]], points: int) -> list[tuple[int, int]]:
    taken, plan = 0, []
    for lot_id, remaining in lots:
        if taken == points:
            break
        part = min(remaining, points - taken)
        plan.append((lot_id, part))
        taken += part
    return plan


class LedgerMachine(RuleBasedStateMachine):
    siyu: Siyu

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.keys: list[str] = []
        self.grants: list[str] = []
        self.spends: list[str] = []
        self.n = 0

    @initialize(policy=st.sampled_from(list(ReversalPolicy)))
    def a_new_member(self, policy: ReversalPolicy) -> None:
        self.policy = policy
        with transaction(self.siyu.session_factory) as session:
            self.member = operational.member(session, name="Wang Fang").id

    def _key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}:{self.member}:{self.n}"

    @rule(points=st.integers(1, 500), days=st.integers(1, 60))
    def grant(self, points: int, days: int) -> None:
        key = self._key("grant")
        with transaction(self.siyu.session_factory) as session:
            ledger.lock_account(session, member_id=self.member, now=self.now)
            ledger.earn(
                session,
                member_id=self.member,
                points=points,
                key=key,
                reason="test",
                now=self.now,
                available_at=self.now,
                expires_at=self.now + timedelta(days=days),
            )
        self.grants.append(key)

    @rule(points=st.integers(1, 600))
    def spend(self, points: int) -> None:
        key = self._key("spend")
        with transaction(self.siyu.session_factory) as session:
            plan = _greedy(_spendable(session, self.member, self.now), points)
        try:
            with transaction(self.siyu.session_factory) as session:
                ledger.lock_account(session, member_id=self.member, now=self.now)
                result = points_spend.spend(
                    session,
                    member_id=self.member,
                    points=points,
                    key=key,
                    reason="test",
                    now=self.now,
                )
        except LoyaltyError:
            assert sum(part for _, part in plan) < points  # refused only when short
            return
        self.spends.append(key)
        with self.siyu.session_factory() as session:
            used = session.execute(
                sa.select(PointsAllocation.lot_id, PointsAllocation.points)
                .where(PointsAllocation.entry_id == result.entry_id)
                .order_by(PointsAllocation.id)
            ).all()
        assert [tuple(row) for row in used] == plan

    @precondition(lambda self: self.spends)
    @rule(data=st.data())
    def replay_a_spend(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.spends))
        before = self._entry_count()
        with transaction(self.siyu.session_factory) as session:
            ledger.lock_account(session, member_id=self.member, now=self.now)
            result = points_spend.spend(
                session, member_id=self.member, points=1, key=key, reason="replay", now=self.now
            )
        assert not result.created
        assert self._entry_count() == before

    @precondition(lambda self: self.grants)
    @rule(data=st.data())
    def reverse_a_grant(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.grants))
        with transaction(self.siyu.session_factory) as session:
            ledger.lock_account(session, member_id=self.member, now=self.now)
            ledger.reverse_earn(
                session,
                member_id=self.member,
                earn_key=key,
                key=f"{key}:undo",
                policy=self.policy,
                now=self.now,
            )

    @precondition(lambda self: self.spends)
    @rule(data=st.data())
    def restore_a_spend(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.spends))
        with transaction(self.siyu.session_factory) as session:
            ledger.lock_account(session, member_id=self.member, now=self.now)
            ledger.restore(
                session, member_id=self.member, spend_key=key, key=f"{key}:restore", now=self.now
            )

    @rule(days=st.integers(1, 30))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)
        points_jobs.activate_and_expire(self.siyu.session_factory, now=self.now)

    def _entry_count(self) -> int:
        with self.siyu.session_factory() as session:
            return int(
                session.execute(
                    sa.select(sa.func.count()).where(PointsEntry.member_id == self.member)
                ).scalar_one()
            )

    @invariant()
    def balance_is_the_ledger_and_the_active_lots(self) -> None:
        if not hasattr(self, "member"):
            return
        with self.siyu.session_factory() as session:
            balance = ledger.balance_of(session, member_id=self.member)
            lots = ledger.active_lot_total(session, member_id=self.member)
        assert balance.points == lots
        assert balance.pending == 0
        if self.policy != ReversalPolicy.ALLOW_NEGATIVE:
            assert balance.points >= 0


def test_the_ledger_keeps_its_invariants(sqlite_siyu: Siyu) -> None:
    LedgerMachine.siyu = sqlite_siyu
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
