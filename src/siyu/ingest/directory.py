"""Import of the brand's directory: stores (`store_code,name,city,region,kind`) and staff
(`staff_no,name,role,store_code,region`) from CSV. Rows are upserted by code / staff_no, so
re-importing is safe; an unchanged row counts as a duplicate. A staff row naming an unknown
store is rejected (import stores first). POS exports name roles differently: `store_manager`
is read as `manager` and `ba` (beauty advisor, 导购/BA) as `guide`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.ingest.readers import read_batches
from siyu.ingest.service import ImportResult, _write_rejected
from siyu.ingest.validation import RowRejected
from siyu.ingest.writer import Rejection
from siyu.staff.models import Staff, Store

STORE_KINDS = ("direct", "franchise", "online")
STAFF_ROLES = ("guide", "manager", "supervisor", "hq")
ROLE_ALIASES = {"store_manager": "manager", "ba": "guide"}


def _field(row: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = str(row.get(name) or "").strip() or None
    if required and value is None:
        raise RowRejected(f"{name}: missing")
    return value


def _store_values(row: dict[str, Any], session: Session) -> dict[str, Any]:
    kind = _field(row, "kind") or "direct"
    if kind not in STORE_KINDS:
        raise RowRejected(f"kind: {kind!r} is not one of {', '.join(STORE_KINDS)}")
    return {
        "code": _field(row, "store_code", required=True),
        "name": _field(row, "name", required=True),
        "city": _field(row, "city"),
        "region": _field(row, "region"),
        "kind": kind,
    }


def _staff_values(row: dict[str, Any], session: Session) -> dict[str, Any]:
    role = _field(row, "role") or "guide"
    role = ROLE_ALIASES.get(role.lower(), role.lower())
    if role not in STAFF_ROLES:
        raise RowRejected(f"role: {role!r} is not one of {', '.join(STAFF_ROLES)}")
    store_code = _field(row, "store_code")
    store_id = None
    if store_code is not None:
        store_id = session.scalar(sa.select(Store.id).where(Store.code == store_code))
        if store_id is None:
            raise RowRejected(f"store_code: no store {store_code!r} (import stores first)")
    return {
        "staff_no": _field(row, "staff_no", required=True),
        "name": _field(row, "name", required=True),
        "role": role,
        "store_id": store_id,
        "region": _field(row, "region"),
    }


def import_stores(
    *, session_factory: sessionmaker[Session], path: Path, now: datetime
) -> ImportResult:
    """Create or update stores from a CSV file."""
    return _import(session_factory, path, Store, "code", _store_values, {"created_at": now})


def import_staff(
    *, session_factory: sessionmaker[Session], path: Path, now: datetime
) -> ImportResult:
    """Create or update guides and other staff from a CSV file."""
    return _import(session_factory, path, Staff, "staff_no", _staff_values, {"joined_at": now})


def _import(
    session_factory: sessionmaker[Session],
    path: Path,
    model: Any,
    key: str,
    parse: Callable[[dict[str, Any], Session], dict[str, Any]],
    on_create: dict[str, Any],
) -> ImportResult:
    result = ImportResult()
    with session_factory() as session:
        for batch in read_batches(path, batch_size=5_000):
            for item in batch:
                _import_row(
                    session, item.line, item.row or {}, model, key, parse, on_create, result
                )
        session.commit()
    result.rejected_file = _write_rejected(path, result.rejections)
    return result


def _import_row(
    session: Session,
    line: int,
    row: dict[str, Any],
    model: Any,
    key: str,
    parse: Callable[[dict[str, Any], Session], dict[str, Any]],
    on_create: dict[str, Any],
    result: ImportResult,
) -> None:
    try:
        values = parse(row, session)
    except RowRejected as error:
        result.rejections.append(Rejection(line, row, error.reason))
        result.rejected += 1
        return
    existing = session.scalar(sa.select(model).where(getattr(model, key) == values[key]))
    if existing is None:
        session.add(model(**values, **on_create))
        session.flush()
        result.accepted += 1
    elif all(getattr(existing, name) == value for name, value in values.items()):
        result.duplicates += 1
    else:
        for name, value in values.items():
            setattr(existing, name, value)
        session.flush()
        result.accepted += 1
