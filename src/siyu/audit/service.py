"""Write audit entries inside the caller's transaction (never commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from siyu.audit.models import AuditEntry


def record(
    *,
    db_session: Session,
    now: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int | None = None,
    detail: dict[str, object] | None = None,
) -> AuditEntry:
    """Add an audit row to the current unit of work."""
    entry = AuditEntry(
        at=now,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        detail=detail,
    )
    db_session.add(entry)
    return entry
