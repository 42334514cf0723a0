"""Demo Tea's offers for `siyu demo`: one template of each kind, the new-member pack, and a
spend-X-save-Y issuance to some members with a 10 % holdout (so the ROI page has both groups).
Idempotent: templates that exist are kept, the issuance key resumes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.loyalty import service
from siyu.loyalty.bulk_issuance import IssuanceReport
from siyu.loyalty.issuance import SHANGHAI
from siyu.loyalty.models import CouponPack, CouponTemplate

DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "code": "TEA_100_20",
        "name": "满100减20",
        "kind": "spend_save",
        "threshold_fen": 10000,
        "value_fen": 2000,
        "valid_days": 30,
        "budget_total": 50000,
        "budget_daily": 20000,
        "stack_group": "order",
    },
    {
        "code": "TEA_85_PCT",
        "name": "茶叶85折 最高减50",
        "kind": "percent",
        "percent_off": 15,
        "cap_fen": 5000,
        "scope": {"categories": ["tea"]},
        "valid_days": 14,
        "stack_group": "order",
    },
    {
        "code": "NEW_CASH_10",
        "name": "新人无门槛10元",
        "kind": "cash",
        "value_fen": 1000,
        "valid_days": 7,
        "stack_group": "order",
    },
    {
        "code": "GIFT_SAMPLE",
        "name": "满199赠试饮装",
        "kind": "gift",
        "threshold_fen": 19900,
        "gift_sku": "TEA-SAMPLE-10G",
        "valid_days": 30,
        "exclusive": True,
    },
    {
        "code": "FREE_SHIP",
        "name": "免配送费",
        "kind": "free_delivery",
        "valid_days": 30,
        "scope": {"channels": ["mini_program"]},
        "stack_group": "delivery",
    },
]


def install_demo_offers(
    session_factory: sessionmaker[Session],
    *,
    member_ids: Iterable[int],
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
) -> IssuanceReport:
    """Create the demo templates and pack, then issue 满100减20 to `member_ids`."""
    with transaction(session_factory) as db:
        existing = set(db.scalars(sa.select(CouponTemplate.code)))
        for spec in DEMO_TEMPLATES:
            if spec["code"] not in existing:
                service.create_template(db, spec=spec, now=now, actor="demo")
        if db.scalar(sa.select(CouponPack.id).where(CouponPack.code == "NEW_MEMBER")) is None:
            service.create_pack(
                db,
                code="NEW_MEMBER",
                name="新人礼包",
                template_codes=["NEW_CASH_10", "FREE_SHIP"],
                now=now,
            )
    return service.issue_to_members(
        session_factory,
        template_code="TEA_100_20",
        member_ids=member_ids,
        key="demo:TEA_100_20:vip",
        now=now,
        tz=tz,
        source="demo",
        holdout_percent=10,
    )
