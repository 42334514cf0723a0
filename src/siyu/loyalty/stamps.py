"""Stamp cards (集点): each qualifying order stamps the member's card once; every
`stamps_required` open stamps complete the card and earn its reward (points and/or a coupon).

A refund voids the order's stamp. If that stamp belonged to a completed card, the completion is
revoked (its reward points are reversed, its other stamps become open again) and the card is
re-checked, so a member keeps exactly the completions their standing orders pay for. A reward
coupon is voided if still unused; a reserved or redeemed one is kept (the member is at the till
with it, or used it) and the completion's reward text says so; the stamp_card_completed event
stays in history.
Functions run inside the caller's transaction, under the member's account lock, and never commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.ledger import add_event
from siyu.loyalty.models_points import Stamp, StampCard, StampCompletion

# (session, member_id, completion, card) -> description of the reward given
RewardGiver = Callable[[Session, int, StampCompletion, StampCard], str]
RewardTaker = Callable[[Session, int, StampCompletion, StampCard], None]


class StampCardSpec(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    stamps_required: int = Field(ge=1)
    min_order_yuan: int = Field(default=0, ge=0)
    category: str | None = None
    reward_points: int = Field(default=0, ge=0)
    reward_coupon: str | None = None


@dataclass(frozen=True)
class CardStatus:
    code: str
    name: str
    stamps_required: int
    open_stamps: int
    completions: int


def create_card(db_session: Session, *, spec: StampCardSpec, now: datetime) -> StampCard:
    if spec.reward_points == 0 and not spec.reward_coupon:
        raise LoyaltyError(
            LoyaltyErrorCode.INVALID_RULES,
            f"stamp card {spec.code}: give reward_points or reward_coupon",
        )
    exists = db_session.execute(
        sa.select(StampCard.id).where(StampCard.code == spec.code)
    ).scalar_one_or_none()
    if exists is not None:
        raise LoyaltyError(LoyaltyErrorCode.STAMP_CARD_EXISTS, f"stamp card {spec.code} exists")
    card = StampCard(
        code=spec.code,
        name=spec.name,
        stamps_required=spec.stamps_required,
        min_order_fen=spec.min_order_yuan * 100,
        category=spec.category,
        reward_points=spec.reward_points,
        reward_coupon=spec.reward_coupon,
        active=True,
        created_at=now,
    )
    db_session.add(card)
    db_session.flush()
    return card


def active_cards(db_session: Session) -> list[StampCard]:
    return list(
        db_session.execute(
            sa.select(StampCard).where(StampCard.active.is_(True)).order_by(StampCard.id)
        ).scalars()
    )


def qualifies(card: StampCard, *, amount_fen: int, categories: set[str]) -> bool:
    if amount_fen < card.min_order_fen:
        return False
    return card.category is None or card.category in categories


def _open_stamps(db_session: Session, card_id: int, member_id: int) -> list[Stamp]:
    return list(
        db_session.execute(
            sa.select(Stamp)
            .where(
                Stamp.card_id == card_id,
                Stamp.member_id == member_id,
                Stamp.voided_at.is_(None),
                Stamp.completion_id.is_(None),
            )
            .order_by(Stamp.id)
        ).scalars()
    )


def stamp_order(
    db_session: Session,
    *,
    card: StampCard,
    member_id: int,
    order_id: str,
    now: datetime,
    give: RewardGiver,
) -> bool:
    """Stamp the card for this order (once); complete it when enough stamps are open."""
    exists = db_session.execute(
        sa.select(Stamp.id).where(Stamp.card_id == card.id, Stamp.order_id == order_id)
    ).scalar_one_or_none()
    if exists is not None:
        return False
    db_session.add(Stamp(card_id=card.id, member_id=member_id, order_id=order_id, created_at=now))
    db_session.flush()
    _complete_if_full(db_session, card=card, member_id=member_id, now=now, give=give)
    return True


def complete_if_full(
    db_session: Session, *, card: StampCard, member_id: int, now: datetime, give: RewardGiver
) -> None:
    """Complete the card as often as its open stamps allow (after stamps were bulk-inserted)."""
    _complete_if_full(db_session, card=card, member_id=member_id, now=now, give=give)


def _complete_if_full(
    db_session: Session, *, card: StampCard, member_id: int, now: datetime, give: RewardGiver
) -> None:
    stamps = _open_stamps(db_session, card.id, member_id)
    while len(stamps) >= card.stamps_required:
        used, stamps = stamps[: card.stamps_required], stamps[card.stamps_required :]
        seq = 1 + int(
            db_session.execute(
                sa.select(sa.func.coalesce(sa.func.max(StampCompletion.seq), 0)).where(
                    StampCompletion.card_id == card.id, StampCompletion.member_id == member_id
                )
            ).scalar_one()
        )
        completion = StampCompletion(card_id=card.id, member_id=member_id, seq=seq, created_at=now)
        db_session.add(completion)
        db_session.flush()
        for stamp in used:
            stamp.completion_id = completion.id
        completion.reward = give(db_session, member_id, completion, card)
        add_event(
            db_session,
            type="stamp_card_completed",
            event_id=f"stamp_card_completed:{card.code}:{member_id}:{seq}",
            member_id=member_id,
            now=now,
            card=card.code,
            seq=seq,
            reward=completion.reward,
        )
    db_session.flush()


def void_order(
    db_session: Session,
    *,
    member_id: int,
    order_id: str,
    now: datetime,
    give: RewardGiver,
    take: RewardTaker,
) -> int:
    """Void the order's stamps (a refund); revoke completions that relied on them."""
    stamps = list(
        db_session.execute(
            sa.select(Stamp).where(
                Stamp.member_id == member_id, Stamp.order_id == order_id, Stamp.voided_at.is_(None)
            )
        ).scalars()
    )
    for stamp in stamps:
        stamp.voided_at = now
        card = db_session.get(StampCard, stamp.card_id)
        assert card is not None  # FK
        if stamp.completion_id is not None:
            _revoke(
                db_session, stamp.completion_id, card=card, member_id=member_id, now=now, take=take
            )
        _complete_if_full(db_session, card=card, member_id=member_id, now=now, give=give)
    db_session.flush()
    return len(stamps)


def _revoke(
    db_session: Session,
    completion_id: int,
    *,
    card: StampCard,
    member_id: int,
    now: datetime,
    take: RewardTaker,
) -> None:
    completion = db_session.get(StampCompletion, completion_id)
    assert completion is not None  # FK
    completion.revoked_at = now
    db_session.execute(
        sa.update(Stamp)
        .where(Stamp.completion_id == completion_id)
        .values(completion_id=None)
        .execution_options(synchronize_session="fetch")
    )
    take(db_session, member_id, completion, card)


def card_status(db_session: Session, *, member_id: int) -> list[CardStatus]:
    result = []
    for card in active_cards(db_session):
        done = db_session.execute(
            sa.select(sa.func.count(StampCompletion.id)).where(
                StampCompletion.card_id == card.id,
                StampCompletion.member_id == member_id,
                StampCompletion.revoked_at.is_(None),
            )
        ).scalar_one()
        result.append(
            CardStatus(
                code=card.code,
                name=card.name,
                stamps_required=card.stamps_required,
                open_stamps=len(_open_stamps(db_session, card.id, member_id)),
                completions=int(done),
            )
        )
    return result
