"""Full and incremental sync of customers, customer groups and corp tags from WeCom.

- Customers: for every follow user, batch/get_by_user with cursor pagination; each (guide,
  customer) becomes a follow row and the customer's identities go through OneID. Incremental =
  the same walk, writing only what changed (WeCom has no "changed since" API; callbacks carry
  the increments in between).
- Groups: groupchat/list (cursor) + groupchat/get; membership is diffed (`apply_group_snapshot`).
- Corp tags, conflict rule: **WeCom wins for names and existence of WeCom-born tags; siyu wins
  for tags siyu created** — a siyu tag group without a `wecom_group_id` is pushed with
  add_corp_tag and the ids written back; a WeCom tag is mirrored into a siyu tag group of the
  same name (created when missing); a WeCom tag deleted on WeCom is marked deleted here (the
  siyu tag is kept, its members keep it, it just stops mirroring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.models import WeComFollow
from siyu.channels.wecom.processing import _ingest, _upsert_customer, apply_group_snapshot
from siyu.channels.wecom.tagmap import mirror_corp_tags, tag_groups, tags


@dataclass
class SyncResult:
    customers: int = 0
    follows_changed: int = 0
    groups: int = 0
    tags_pulled: int = 0
    tags_pushed: int = 0


async def sync_customers(
    *, session_factory: sessionmaker[Session], client: WeComClient, now: datetime, tz: tzinfo
) -> SyncResult:
    result = SyncResult()
    userids = await client.get_follow_user_list()
    cursor = ""
    while True:
        page = await client.batch_get_customers(userids=userids, cursor=cursor)
        with session_factory() as session:
            for item in page.get("external_contact_list", []):
                result.customers += 1
                result.follows_changed += _apply_customer(session, item, now, tz)
            session.commit()
        cursor = page.get("next_cursor", "")
        if not cursor:
            return result


def _apply_customer(session: Session, item: dict[str, Any], now: datetime, tz: tzinfo) -> int:
    contact, info = item["external_contact"], item["follow_info"]
    ext, userid = str(contact["external_userid"]), str(info["userid"])
    follow = session.scalar(
        sa.select(WeComFollow).where(
            WeComFollow.userid == userid, WeComFollow.external_userid == ext
        )
    )
    added = datetime.fromtimestamp(int(info.get("createtime") or now.timestamp()), tz)
    if (
        follow is not None
        and follow.remark == (info.get("remark") or None)
        and follow.deleted_at is None
    ):
        return 0
    fields = {"UserID": userid, "CreateTime": str(int(added.timestamp()))}
    member_id = _ingest(
        session,
        kind="wecom_contact_synced",
        fields=fields,
        ext=ext,
        properties={"userid": userid},
        now=now,
        tz=tz,
        contact=contact,
    )
    _upsert_customer(session, ext=ext, contact=contact, member_id=member_id, now=now)
    if follow is None:
        follow = WeComFollow(
            userid=userid,
            external_userid=ext,
            added_at=added,
            updated_at=now,
            state=info.get("state") or None,
        )
        session.add(follow)
    follow.member_id, follow.remark, follow.deleted_at, follow.updated_at = (
        member_id,
        info.get("remark") or None,
        None,
        now,
    )
    return 1


async def sync_groups(
    *, session_factory: sessionmaker[Session], client: WeComClient, now: datetime, tz: tzinfo
) -> SyncResult:
    result = SyncResult()
    cursor = ""
    while True:
        page = await client.list_group_chats(cursor=cursor)
        for item in page.get("group_chat_list", []):
            chat = (await client.get_group_chat(chat_id=item["chat_id"]))["group_chat"]
            with session_factory() as session:
                apply_group_snapshot(session, chat=chat, fields=None, now=now, tz=tz)
                session.commit()
            result.groups += 1
        cursor = page.get("next_cursor", "")
        if not cursor:
            return result


async def sync_corp_tags(
    *, session_factory: sessionmaker[Session], client: WeComClient, now: datetime
) -> SyncResult:
    """Push siyu-born tag groups, then mirror every WeCom tag (rule in the module docstring)."""
    result = SyncResult()
    with session_factory() as session:
        local = session.execute(
            sa.select(tag_groups.c.id, tag_groups.c.name).where(
                tag_groups.c.wecom_group_id.is_(None)
            )
        ).all()
        pending = {
            gid: (
                name,
                session.execute(
                    sa.select(tags.c.id, tags.c.name).where(tags.c.group_id == gid)
                ).all(),
            )
            for gid, name in local
        }
    for group_id, (name, members) in pending.items():
        if not members:
            continue
        answer = (
            await client.add_corp_tag(
                {"group_name": name, "tag": [{"name": t} for _, t in members]}
            )
        )["tag_group"]
        by_name = {t["name"]: t["id"] for t in answer["tag"]}
        with session_factory() as session:
            session.execute(
                sa.update(tag_groups)
                .where(tag_groups.c.id == group_id)
                .values(wecom_group_id=answer["group_id"])
            )
            for tag_id, tag_name in members:
                session.execute(
                    sa.update(tags)
                    .where(tags.c.id == tag_id)
                    .values(wecom_tag_id=by_name.get(tag_name))
                )
            session.commit()
        result.tags_pushed += len(members)
    remote = (await client.get_corp_tag_list())["tag_group"]
    with session_factory() as session:
        result.tags_pulled = mirror_corp_tags(session, remote=remote, now=now)
        session.commit()
    return result
