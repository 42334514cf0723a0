"""Scoping matrix: every role × every route that names a member, through the API and console.

Wang Fang is Xiao Li's customer at SH001 (East); Li Na is Xiao Chen's at BJ001 (North).
HQ and analysts see both; the East supervisor and guide Xiao Li see Wang Fang only. Out of
scope is indistinguishable from missing (404) and the response carries none of her data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.access import apikeys
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.e2e.console.helpers import login
from tests.e2e.staff.conftest import PASSWORD
from tests.e2e.staff.conftest import people as people
from tests.factories.people import People

API_ROUTES = [
    "/api/members/{id}",
    "/api/members/{id}/orders",
    "/api/members/by-identity/phone/{phone}",
    "/api/tags/members/{id}",
    "/api/coupons/wallet/{id}",
    "/api/points/{id}",
    "/api/points/{id}/history",
    "/api/points/{id}/tier",
    "/api/staff/owners/{id}",
]
CONSOLE_ROUTES = ["/console/members/{id}", "/console/loyalty/points/{id}"]
PHONES = {"Wang Fang": "13812345678", "Li Na": "13900001111"}
SEES = {
    "hq": {"Wang Fang", "Li Na"},
    "analyst": {"Wang Fang", "Li Na"},
    "supervisor": {"Wang Fang"},
    "guide": {"Wang Fang"},
}
USERS = {"hq": "zhang.hq", "analyst": "chen.analyst", "supervisor": "wu.east", "guide": "xiaoli"}
READ = ["read:members", "read:tags", "read:coupons", "read:points", "read:staff"]


@pytest.fixture
def api(siyu: Siyu, people: People) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    siyu.settings.api_auth = True
    specs = {
        "hq": (Role.HQ, {}),
        "analyst": (Role.ANALYST, {}),
        "supervisor": (Role.SUPERVISOR, {"region": "East"}),
        "guide": (Role.GUIDE, {"staff_id": people.guides["xiaoli"]}),
    }
    headers = {}
    for role, (kind, extra) in specs.items():
        _, secret = apikeys.create_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, name=f"{role}-key",
            scopes=READ, role=kind, actor="zhang.hq", **extra,  # type: ignore[arg-type]
        )  # fmt: skip
        headers[role] = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(siyu)) as client:
        yield client, headers


@pytest.mark.parametrize("role", sorted(SEES))
def test_api_member_routes_obey_the_roles_scope(
    api: tuple[TestClient, dict[str, dict[str, str]]], people: People, role: str
) -> None:
    client, headers = api
    for route in API_ROUTES:
        for name in ("Wang Fang", "Li Na"):
            path = route.format(id=people.members[name], phone=PHONES[name])
            response = client.get(path, headers=headers[role])
            if name in SEES[role]:
                assert response.status_code == 200, (path, response.text)
            else:
                assert response.status_code == 404, (path, response.text)
                assert name not in response.text and PHONES[name] not in response.text


@pytest.mark.parametrize("role", sorted(SEES))
def test_console_member_pages_obey_the_roles_scope(siyu: Siyu, people: People, role: str) -> None:
    with TestClient(create_app(siyu)) as client:
        assert login(client, USERS[role], PASSWORD).status_code == 303
        for route in CONSOLE_ROUTES:
            for name in ("Wang Fang", "Li Na"):
                response = client.get(route.format(id=people.members[name]))
                expected = 200 if name in SEES[role] else 404
                assert response.status_code == expected, (route, name, response.status_code)
                assert PHONES[name] not in response.text  # masked in every case


@pytest.mark.parametrize("role", sorted(SEES))
def test_member_search_obeys_the_roles_scope_in_api_and_console(
    siyu: Siyu, api: tuple[TestClient, dict[str, dict[str, str]]], people: People, role: str
) -> None:
    client, headers = api
    found = client.get("/api/members", headers=headers[role]).json()["items"]
    visible = {people.members[n] for n in SEES[role]} | (
        {people.members["Zhou Min"]} if role != "guide" else set()
    )
    assert {m["id"] for m in found} == visible
    assert login(client, USERS[role], PASSWORD).status_code == 303
    page = client.get("/console/members").text
    for name in ("Wang Fang", "Li Na"):
        assert (f'data-member-id="{people.members[name]}"' in page) == (name in SEES[role])
