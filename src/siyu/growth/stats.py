"""Channel-code statistics: adds, deletions, net and first-order conversion per code.

Definitions (decided here; the console and the API show exactly these):
- adds: WeCom follow relations (guide ↔ customer) whose `state` is the code's state — one per
  customer and guide, so a customer who deletes and re-adds counts once;
- deletions: those relations that have ended (`deleted_at` set), by the customer (the churn
  signal, also given separately as `customer_deletions`) or by the guide;
- net = adds − deletions;
- attributed: members credited to the code (first touch, `growth_attributions`);
- converted: attributed members with a paid order at or after the attribution instant;
- conversion = converted / attributed (None when nobody is attributed yet).
Optional `since`/`until` restrict adds and attributions to that window (deletions follow their
adds). The follow table belongs to the WeCom channel and is read by name (growth must not
import the channel, which imports growth).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import UTCDateTime
from siyu.growth.models import Attribution, ChannelCode
from siyu.orders.models import OrderLine

_follows = sa.table(
    "wecom_follows",
    sa.column("state", sa.String),
    sa.column("added_at", UTCDateTime),
    sa.column("deleted_at", UTCDateTime),
    sa.column("deleted_by", sa.String),
)


@dataclass(frozen=True, slots=True)
class CodeStats:
    code_id: int
    name: str
    scope: str
    state: str
    store_code: str | None
    userids: list[str]
    adds: int
    deletions: int
    customer_deletions: int
    net: int
    attributed: int
    converted: int
    conversion: float | None


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def _follow_counts(
    session: Session, since: datetime | None, until: datetime | None
) -> dict[str, tuple[int, int, int]]:
    ended = _follows.c.deleted_at.is_not(None)
    by_customer = sa.and_(ended, _follows.c.deleted_by == "customer")
    rows = session.execute(
        sa.select(
            _follows.c.state,
            sa.func.count(),
            sa.func.sum(sa.case((ended, 1), else_=0)),
            sa.func.sum(sa.case((by_customer, 1), else_=0)),
        )
        .where(_follows.c.state.is_not(None), *_window(_follows.c.added_at, since, until))
        .group_by(_follows.c.state)
    ).all()
    return {str(s): (int(a), int(d or 0), int(c or 0)) for s, a, d, c in rows}


def _conversions(
    session: Session, since: datetime | None, until: datetime | None
) -> dict[int, tuple[int, int]]:
    ordered = (
        sa.select(OrderLine.id)
        .where(
            OrderLine.member_id == Attribution.member_id,
            OrderLine.status == "paid",
            OrderLine.paid_at >= Attribution.attributed_at,
        )
        .exists()
    )
    rows = session.execute(
        sa.select(
            Attribution.code_id,
            sa.func.count(),
            sa.func.sum(sa.case((ordered, 1), else_=0)),
        )
        .where(
            Attribution.code_id.is_not(None),
            *_window(Attribution.attributed_at, since, until),
        )
        .group_by(Attribution.code_id)
    ).all()
    return {int(code): (int(n), int(c or 0)) for code, n, c in rows}


def code_stats(
    *,
    session_factory: sessionmaker[Session],
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[CodeStats]:
    """One row per live channel code, in creation order."""
    with session_factory() as session:
        codes = list(
            session.scalars(
                sa.select(ChannelCode)
                .where(ChannelCode.deleted_at.is_(None))
                .order_by(ChannelCode.id)
            )
        )
        follows = _follow_counts(session, since, until)
        conversions = _conversions(session, since, until)
    result = []
    for code in codes:
        adds, deletions, by_customer = follows.get(code.state, (0, 0, 0))
        attributed, converted = conversions.get(code.id, (0, 0))
        result.append(
            CodeStats(
                code_id=code.id,
                name=code.name,
                scope=code.scope,
                state=code.state,
                store_code=code.store_code,
                userids=list(code.userids),
                adds=adds,
                deletions=deletions,
                customer_deletions=by_customer,
                net=adds - deletions,
                attributed=attributed,
                converted=converted,
                conversion=(converted / attributed) if attributed else None,
            )
        )
    return result
