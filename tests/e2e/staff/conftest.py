"""Console users for Demo Tea's people: HQ, the East supervisor, guide Xiao Li, an analyst."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from siyu.access import service as access_service
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.staff import tasks
from tests.e2e.console.helpers import login
from tests.factories.people import People, seed_people

PASSWORD = "correct horse battery"


@pytest.fixture
def people(siyu: Siyu) -> People:
    found = seed_people(siyu.session_factory)
    for username, role, extra in (
        ("zhang.hq", Role.HQ, {}),
        ("wu.east", Role.SUPERVISOR, {"region": "East"}),
        ("xiaoli", Role.GUIDE, {"staff_id": found.guides["xiaoli"]}),
        ("chen.analyst", Role.ANALYST, {}),
    ):
        access_service.create_user(
            session_factory=siyu.session_factory, clock=siyu.clock, username=username,
            password=PASSWORD, role=role, **extra,  # type: ignore[arg-type]
        )  # fmt: skip
    return found


@pytest.fixture
def app_client(siyu: Siyu) -> Iterator[TestClient]:
    with TestClient(create_app(siyu)) as client:
        yield client


def signed_in(client: TestClient, username: str) -> TestClient:
    assert login(client, username, PASSWORD).status_code == 303
    return client


def give_task(siyu: Siyu, people: People, *, title: str = "Send the new oolong") -> int:
    """Xiao Li's task about Wang Fang, due tonight."""
    now = siyu.clock.now()
    with transaction(siyu.session_factory) as session:
        return tasks.create_guide_task(
            session, kind="send_message", title=title, guide_id=people.guides["xiaoli"],
            member_ids=[people.members["Wang Fang"]], due_at=now + timedelta(hours=8),
            source="supervisor", source_key=f"test:{title}", now=now,
        ).id  # fmt: skip
