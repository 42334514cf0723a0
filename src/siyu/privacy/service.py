"""PIPL requests for one person: export of their data and erasure, both audited.

Decisions:
- The person is the surviving member of an identity plus every member merged into it.
- Their personal values are every identity value they ever had (all types), the names and
  phones on their source records and the member's name. Erasure removes these values from
  EVERY table of the operational store, whoever owns it: string columns equal to a value are
  emptied (NULL, or `erased:<table>:<id>` where NULL is not allowed), JSON columns of rows
  that belong to the member are scrubbed of those values and of personal keys (phone, name,
  unionid, openid, external_userid, member_no, mobile, email, address, nickname), long text
  columns of their rows (message bodies) are blanked, dead-letter rows that mention a value
  are deleted, identities and their observations are deleted.
- What reports need stays, detached from the person: the member row (id, gender "U",
  registration date, store, channel, `erased_at`), order amounts/dates/categories and event
  types/times. Erased members are not found by search and never targeted again.
- Nothing of them may remain on disk: SQLite is VACUUMed (and its WAL truncated) and the
  DuckDB warehouse is copied into a fresh file that replaces the old one (both engines keep
  deleted values in free pages). The warehouse copy needs the writer: run erasure where the
  warehouse is owned (the server, or the CLI while the server is stopped).
- Only HQ erases and exports (a guide or supervisor forwards the person's request to HQ).
- An export is a JSON document of every row of every table that has a `member_id` column for
  the person, plus the member row: new tables are included without code changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer, may_see_member
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction
from siyu.identity import service as identity_service
from siyu.identity.errors import MemberNotFoundError
from siyu.identity.models import (
    Identity,
    IdentityMemberNo,
    IdentityObservation,
    Member,
    MemberRecord,
)
from siyu.identity.oneid import table_of
from siyu.orders.models import OrderLine
from siyu.privacy.errors import PrivacyError, PrivacyErrorCode
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.member_bitmaps import apply_member_changes, held_bitmaps, note_member_write

PERSONAL_KEYS = frozenset(
    {"phone", "name", "unionid", "openid", "external_userid", "member_no", "mobile", "email",
     "address", "nickname", "pos_id", "birthday", "identities"}
)  # fmt: skip
_SKIP_TABLES = {"audit_log", "audit_entries", "alembic_version"}
_LONG_TEXT = 256  # String columns longer than this, and Text, hold free text (message bodies)


def member_ids_of(session: Session, member_id: int) -> list[int]:
    """The surviving member and every member merged into it."""
    found, frontier = {member_id}, [member_id]
    while frontier:
        merged = session.scalars(sa.select(Member.id).where(Member.merged_into_id.in_(frontier)))
        frontier = [m for m in merged if m not in found]
        found.update(frontier)
    return sorted(found)


def personal_values(session: Session, ids: list[int]) -> set[str]:
    values = set(session.scalars(sa.select(Identity.value).where(Identity.member_id.in_(ids))))
    columns = (MemberRecord.name, MemberRecord.phone, MemberRecord.unionid, MemberRecord.openid,
               MemberRecord.external_userid, MemberRecord.member_no)  # fmt: skip
    for row in session.execute(sa.select(*columns).where(MemberRecord.member_id.in_(ids))):
        values.update(v for v in row if v)
    values.update(n for n in session.scalars(sa.select(Member.name).where(Member.id.in_(ids))) if n)
    return {v for v in values if len(v) >= 2}


def resolve(*, session_factory: sessionmaker[Session], identity: str) -> int:
    """The surviving member id for an identity, or a member id given as `id:<n>`."""
    if identity.startswith("id:") and identity[3:].isdigit():
        return identity_service.resolve_member_id(
            session_factory=session_factory, member_id=int(identity[3:])
        )
    return identity_service.find_member_by_identity(
        session_factory=session_factory, identity=identity
    )


def export_member_data(
    *, session_factory: sessionmaker[Session], clock: Clock, member_id: int, viewer: Viewer
) -> dict[str, Any]:
    """Everything siyu holds about one person, as JSON-ready data; the export is audited."""
    _check(viewer, write=False)
    now = clock.now()
    with transaction(session_factory) as session:
        if not may_see_member(session, viewer, member_id) or session.get(Member, member_id) is None:
            raise MemberNotFoundError(f"member id {member_id}")
        ids = member_ids_of(session, member_id)
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in _tables(session):
            key = "id" if table.name == "members" else "member_id"
            if key in table.c:
                rows = session.execute(sa.select(table).where(table.c[key].in_(ids))).mappings()
                found = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
                if found:
                    tables[table.name] = found
        audit_service.record(
            db_session=session, now=now, actor=viewer.actor, action="member.export_data",
            entity_type="member", entity_id=member_id, detail={"tables": sorted(tables)},
        )  # fmt: skip
    return {"member_id": member_id, "exported_at": now.isoformat(), "tables": tables}


def erase_member(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse | None,
    clock: Clock,
    member_id: int,
    viewer: Viewer,
) -> dict[str, int]:
    """Erase one person's personal data from both stores (PIPL); audited, irreversible."""
    _check(viewer, write=True)
    now = clock.now()
    with transaction(session_factory) as session:
        member = session.get(Member, member_id)
        if member is None or not may_see_member(session, viewer, member_id):
            raise MemberNotFoundError(f"member id {member_id}")
        ids = member_ids_of(session, member_id)
        values = personal_values(session, ids)
        counts = _erase_operational(session, ids=ids, values=values)
        session.execute(
            sa.update(Member).where(Member.id.in_(ids))
            .values(name=None, birthday=None, gender="U", erased_at=now, updated_at=now)
        )  # fmt: skip
        audit_service.record(
            db_session=session, now=now, actor=viewer.actor, action="member.erase",
            entity_type="member", entity_id=member_id,
            detail={"members": len(ids), "values": len(values), **counts},
        )  # fmt: skip
    _compact_operational(session_factory)
    if warehouse is not None:
        counts["warehouse_rows"] = _erase_warehouse(warehouse, ids=ids, values=values)
    return counts


