"""The import's bulk writer stores exactly what SQLAlchemy Core would, and returns new ids in
row order (on SQLite through last_insert_rowid, on PostgreSQL through RETURNING)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.identity.models import Member
from siyu.identity.oneid import table_of
from siyu.ingest.bulk import insert_returning_ids, insert_rows
from siyu.orders.models import OrderLine


def _line(order_id: str, member_id: int, now: datetime) -> dict[str, Any]:
    return {
        "order_id": order_id, "line_no": 1, "member_no": "M0001", "phone": "13800138000",
        "unionid": None, "store_code": "SH001", "channel": "pos",
        "paid_at": datetime(2026, 6, 18, 10, 30, tzinfo=UTC), "amount": Decimal("128.50"),
        "status": "paid", "category": "tea", "sku": "LONGJING-250G", "row_hash": "h",
        "member_id": member_id, "imported_at": now,
    }  # fmt: skip


def _member(name: str, now: datetime) -> dict[str, Any]:
    return {"name": name, "gender": "F", "created_at": now, "updated_at": now}


def test_new_member_ids_come_back_in_row_order(siyu: Siyu) -> None:
    now = siyu.clock.now()
    with siyu.session_factory() as session:
        ids = insert_returning_ids(
            session.connection(),
            table_of(Member),
            [_member("Wang Fang", now), _member("Li Na", now), _member("Zhang Wei", now)],
        )
        names = {row.id: row.name for row in session.execute(sa.select(Member.id, Member.name))}
        session.commit()
    assert [names[i] for i in ids] == ["Wang Fang", "Li Na", "Zhang Wei"]


def test_bulk_order_line_reads_back_like_a_core_insert(siyu: Siyu) -> None:
    now = siyu.clock.now()
    table = table_of(OrderLine)
    with siyu.session_factory() as session:
        (member_id,) = insert_returning_ids(
            session.connection(), table_of(Member), [_member("Wang Fang", now)]
        )
        insert_rows(session.connection(), table, [_line("BULK-1", member_id, now)])
        session.connection().execute(sa.insert(table), [_line("CORE-1", member_id, now)])
        raw = session.execute(
            sa.text("SELECT * FROM order_lines ORDER BY order_id")
        ).mappings().all()  # fmt: skip
        typed = session.execute(sa.select(table).order_by(table.c.order_id)).mappings().all()
        session.commit()
    bulk, core = ({k: v for k, v in row.items() if k not in ("id", "order_id")} for row in raw)
    assert bulk == core
    assert typed[0]["paid_at"] == datetime(2026, 6, 18, 10, 30, tzinfo=UTC)
    assert typed[0]["amount"] == Decimal("128.50")
