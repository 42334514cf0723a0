"""Copy member ownership into the warehouse `member_owners` table (segments `owner_guide`,
`owner_store`; the guide as staff_no, the store as store code).

Replaced whole on every call, like the stores dimension: one narrow row per owned member, so
a full copy is cheap next to the event log. Call it after `warehouse.sync.sync_all`.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import MemberOwner
from siyu.warehouse.duckdb import DuckDBWarehouse


def sync_member_owners(
    *, session_factory: sessionmaker[Session], warehouse: DuckDBWarehouse
) -> int:
    """Replace the warehouse's member_owners with the operational store's; returns the rows."""
    guide, store = sa.orm.aliased(Staff), sa.orm.aliased(Store)
    with session_factory() as session:
        rows = session.execute(
            sa.select(MemberOwner.member_id, guide.staff_no, store.code)
            .outerjoin(guide, guide.id == MemberOwner.guide_id)
            .outerjoin(store, store.id == MemberOwner.store_id)
            .order_by(MemberOwner.member_id)
        ).all()
    batch = pa.table(
        {
            "member_id": pa.array([r[0] for r in rows], pa.int64()),
            "owner_guide": pa.array([r[1] for r in rows], pa.string()),
            "owner_store": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    connection = warehouse.connection
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute("DELETE FROM member_owners")
        connection.register("_owners_batch", batch)
        connection.execute("INSERT INTO member_owners SELECT * FROM _owners_batch")
        connection.unregister("_owners_batch")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return len(rows)
