"""Puts WeCom into the demo brand, on the simulated WeCom, through the real code paths.

`populate(siyu, now=…)` (called by the demo build after stores, staff and members are
imported) creates three channel codes for real guides of the roster (a store code, a guide card
and a campaign code, with welcome messages and auto-tags), lets about twenty customers scan
them — some are existing members whose unionid is already known, so OneID puts the WeCom
contact on that member — has one customer delete their guide (the churn signal), gathers
customers into a group, and runs two staff-confirmed sends (a 1:1 mass message and a moments
post) that the guides confirm. Every callback is encrypted by the fake and goes through siyu's
real callback endpoint and inbox worker. Deterministic for a given roster: no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom import simulate
from siyu.channels.wecom.models import SendKind, WeComFollow
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.sends import create_staff_send, poll_sends
from siyu.channels.wecom.tagmap import mirror_corp_tags
from siyu.channels.wecom.worker import run_sync
from siyu.growth import service as growth
from siyu.growth.models import CodeScope

CUSTOMERS = (
    "陈静", "刘洋", "赵敏", "孙悦", "周婷", "吴昊", "郑爽", "王磊", "冯雪", "蒋欣",
    "沈佳", "韩梅", "杨帆", "朱琳", "秦岚", "许诺", "何雨", "吕方", "施然", "张弛",
)  # fmt: skip
KNOWN_MEMBERS = 6  # scans by people who are already members (matched by unionid)

_staff = sa.table(
    "staff",
    sa.column("id", sa.BigInteger),
    sa.column("staff_no", sa.String),
    sa.column("role", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("store_id", sa.BigInteger),
)
_stores = sa.table("stores", sa.column("id", sa.BigInteger), sa.column("code", sa.String))
_identities = sa.table(
    "identities",
    sa.column("type", sa.String),
    sa.column("value", sa.String),
    sa.column("member_id", sa.BigInteger),
    sa.column("released_at", sa.DateTime),
)


@dataclass
class _Tally:
    codes: list[str] = field(default_factory=list)
    scans: int = 0
    known: int = 0
    welcomes: int = 0
    sends: int = 0


def _guides(siyu: Siyu) -> list[tuple[str, str]]:
    """(staff_no, store code) of the first active guides of distinct stores."""
    with siyu.session_factory() as session:
        rows = session.execute(
            sa.select(_staff.c.staff_no, _stores.c.code)
            .join(_stores, _stores.c.id == _staff.c.store_id)
            .where(_staff.c.role == "guide", _staff.c.active.is_(True))
            .order_by(_staff.c.id)
        ).all()
    chosen: dict[str, tuple[str, str]] = {}
    for staff_no, store in rows:
        chosen.setdefault(store, (str(staff_no), str(store)))
    return list(chosen.values())[:2] or [(str(r[0]), str(r[1])) for r in rows[:2]]


def _known_unionids(siyu: Siyu) -> list[str]:
    with siyu.session_factory() as session:
        return list(
            session.scalars(
                sa.select(_identities.c.value)
                .where(_identities.c.type == "unionid", _identities.c.released_at.is_(None))
                .order_by(_identities.c.member_id)
                .limit(KNOWN_MEMBERS)
            )
        )


async def _codes(
    siyu: Siyu, sim: simulate.Simulation, guides: list[tuple[str, str]], now: datetime
) -> list[growth.CodeView]:
    tag_group = await sim.client.add_corp_tag(
        {
            "group_name": "来源",
            "tag": [{"name": "门店活码"}, {"name": "导购名片"}, {"name": "秋季新品"}],
        }
    )
    store_tag, card_tag, campaign_tag = (t["id"] for t in tag_group["tag_group"]["tag"])
    with siyu.session_factory() as session:
        remote = (await sim.client.get_corp_tag_list())["tag_group"]
        mirror_corp_tags(session, remote=remote, now=now)
        session.commit()
    (first, first_store), (second, _) = guides[0], guides[-1]
    specs: list[dict[str, Any]] = [
        {
            "name": f"{first_store} counter",
            "scope": CodeScope.STORE,
            "userids": [first],
            "store_code": first_store,
            "state": f"store-{first_store}"[:30],
            "welcome": {"text": "{name}，欢迎来到 Demo Tea！到店出示本消息领取一杯试饮。"},
            "auto_tags": [store_tag],
        },
        {
            "name": f"{second} card",
            "scope": CodeScope.GUIDE,
            "userids": [second],
            "state": f"guide-{second}"[:30],
            "welcome": {
                "text": "{name} 你好，我是你的专属茶饮顾问。",
                "miniprogram": {"title": "新人礼", "appid": "wxDemoTea", "page": "pages/gift"},
            },
            "auto_tags": [card_tag],
        },
        {
            "name": "Autumn launch",
            "scope": CodeScope.CAMPAIGN,
            "userids": sorted({first, second}),
            "campaign": "autumn-launch",
            "state": "campaign-autumn",
            "welcome": {"text": "{name}，桂花乌龙上新，凭券立减 10 元。"},
            "auto_tags": [campaign_tag],
        },
    ]
    return [
        await growth.create_channel_code(
            session_factory=siyu.session_factory,
            gateway=sim.client.add_contact_way,
            now=now,
            **spec,
        )
        for spec in specs
    ]


async def _scan(
    siyu: Siyu, sim: simulate.Simulation, codes: list[growth.CodeView], now: datetime
) -> _Tally:
    tally = _Tally(codes=[c.name for c in codes])
    unionids = _known_unionids(siyu)
    for n, name in enumerate(CUSTOMERS):
        code = codes[n % len(codes)]
        guide = code.userids[n % len(code.userids)]
        unionid = unionids[n] if n < len(unionids) else f"oDemoTeaWeCom{n:04d}"
        fields = sim.fake.simulate_add(
            userid=guide,
            state=code.state,
            name=name,
            unionid=unionid,
            external_userid=f"wmDemo{n:04d}",
        )
        await sim.fake.push(fields, http=sim.siyu_http)
        tally.scans += 1
        tally.known += n < len(unionids)
    result = await process_inbox(
        session_factory=siyu.session_factory, client=sim.client, now=now, tz=siyu.settings.tz
    )
    tally.welcomes = result.welcomes_sent
    return tally


async def _churn_and_group(siyu: Siyu, sim: simulate.Simulation, now: datetime) -> None:
    leaver = sim.fake.customers["wmDemo0004"]
    guide = next(iter(leaver.follow))
    await sim.fake.push(
        sim.fake.simulate_delete_by_customer(userid=guide, external_userid="wmDemo0004"),
        http=sim.siyu_http,
    )
    owner = next(iter(sim.fake.customers["wmDemo0000"].follow))
    members = [e for e, c in sim.fake.customers.items() if owner in c.follow][:8]
    await sim.fake.push(
        sim.fake.simulate_create_group(
            chat_id="wrDemoTeaFans", name="Demo Tea 茶友群", owner=owner, external_userids=members
        ),
        http=sim.siyu_http,
    )
    await process_inbox(
        session_factory=siyu.session_factory, client=sim.client, now=now, tz=siyu.settings.tz
    )


async def _sends(siyu: Siyu, sim: simulate.Simulation, guides: list[str], now: datetime) -> int:
    first, second = guides[0], guides[-1]
    with siyu.session_factory() as session:
        member_ids = [
            m
            for m in session.scalars(
                sa.select(WeComFollow.member_id).where(
                    WeComFollow.userid == first,
                    WeComFollow.deleted_at.is_(None),
                    WeComFollow.member_id.is_not(None),
                )
            )
            if m is not None
        ]
    message = await create_staff_send(
        session_factory=siyu.session_factory,
        client=sim.client,
        kind=SendKind.SINGLE,
        userid=first,
        source_key="demo:autumn-launch:1to1",
        title="Send the autumn launch to your customers",
        content={"text": {"content": "桂花乌龙上新，本周到店第二杯半价。"}},
        now=now,
        tz=siyu.settings.tz,
        member_ids=member_ids,
    )
    moment = await create_staff_send(
        session_factory=siyu.session_factory,
        client=sim.client,
        kind=SendKind.MOMENT,
        userid=second,
        source_key="demo:autumn-launch:moment",
        title="Post the autumn launch on moments",
        content={"text": {"content": "秋天的第一杯桂花乌龙 🍂"}},
        now=now,
        tz=siyu.settings.tz,
    )
    if message.msgid:
        sim.fake.confirm_msg_template(msgid=message.msgid, userid=first)
    for moment_id in sim.fake.moments:
        sim.fake.confirm_moment(moment_id=moment_id, userid=second)
    await poll_sends(session_factory=siyu.session_factory, client=sim.client, now=now)
    return 2 if moment.jobid else 1


def populate(siyu: Siyu, *, now: datetime) -> str:
    """Channel codes, ~20 scans, a churned customer, a group and two confirmed staff sends."""
    guides = _guides(siyu)
    if not guides:
        return "wecom: skipped (the roster has no active guide with a store)"

    async def run() -> _Tally:
        sim = simulate.start(siyu, now=now.timestamp)
        try:
            codes = await _codes(siyu, sim, guides, now)
            tally = await _scan(siyu, sim, codes, now)
            await _churn_and_group(siyu, sim, now)
            tally.sends = await _sends(siyu, sim, [g for g, _ in guides], now)
            return tally
        finally:
            await sim.aclose()

    tally = run_sync(run)
    return (
        f"wecom: {len(tally.codes)} channel codes ({', '.join(tally.codes)}), "
        f"{tally.scans} scans ({tally.known} matched existing members by unionid), "
        f"{tally.welcomes} welcomes, 1 customer left their guide, 1 group, "
        f"{tally.sends} staff sends confirmed"
    )
