"""Guide task centre: creation is idempotent, completion manual or by events, expiry, scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.journeys.actions import ActionContext, default_registry
from siyu.staff import tasks
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.journey_actions import CreateStaffTask
from tests.factories.people import People, seed_people

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def people(siyu: Siyu) -> People:
    return seed_people(siyu.session_factory)


def _xiao_li(people: People) -> Viewer:
    return Viewer(role=Role.GUIDE, actor="xiaoli", staff_id=people.guides["xiaoli"])


def _create(siyu: Siyu, people: People, *, key: str = "sop:welcome:1", due_hours: int = 8) -> int:
    with transaction(siyu.session_factory) as session:
        task = tasks.create_guide_task(
            session,
            kind="send_message",
            title="Send the new-member gift",
            guide_id=people.guides["xiaoli"],
            member_ids=[people.members["Wang Fang"]],
            due_at=NOW + timedelta(hours=due_hours),
            source="sop",
            source_key=key,
            now=NOW,
        )
        return task.id


def test_creating_a_task_twice_with_one_source_key_returns_the_first(
    siyu: Siyu, people: People
) -> None:
    first = _create(siyu, people)
    second = _create(siyu, people)
    assert second == first
    with siyu.session_factory() as session:
        listed = tasks.list_tasks_for_guide(
            session, guide_id=people.guides["xiaoli"], viewer=_xiao_li(people), now=NOW, tz=TZ
        )
    assert [(t.id, t.title, len(t.members)) for t in listed] == [
        (first, "Send the new-member gift", 1)
    ]


def test_unknown_kind_is_refused_naming_the_field(siyu: Siyu, people: People) -> None:
    with pytest.raises(StaffError, match="task kind 'fax'"), transaction(siyu.session_factory) as s:
        tasks.create_guide_task(
            s,
            kind="fax",
            title="x",
            guide_id=people.guides["xiaoli"],
            member_ids=[],
            due_at=NOW,
            source="sop",
            source_key="k",
            now=NOW,
        )


def test_guide_marks_task_done_and_its_members_with_it(siyu: Siyu, people: People) -> None:
    task_id = _create(siyu, people)
    with transaction(siyu.session_factory) as session:
        done = tasks.complete_task(session, task_id=task_id, viewer=_xiao_li(people), now=NOW)
    assert done.status is tasks.TaskStatus.DONE
    assert done.done_at == NOW
    assert [m.status for m in done.members] == [tasks.MemberTaskStatus.DONE]


def test_send_event_for_the_last_member_completes_the_task(siyu: Siyu, people: People) -> None:
    task_id = _create(siyu, people)
    with transaction(siyu.session_factory) as session:
        completed = tasks.mark_member_done(
            session,
            member_id=people.members["Wang Fang"],
            guide_id=people.guides["xiaoli"],
            kinds=["send_message"],
            now=NOW,
        )
    assert completed == [task_id]
    with siyu.session_factory() as session:
        task = tasks.get_task(session, task_id=task_id, viewer=Viewer.system())
    assert task.status is tasks.TaskStatus.DONE
    assert task.result == {"by": "event"}


def test_another_guide_can_neither_read_nor_complete_the_task(siyu: Siyu, people: People) -> None:
    task_id = _create(siyu, people)
    chen = Viewer(role=Role.GUIDE, actor="xiaochen", staff_id=people.guides["xiaochen"])
    with siyu.session_factory() as session, pytest.raises(StaffError) as read:
        tasks.get_task(session, task_id=task_id, viewer=chen)
    with transaction(siyu.session_factory) as session, pytest.raises(StaffError) as write:
        tasks.complete_task(session, task_id=task_id, viewer=chen, now=NOW)
    assert (read.value.code, write.value.code) == (StaffErrorCode.NOT_ALLOWED,) * 2


def test_supervisor_of_the_region_sees_the_task_but_another_region_does_not(
    siyu: Siyu, people: People
) -> None:
    task_id = _create(siyu, people)
    east = Viewer(role=Role.SUPERVISOR, actor="sup.east", region="East")
    north = Viewer(role=Role.SUPERVISOR, actor="sup.north", region="North")
    with siyu.session_factory() as session:
        assert tasks.get_task(session, task_id=task_id, viewer=east).id == task_id
        with pytest.raises(StaffError):
            tasks.get_task(session, task_id=task_id, viewer=north)


def test_overdue_open_tasks_expire_and_can_no_longer_be_completed(
    siyu: Siyu, people: People
) -> None:
    task_id = _create(siyu, people, due_hours=1)
    later = NOW + timedelta(hours=2)
    with transaction(siyu.session_factory) as session:
        assert tasks.expire_overdue(session, now=later) == 1
    with transaction(siyu.session_factory) as session, pytest.raises(StaffError) as refused:
        tasks.complete_task(session, task_id=task_id, viewer=_xiao_li(people), now=later)
    assert refused.value.code is StaffErrorCode.TASK_CLOSED


def _ctx(session: object, member_id: int, *, key: str) -> ActionContext:
    return ActionContext(
        db_session=session,  # type: ignore[arg-type]
        now=NOW,
        tz=TZ,
        journey="welcome",
        version=1,
        step_id="day3",
        enrollment_id=member_id,
        member_id=member_id,
        idempotency_key=key,
        context={},
    )


def test_journey_action_is_registered_with_the_engine() -> None:
    assert "create_staff_task" in default_registry(renderer=None).kinds()  # type: ignore[arg-type]


def test_journey_step_puts_members_of_one_guide_on_one_task_once(siyu: Siyu) -> None:
    people = seed_people(siyu.session_factory)
    action = CreateStaffTask()
    params = {"title": "Day 3: share the brewing guide", "due_in_hours": 12}
    with transaction(siyu.session_factory) as session:
        first = action.execute(_ctx(session, people.members["Wang Fang"], key="a"), params)
        again = action.execute(_ctx(session, people.members["Wang Fang"], key="a"), params)
        other = action.execute(_ctx(session, people.members["Li Na"], key="b"), params)
    assert first == again
    with siyu.session_factory() as session:
        mine = tasks.list_tasks_for_guide(
            session, guide_id=people.guides["xiaoli"], viewer=Viewer.system(), now=NOW, tz=TZ
        )
    assert [(t.title, [m.member_id for m in t.members]) for t in mine] == [
        ("Day 3: share the brewing guide", [people.members["Wang Fang"]])
    ]
    assert other.endswith(f"for guide {people.guides['xiaochen']}")


def test_journey_step_for_a_member_without_owner_is_an_outcome(siyu: Siyu) -> None:
    people = seed_people(siyu.session_factory, owners=False)
    with transaction(siyu.session_factory) as session:
        outcome = CreateStaffTask().execute(
            _ctx(session, people.members["Wang Fang"], key="a"), {"title": "Call"}
        )
    assert outcome == "no task: the member has no owner guide"