def _check(viewer: Viewer, *, write: bool) -> None:
    from siyu.access.schemas import Role

    # Both are HQ's (the data-protection officer's) acts: a guide forwards the request.
    if viewer.role is not Role.HQ:
        action = "erase" if write else "export"
        raise PrivacyError(PrivacyErrorCode.NOT_ALLOWED, f"the {viewer.role} role may not {action}")


def _tables(session: Session) -> list[sa.Table]:
    from siyu.model_registry import load_all_models

    existing = set(sa.inspect(session.get_bind()).get_table_names())
    metadata = load_all_models()
    return [t for t in metadata.sorted_tables if t.name in existing and t.name not in _SKIP_TABLES]


def _erase_operational(session: Session, *, ids: list[int], values: set[str]) -> dict[str, int]:
    identity_ids = list(session.scalars(sa.select(Identity.id).where(Identity.member_id.in_(ids))))
    session.execute(
        sa.delete(IdentityObservation).where(IdentityObservation.identity_id.in_(identity_ids))
    )
    pairs = table_of(IdentityMemberNo).c
    session.execute(
        sa.delete(IdentityMemberNo).where(
            pairs.identity_id.in_(identity_ids) | pairs.member_no_identity_id.in_(identity_ids)
        )
    )
    # Lines of other members may carry an erased value (a shared phone): forget it there too,
    # in one pass over the lines (they are not indexed by identity).
    lines = table_of(OrderLine).c
    columns = ("member_no_identity_id", "phone_identity_id", "unionid_identity_id")
    session.execute(
        sa.update(OrderLine)
        .where(sa.or_(*(lines[c].in_(identity_ids) for c in columns)))
        .values({c: sa.case((lines[c].in_(identity_ids), None), else_=lines[c]) for c in columns})
    )
    session.execute(sa.delete(Identity).where(Identity.id.in_(identity_ids)))
    scrubbed = 0
    for table in _tables(session):
        scrubbed += _scrub_strings(session, table, values)
        if "member_id" in table.c:
            scrubbed += _scrub_member_rows(session, table, ids, values)
    dead = _delete_dead_letters(session, values)
    return {"identities": len(identity_ids), "cells": scrubbed, "dead_letters": dead}


def _pk(table: sa.Table) -> sa.Column[Any] | None:
    cols = list(table.primary_key.columns)
    return cols[0] if len(cols) == 1 else None


def _scrub_strings(session: Session, table: sa.Table, values: set[str]) -> int:
    changed = 0
    pk = _pk(table)
    for col in table.c:
        if not isinstance(col.type, sa.String) or col is pk or not values:
            continue
        hit = col.in_(sorted(values))
        if col.nullable:
            result = session.execute(sa.update(table).where(hit).values({col.name: None}))
            changed += int(getattr(result, "rowcount", 0) or 0)
        elif pk is not None:
            for key in list(session.scalars(sa.select(pk).where(hit))):
                token = f"erased:{table.name}:{key}"[: col.type.length or 64]
                session.execute(sa.update(table).where(pk == key).values({col.name: token}))
                changed += 1
    return changed


