"""Staff sends and customer groups are scoped like members: own, region, everything."""

from __future__ import annotations

import pytest

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.channels.wecom.models import WeComGroup, WeComSendTask
from siyu.channels.wecom.queries import list_groups, list_sends
from siyu.db import transaction
from tests.factories.people import People, seed_people


@pytest.fixture
def people(siyu: Siyu) -> People:
    """Xiao Li (SH001, East) and Xiao Chen (BJ001, North) each have a send and a group."""
    people = seed_people(siyu.session_factory)
    now = siyu.clock.now()
    with transaction(siyu.session_factory) as session:
        for userid in ("xiaoli", "xiaochen"):
            session.add(
                WeComSendTask(
                    source_key=f"sop:{userid}", kind="single", userid=userid,
                    content={"text": {"content": "新品到店"}}, created_at=now,
                )
            )  # fmt: skip
            session.add(
                WeComGroup(chat_id=f"wr-{userid}", name=f"{userid} fans", owner=userid,
                           updated_at=now)
            )  # fmt: skip
    return people


def _guide(people: People, userid: str) -> Viewer:
    return Viewer(role=Role.GUIDE, actor=userid, staff_id=people.guides[userid])


def test_a_guide_sees_only_their_own_sends(siyu: Siyu, people: People) -> None:
    rows = list_sends(session_factory=siyu.session_factory, viewer=_guide(people, "xiaoli"))
    assert [r.userid for r in rows] == ["xiaoli"]


def test_a_guide_sees_only_the_groups_they_own(siyu: Siyu, people: People) -> None:
    rows = list_groups(session_factory=siyu.session_factory, viewer=_guide(people, "xiaochen"))
    assert [g.chat_id for g in rows] == ["wr-xiaochen"]


def test_a_supervisor_sees_the_sends_and_groups_of_their_region(siyu: Siyu, people: People) -> None:
    east = Viewer(role=Role.SUPERVISOR, actor="east.sup", region="East")
    assert [r.userid for r in list_sends(session_factory=siyu.session_factory, viewer=east)] == [
        "xiaoli"
    ]
    assert [g.owner for g in list_groups(session_factory=siyu.session_factory, viewer=east)] == [
        "xiaoli"
    ]


def test_hq_and_analysts_see_every_send(siyu: Siyu, people: People) -> None:
    for role in (Role.HQ, Role.ANALYST):
        rows = list_sends(session_factory=siyu.session_factory, viewer=Viewer(role, "someone"))
        assert sorted(r.userid for r in rows) == ["xiaochen", "xiaoli"]


def test_a_guide_without_a_staff_record_sees_no_send(siyu: Siyu, people: People) -> None:
    nobody = Viewer(role=Role.GUIDE, actor="temp")
    assert list_sends(session_factory=siyu.session_factory, viewer=nobody) == []
