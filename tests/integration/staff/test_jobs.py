"""Worker hooks of the staff domain and the warehouse copy of owners."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.journeys.worker import WORKER_HOOKS
from siyu.staff import attribution, jobs, tasks
from siyu.warehouse.sync import sync_all
from tests.factories.people import People, seed_people

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def test_the_worker_runs_the_staff_hooks() -> None:
    assert "siyu.staff.jobs:expire_overdue_tasks" in WORKER_HOOKS
    assert "siyu.staff.jobs:attribute_new_members" in WORKER_HOOKS


def test_new_members_are_attributed_once_by_the_worker_hook(siyu: Siyu) -> None:
    people: People = seed_people(siyu.session_factory, owners=False)
    first = jobs.attribute_new_members(session_factory=siyu.session_factory, now=NOW)
    again = jobs.attribute_new_members(session_factory=siyu.session_factory, now=NOW)
    assert (first, again) == (3, 0)
    with siyu.session_factory() as session:
        owner = attribution.owner_of(session, member_id=people.members["Wang Fang"])
    assert owner is not None and owner.guide_id == people.guides["xiaoli"]


def test_overdue_tasks_expire_in_the_worker_hook(siyu: Siyu) -> None:
    people = seed_people(siyu.session_factory)
    with transaction(siyu.session_factory) as session:
        tasks.create_guide_task(
            session, kind="call", title="Call Wang Fang", guide_id=people.guides["xiaoli"],
            member_ids=[people.members["Wang Fang"]], due_at=NOW - timedelta(hours=1),
            source="supervisor", source_key="t-1", now=NOW - timedelta(days=1),
        )  # fmt: skip
    assert jobs.expire_overdue_tasks(session_factory=siyu.session_factory, now=NOW) == 1
    with siyu.session_factory() as session:
        task = tasks.get_task(session, task_id=1, viewer=Viewer.system())
    assert task.status is tasks.TaskStatus.EXPIRED


def test_the_warehouse_sync_copies_member_owners(siyu: Siyu) -> None:
    people = seed_people(siyu.session_factory)
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    rows = siyu.warehouse.query(
        "SELECT owner_guide, owner_store FROM member_owners WHERE member_id = ?",
        [people.members["Wang Fang"]],
    )
    assert [tuple(r) for r in rows] == [("xiaoli", "SH001")]
