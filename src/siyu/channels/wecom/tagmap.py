"""The two-way mapping of WeCom corp tags and siyu tags (conflict rule: see `sync`).

Used by the full tag sync and by `change_external_tag` callbacks: both mirror WeCom's complete
tag list (a corp has at most a few thousand tags; one call), so a tag renamed or deleted on
WeCom is renamed or marked deleted here the same way whichever path saw it first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.channels.wecom.models import WeComCorpTag

tag_groups = sa.table(
    "tag_groups",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("wecom_group_id", sa.String),
    sa.column("exclusive", sa.Boolean),
    sa.column("created_at"),
)
tags = sa.table(
    "tags",
    sa.column("id", sa.BigInteger),
    sa.column("group_id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("wecom_tag_id", sa.String),
    sa.column("created_at"),
)


def mirror_corp_tags(session: Session, *, remote: list[dict[str, Any]], now: datetime) -> int:
    """Mirror WeCom's full tag list into siyu (never commits); tags absent from it are deleted."""
    seen: set[str] = set()
    for group in remote:
        gid = session.scalar(
            sa.select(tag_groups.c.id).where(tag_groups.c.wecom_group_id == group["group_id"])
        )
        if gid is None:
            gid = session.scalar(
                sa.select(tag_groups.c.id).where(tag_groups.c.name == group["group_name"])
            )
            if gid is None:
                gid = session.execute(
                    sa.insert(tag_groups)
                    .values(
                        name=group["group_name"],
                        exclusive=False,
                        wecom_group_id=group["group_id"],
                        created_at=now,
                    )
                    .returning(tag_groups.c.id)
                ).scalar_one()
            else:
                session.execute(
                    sa.update(tag_groups)
                    .where(tag_groups.c.id == gid)
                    .values(wecom_group_id=group["group_id"])
                )
        for tag in group.get("tag", []):
            seen.add(tag["id"])
            local_id = session.scalar(sa.select(tags.c.id).where(tags.c.wecom_tag_id == tag["id"]))
            if local_id is None:
                local_id = session.execute(
                    sa.insert(tags)
                    .values(group_id=gid, name=tag["name"], wecom_tag_id=tag["id"], created_at=now)
                    .returning(tags.c.id)
                ).scalar_one()
            else:
                session.execute(
                    sa.update(tags).where(tags.c.id == local_id).values(name=tag["name"])
                )
            mirror = session.scalar(sa.select(WeComCorpTag).where(WeComCorpTag.tag_id == tag["id"]))
            if mirror is None:
                mirror = WeComCorpTag(
                    tag_id=tag["id"],
                    name=tag["name"],
                    group_id=group["group_id"],
                    group_name=group["group_name"],
                    updated_at=now,
                )
                session.add(mirror)
            mirror.name, mirror.siyu_tag_id, mirror.deleted, mirror.updated_at = (
                tag["name"],
                local_id,
                False,
                now,
            )
    for gone in session.scalars(
        sa.select(WeComCorpTag).where(WeComCorpTag.tag_id.not_in(seen) if seen else sa.true())
    ):
        gone.deleted, gone.updated_at = True, now
    return len(seen)
