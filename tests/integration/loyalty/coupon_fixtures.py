"""Shared givens for the coupon tests: Demo Tea's templates and member Wang Fang."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.loyalty import service
from siyu.loyalty.coupons import Cart, CartLine
from tests.factories.operational import member

SPEND_100_SAVE_20: dict[str, Any] = {
    "code": "TEA_100_20",
    "name": "满100减20",
    "kind": "spend_save",
    "threshold_fen": 10000,
    "value_fen": 2000,
    "validity": "relative",
    "valid_days": 30,
}


def a_template(session_factory: sessionmaker[Session], now: datetime, **overrides: Any) -> str:
    spec = {**SPEND_100_SAVE_20, **overrides}
    with transaction(session_factory) as db_session:
        service.create_template(db_session, spec=spec, now=now, actor="hq")
    return str(spec["code"])


def members(session_factory: sessionmaker[Session], *names: str) -> list[int]:
    with transaction(session_factory) as db_session:
        return [member(db_session, name=name).id for name in names]


def tea_cart(amount_fen: int = 12800, **fields: Any) -> Cart:
    return Cart(
        store_code="SH001",
        channel="pos",
        lines=[CartLine(sku="OOLONG-250G", category="tea", amount_fen=amount_fen)],
        **fields,
    )