def _scrub_member_rows(session: Session, table: sa.Table, ids: list[int], values: set[str]) -> int:
    pk = _pk(table)
    json_cols = [c for c in table.c if isinstance(c.type, sa.JSON)]
    text_cols = [c for c in table.c if _is_free_text(c)]
    if pk is None or not (json_cols or text_cols):
        return 0
    changed = 0
    rows = session.execute(
        sa.select(pk, *json_cols).where(table.c.member_id.in_(ids))
    ).all()  # fmt: skip
    for row in rows:
        update = {c.name: _scrub(row[i + 1], values) for i, c in enumerate(json_cols)}
        update.update({c.name: "" if not c.nullable else None for c in text_cols})
        session.execute(sa.update(table).where(pk == row[0]).values(update))
        changed += 1
    return changed


def _is_free_text(col: sa.Column[Any]) -> bool:
    kind = col.type
    if isinstance(kind, sa.Text):
        return True
    return isinstance(kind, sa.String) and (kind.length or 0) > _LONG_TEXT


def _scrub(value: Any, values: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, values) for k, v in value.items() if k not in PERSONAL_KEYS}
    if isinstance(value, list):
        return [_scrub(v, values) for v in value if not (isinstance(v, str) and v in values)]
    if isinstance(value, str) and any(v in value for v in values):
        return None
    return value


def _delete_dead_letters(session: Session, values: set[str]) -> int:
    from siyu.ingest.models import DeadLetter

    doomed = [
        row.id
        for row in session.scalars(sa.select(DeadLetter))
        if _mentions(json.dumps([row.reference, row.reason, row.payload], default=str), values)
    ]
    session.execute(sa.delete(DeadLetter).where(DeadLetter.id.in_(doomed)))
    return len(doomed)


def _mentions(text: str, values: Iterable[str]) -> bool:
    return any(v in text for v in values)


def _compact_operational(session_factory: sessionmaker[Session]) -> None:
    """Rewrite SQLite's file so erased values do not linger in free pages."""
    with session_factory() as session:
        engine = session.get_bind().engine
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _erase_warehouse(warehouse: DuckDBWarehouse, *, ids: list[int], values: set[str]) -> int:
    connection = warehouse.connection
    marks = ",".join("?" for _ in ids)
    erase = "UPDATE members SET name = NULL, birthday = NULL, gender = 'U' WHERE member_id IN "
    connection.execute("BEGIN TRANSACTION")
    try:
        # The member bitmap index moves with the rows (their gender and birthday change).
        held = held_bitmaps(connection, ids)
        changed = connection.execute(f"{erase}({marks})", ids).fetchall()
        note_member_write(connection)
        apply_member_changes(connection, ids, held=held)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    events = connection.execute(
        f"SELECT event_id, properties FROM events WHERE member_id IN ({marks})",
        ids,
    ).fetchall()
    for event_id, properties in events:
        cleaned = _scrub(json.loads(properties) if properties else {}, values)
        connection.execute(
            "UPDATE events SET properties = ? WHERE event_id = ?", [json.dumps(cleaned), event_id]
        )
    _rewrite_warehouse_file(warehouse)
    return len(events) + (int(changed[0][0]) if changed else 0)


def _rewrite_warehouse_file(warehouse: DuckDBWarehouse) -> None:
    """Copy the warehouse into a fresh file and swap it in: DuckDB keeps freed blocks (with
    the old values) in its file, and only a rewrite drops them."""
    if warehouse.path == ":memory:":
        return
    path = Path(warehouse.path)
    fresh = path.with_name(path.name + ".erasing")
    fresh.unlink(missing_ok=True)
    connection = warehouse.connection
    connection.execute("FORCE CHECKPOINT")
    current = connection.execute("SELECT current_database()").fetchone()
    assert current is not None
    connection.execute(f"ATTACH '{fresh}' AS erasing_copy")
    connection.execute(f'COPY FROM DATABASE "{current[0]}" TO erasing_copy')
    connection.execute("DETACH erasing_copy")
    warehouse.close()
    os.replace(fresh, path)
    Path(str(path) + ".wal").unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
