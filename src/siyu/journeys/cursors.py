"""Named watermarks for the engine's scans, locked while a worker advances them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.journeys.models import JourneyCursor


def lock(db_session: Session, name: str, *, now: datetime, initial: str) -> JourneyCursor | None:
    """The cursor row, locked for this transaction; None when another worker holds it."""
    query = select(JourneyCursor).where(JourneyCursor.name == name)
    if db_session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    cursor = db_session.scalar(query)
    if cursor is not None:
        return cursor
    try:
        with db_session.begin_nested():
            cursor = JourneyCursor(name=name, value=initial, updated_at=now)
            db_session.add(cursor)
            db_session.flush()
    except IntegrityError:
        return None  # created (and held) by a concurrent worker
    return cursor


def advance(cursor: JourneyCursor, value: str, *, now: datetime) -> None:
    cursor.value = value
    cursor.updated_at = now
