"""Copy coupon states into the warehouse's `member_coupons` (segments: "has an available
coupon of X expiring within N days").

Incremental on `coupons.updated_at` (every state change sets it) with a 10-minute overlap,
because a transaction can commit after a later one: overlapped rows are deleted and re-inserted,
so copying them twice changes nothing. States map to the segment DSL's three: issued/reserved
→ available, redeemed → redeemed, expired/voided → expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.db import UTCDateTime
from siyu.warehouse.duckdb import DuckDBWarehouse

OVERLAP = timedelta(minutes=10)
BATCH = 50_000
_STATE = {"issued": "available", "reserved": "available", "redeemed": "redeemed"}
_coupons = sa.table(
    "coupons",
    sa.column("id"),
    sa.column("member_id"),
    sa.column("template_id"),
    sa.column("state"),
    sa.column("valid_until", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
_templates = sa.table("coupon_templates", sa.column("id"), sa.column("code"))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def copy_member_coupons(session: Session, warehouse: DuckDBWarehouse) -> int:
    """Upsert coupons changed since the last run; returns how many rows were copied."""
    if not sa.inspect(session.get_bind()).has_table("coupons"):
        return 0
    rows = warehouse.query("SELECT watermark FROM sync_state WHERE name = 'member_coupons'")
    since = EPOCH + timedelta(microseconds=int(rows[0][0]) if rows else 0) - OVERLAP
    copied, newest = 0, since
    c = _coupons.c
    result = session.execute(
        sa.select(c.id, c.member_id, _templates.c.code, c.state, c.valid_until, c.updated_at)
        .join(_templates, _templates.c.id == c.template_id)
        .where(c.updated_at > since)
        .order_by(c.updated_at, c.id)
        .execution_options(yield_per=BATCH)
    )
    for batch in result.partitions(BATCH):
        newest = max(newest, max(_aware(r[5]) for r in batch))
        _write(warehouse, batch, newest)
        copied += len(batch)
    return copied


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _write(warehouse: DuckDBWarehouse, batch: Sequence[Any], newest: datetime) -> None:
    table = pa.table(
        {
            "coupon_id": pa.array([str(r[0]) for r in batch], pa.string()),
            "member_id": pa.array([int(r[1]) for r in batch], pa.int64()),
            "template_code": pa.array([str(r[2]) for r in batch], pa.string()),
            "state": pa.array([_STATE.get(str(r[3]), "expired") for r in batch], pa.string()),
            "expires_at": pa.array(
                [_aware(r[4]).astimezone(UTC).replace(tzinfo=None) for r in batch],
                pa.timestamp("us"),
            ),
        }
    )
    watermark = (newest - EPOCH) // timedelta(microseconds=1)
    connection = warehouse.connection
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.register("coupon_batch", table)
        connection.execute(
            "DELETE FROM member_coupons WHERE coupon_id IN (SELECT coupon_id FROM coupon_batch)"
        )
        connection.execute("INSERT INTO member_coupons SELECT * FROM coupon_batch")
        connection.unregister("coupon_batch")
        connection.execute(
            "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES ('member_coupons', ?)",
            [watermark],
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
