"""Periodic work of the staff domain, run by `siyu worker` (journeys.worker.WORKER_HOOKS) and
after imports.

- `expire_overdue_tasks`: open guide tasks past their due instant become expired.
- `attribute_new_members`: members created since the last pass get an owner guide/store by the
  attribution rules. "New" is tracked by a member-id watermark in `staff_settings`
  (`attribution_watermark`): member ids only grow, so each member is attributed once
  automatically — later changes of owner come from `siyu staff attribute` (all members),
  manual assignment or a guide leaving. The import CLI calls it right after an import (before
  the warehouse sync, so `owner_guide` segments see the new owners at once); the worker hook
  catches members created by the API or WeCom callbacks.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.staff import attribution, tasks
from siyu.staff.models_guides import StaffSetting

_WATERMARK_KEY = "attribution_watermark"
_members = sa.table("members", sa.column("id"), sa.column("merged_into_id"), sa.column("erased_at"))


def expire_overdue_tasks(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """Worker hook: expire open tasks past due; returns how many."""
    with transaction(session_factory) as session:
        return tasks.expire_overdue(session, now=now)


def attribute_new_members(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """Worker hook: attribute members above the watermark; returns how many got an owner."""
    with session_factory() as session:
        setting = session.get(StaffSetting, _WATERMARK_KEY)
        since = int(setting.value) if setting is not None else 0
        top = session.scalar(sa.select(sa.func.max(_members.c.id)))
    if top is None or int(top) <= since:
        return 0
    ids = list(_new_ids(session_factory, since=since, top=int(top)))
    counts = attribution.attribute_members(
        session_factory=session_factory, clock=FixedClock(now), member_ids=ids
    )
    with transaction(session_factory) as session:
        setting = session.get(StaffSetting, _WATERMARK_KEY)
        if setting is None:
            session.add(StaffSetting(key=_WATERMARK_KEY, value=int(top), updated_at=now))
        else:
            setting.value, setting.updated_at = max(int(setting.value), int(top)), now
    return sum(counts.values())


def _new_ids(session_factory: sessionmaker[Session], *, since: int, top: int) -> list[int]:
    with session_factory() as session:
        return list(
            session.scalars(
                sa.select(_members.c.id)
                .where(_members.c.id > since, _members.c.id <= top)
                .where(_members.c.merged_into_id.is_(None), _members.c.erased_at.is_(None))
                .order_by(_members.c.id)
            )
        )
