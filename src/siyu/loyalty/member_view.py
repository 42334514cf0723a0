"""What the member 360 page shows about loyalty: the coupon wallet (state, expiry), the points
balance, the tier and the stamp cards, read in one session.

Decisions: the panel lists the usable coupons (issued or reserved, soonest expiry first) and at
most `recent_used` of the others (redeemed, expired, voided) — the wallet page has the rest;
a member without points, tier programme or cards gets an empty, explicit panel, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from siyu.loyalty import ledger, stamps
from siyu.loyalty.ledger import Balance
from siyu.loyalty.models import CouponState
from siyu.loyalty.points_service import TierStatus, tier_status
from siyu.loyalty.service import WalletCoupon, member_wallet
from siyu.loyalty.stamps import CardStatus

_LIVE = (CouponState.ISSUED, CouponState.RESERVED)


@dataclass(frozen=True)
class MemberLoyalty:
    member_id: int
    usable: list[WalletCoupon]
    used: list[WalletCoupon]
    used_total: int
    balance: Balance
    tier: TierStatus
    cards: list[CardStatus]


def member_loyalty(
    session_factory: sessionmaker[Session], *, member_id: int, now: datetime, recent_used: int = 5
) -> MemberLoyalty:
    """The loyalty panel of one member (read only)."""
    with session_factory() as db_session:
        wallet = member_wallet(db_session, member_id=member_id, now=now)
        balance = ledger.balance_of(db_session, member_id=member_id)
        cards = stamps.card_status(db_session, member_id=member_id)
    usable = sorted((c for c in wallet if c.state in _LIVE), key=lambda c: c.valid_until)
    used = sorted((c for c in wallet if c.state not in _LIVE), key=lambda c: c.issued_at)[::-1]
    return MemberLoyalty(
        member_id=member_id,
        usable=usable,
        used=used[:recent_used],
        used_total=len(used),
        balance=balance,
        tier=tier_status(session_factory, member_id=member_id, now=now),
        cards=cards,
    )
