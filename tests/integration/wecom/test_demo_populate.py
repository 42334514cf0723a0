"""The demo's WeCom stage on Demo Tea's roster: codes, scans, OneID merges, churn, group, sends."""

from __future__ import annotations

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom.demo import populate
from siyu.channels.wecom.models import (
    WeComFollow,
    WeComGroupMember,
    WeComInbox,
    WeComSendTask,
    WeComWelcome,
)
from siyu.growth.stats import code_stats
from siyu.identity.service import find_member_by_identity
from tests.factories.brand import guide_xiao_li, store_sh001, wang_fang
from tests.integration.wecom.harness import configure


def test_populate_puts_wecom_into_the_demo_brand(siyu: Siyu) -> None:
    # given Demo Tea with store SH001, guide Xiao Li and member Wang Fang (with a unionid)
    configure(siyu)
    with siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        persona = wang_fang(session)
        session.commit()

    # when the demo stage runs
    summary = populate(siyu, now=siyu.clock.now())

    # then three codes brought twenty customers, greeted within the window
    assert summary == (
        "wecom: 3 channel codes (SH001 counter, xiaoli card, Autumn launch), "
        "20 scans (1 matched existing members by unionid), 20 welcomes, "
        "1 customer left their guide, 1 group, 2 staff sends confirmed"
    )
    stats = code_stats(session_factory=siyu.session_factory)
    assert [(s.adds, s.deletions) for s in stats] == [(7, 0), (7, 1), (6, 0)]
    # and Wang Fang's scan landed on her existing member through OneID
    assert (
        find_member_by_identity(session_factory=siyu.session_factory, identity="wmDemo0000")
        == persona.member_id
    )
    with siyu.session_factory() as session:
        statuses = session.scalars(sa.select(WeComInbox.status).distinct()).all()
        assert statuses == ["done"]
        assert session.scalars(sa.select(WeComWelcome.status).distinct()).all() == ["sent"]
        in_group = session.scalar(sa.select(sa.func.count()).select_from(WeComGroupMember))
        assert in_group == 9  # Xiao Li and eight customers
        sends = session.execute(sa.select(WeComSendTask.kind, WeComSendTask.status)).all()
        assert sorted(sends) == [("moment", "sent"), ("single", "sent")]
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComFollow)) == 20
