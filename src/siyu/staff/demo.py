"""People and trust in the demo brand: owners, guide tasks, a PK contest and an API key.

`populate(siyu, now=...)` is called by the lead's demo build after members, orders and staff
are imported. It is idempotent (tasks by source key, the contest by name, the key by name) so
a rebuilt demo does not pile up rows. The console user `guide` is bound to the first staff row
with role guide, so the tasks go to the first guides, that guide first.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from siyu.access import apikeys
from siyu.access.scope import Viewer
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.staff import attribution, leaderboards, tasks
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import Contest, MemberOwner
from siyu.staff.warehouse_owners import sync_member_owners

if TYPE_CHECKING:
    from siyu.bootstrap import Siyu

_TASKS = (
    ("call", "Call these silent members", 5, "Ask how the last tea was; offer the tasting day."),
    ("send_message", "Send the new-season oolong to these customers", 12, None),
)


def populate(siyu: Siyu, *, now: datetime) -> str:
    """Attribute members, copy owners, give guides tasks, open a PK, issue `pos-sync`."""
    clock = FixedClock(now)
    counts = attribution.attribute_members(
        session_factory=siyu.session_factory, clock=clock, actor="demo"
    )
    owners = sync_member_owners(session_factory=siyu.session_factory, warehouse=siyu.warehouse)
    made = _tasks(siyu, now=now)
    contest = _contest(siyu, clock=clock)
    key = _api_key(siyu, clock=clock)
    return (
        f"staff: {owners:,} members owned ({sum(counts.values()):,} attributed now), "
        f"{made} guide tasks, contest {contest!r}, API key pos-sync {key}"
    )


def _tasks(siyu: Siyu, *, now: datetime) -> int:
    tz = siyu.settings.tz
    due = datetime.combine(now.astimezone(tz).date(), time(20, 0), tzinfo=tz)
    made = 0
    with transaction(siyu.session_factory) as session:
        guides = session.scalars(
            sa.select(Staff.id).where(Staff.role == "guide", Staff.active.is_(True))
            .order_by(Staff.id).limit(3)
        ).all()  # fmt: skip
        for guide_id in guides:
            owned = session.scalars(
                sa.select(MemberOwner.member_id).where(MemberOwner.guide_id == guide_id)
                .order_by(MemberOwner.member_id).limit(17)
            ).all()  # fmt: skip
            start = 0
            for kind, title, size, body in _TASKS:
                members = owned[start : start + size]
                start += size
                if not members:
                    continue
                tasks.create_guide_task(
                    session, kind=kind, title=title, guide_id=guide_id, member_ids=members,
                    due_at=due if kind == "call" else due + timedelta(days=1), source="supervisor",
                    source_key=f"demo:{guide_id}:{kind}", body=body, now=now, created_by="demo",
                )  # fmt: skip
                made += 1
    return made


def _contest(siyu: Siyu, *, clock: FixedClock) -> str:
    with siyu.session_factory() as session:
        stores = session.scalars(
            sa.select(Store.code).where(Store.active.is_(True)).order_by(Store.id).limit(2)
        ).all()
        existing = session.scalar(sa.select(Contest.name).where(Contest.name.like("PK %")))
    if existing is not None or len(stores) < 2:
        return existing or "none (fewer than two stores)"
    today = clock.now().astimezone(siyu.settings.tz).date()
    made = leaderboards.create_contest(
        session_factory=siyu.session_factory, clock=clock, viewer=Viewer.system("demo"),
        name=f"PK {stores[0]} vs {stores[1]}", level="store", metric="gmv",
        participants=list(stores), starts_on=today.replace(day=1), ends_on=today,
        tz=siyu.settings.tz,
    )  # fmt: skip
    return made.name


def _api_key(siyu: Siyu, *, clock: FixedClock) -> str:
    live = [
        k for k in apikeys.list_api_keys(session_factory=siyu.session_factory)
        if k.name == "pos-sync" and k.revoked_at is None
    ]  # fmt: skip
    if live:
        return f"exists (sk_{live[0].prefix}_…; rotate it to see a new secret)"
    _, secret = apikeys.create_api_key(
        session_factory=siyu.session_factory, clock=clock, name="pos-sync",
        scopes=["write:events", "read:members", "redeem:coupons"], actor="demo",
    )  # fmt: skip
    return f"{secret} (shown once)"
