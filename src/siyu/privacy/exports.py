"""One audit trail for every file of member data that leaves siyu (issue #8).

Exports of member data — a segment's member list (API, console, CLI), one person's PIPL export,
… — write an audit row `data.export` naming who, what kind, which subject (segment name,
member id) and how much. Adapters call `audit_export` after the file was produced; PIPL
exports (`privacy.service.export_member_data`) audit themselves as `member.export_data`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from siyu.audit import service as audit_service
from siyu.db import transaction


def audit_export(
    *,
    session_factory: sessionmaker[Session],
    now: datetime,
    actor: str,
    kind: str,
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record that `actor` exported `kind` data about `subject` (own transaction)."""
    with transaction(session_factory) as session:
        audit_service.record(
            db_session=session, now=now, actor=actor, action="data.export", entity_type=kind,
            entity_id=subject[:64], detail=detail or {},
        )  # fmt: skip
