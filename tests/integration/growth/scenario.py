"""Demo Tea's two channel codes and three customers, shared by the stats tests."""

from __future__ import annotations

from datetime import timedelta

from siyu.bootstrap import Siyu
from siyu.channels.wecom.processing import process_inbox
from siyu.db import transaction
from siyu.growth import service as growth
from siyu.growth.models import CodeScope
from siyu.identity.service import find_member_by_identity
from tests.factories.brand import guide_xiao_li, store_sh001
from tests.factories.journeys import add_order
from tests.integration.wecom.harness import harness


async def two_codes_three_customers(siyu: Siyu) -> None:
    """SH001 counter: Wang Fang (ordered the next day) and Li Lei (deleted Xiao Li);
    Xiao Li's card: Zhang Min (no order)."""
    h = harness(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp()
    with siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        session.commit()
    for name, scope, state in (
        ("SH001 counter", CodeScope.STORE, "sh001-counter"),
        ("Xiao Li card", CodeScope.GUIDE, "g-xiaoli"),
    ):
        await growth.create_channel_code(
            session_factory=siyu.session_factory,
            gateway=h.client.add_contact_way,
            name=name,
            scope=scope,
            userids=["xiaoli"],
            store_code="SH001",
            state=state,
            now=siyu.clock.now(),
        )
    for ext, name, state in (
        ("wmWangFang", "Wang Fang", "sh001-counter"),
        ("wmLiLei", "Li Lei", "sh001-counter"),
        ("wmZhangMin", "Zhang Min", "g-xiaoli"),
    ):
        fields = h.fake.simulate_add(userid="xiaoli", state=state, name=name, external_userid=ext)
        await h.fake.push(fields, http=h.siyu_http)
    await h.fake.push(
        h.fake.simulate_delete_by_customer(userid="xiaoli", external_userid="wmLiLei"),
        http=h.siyu_http,
    )
    await process_inbox(
        session_factory=siyu.session_factory,
        client=h.client,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
    )
    await h.aclose()
    wang = find_member_by_identity(session_factory=siyu.session_factory, identity="wmWangFang")
    with transaction(siyu.session_factory) as db:
        add_order(
            db, member_id=wang, order_id="SH001-0001", at=siyu.clock.now() + timedelta(days=1)
        )
