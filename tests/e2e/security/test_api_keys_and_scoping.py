"""API keys (scopes, revocation, rotation) and data scoping by role through the HTTP API.

Personas: HQ integration key, Xiao Li's guide key, the East supervisor's key, an analyst key.
Wang Fang is Xiao Li's customer (SH001, East); Li Na is Xiao Chen's (BJ001, North).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.access import apikeys
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from tests.factories.people import People, seed_people

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE members; --",
    "%' OR 1=1 --",
    "\\' UNION SELECT * FROM users --",
    "_%",
    "13812345678' --",
]


@pytest.fixture
def people(siyu: Siyu) -> People:
    return seed_people(siyu.session_factory)


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    siyu.settings.api_auth = True
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def _key(siyu: Siyu, scopes: list[str], role: Role = Role.HQ, **kw: object) -> tuple[int, str]:
    key, secret = apikeys.create_api_key(
        session_factory=siyu.session_factory, clock=siyu.clock, name=f"{role}-key",
        scopes=scopes, role=role, actor="zhang.hq", **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return key.id, secret


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def keys(siyu: Siyu, people: People) -> dict[str, str]:
    return {
        "hq": _key(siyu, ["*"])[1],
        "guide": _key(siyu, ["read:members"], Role.GUIDE, staff_id=people.guides["xiaoli"])[1],
        "supervisor": _key(siyu, ["read:members"], Role.SUPERVISOR, region="East")[1],
        "analyst": _key(siyu, ["read:members"], Role.ANALYST)[1],
    }


def test_a_request_without_a_key_is_refused(client: TestClient, people: People) -> None:
    response = client.get("/api/members")
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "invalid_api_key"


def test_health_and_openapi_stay_open(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_a_key_without_the_routes_scope_is_forbidden(siyu: Siyu, client: TestClient) -> None:
    _, secret = _key(siyu, ["read:reports"])
    response = client.get("/api/members", headers=_auth(secret))
    assert response.status_code == 403
    assert response.json()["detail"]["message"] == "this key lacks scope read:members"


def test_a_read_key_cannot_write_events(siyu: Siyu, client: TestClient) -> None:
    _, secret = _key(siyu, ["read:members"])
    response = client.post("/api/ingest/events", json=[], headers=_auth(secret))
    assert response.status_code == 403


def test_revoked_key_is_refused_and_rotation_issues_a_working_successor(
    siyu: Siyu, client: TestClient, people: People
) -> None:
    key_id, old = _key(siyu, ["read:members"])
    assert client.get("/api/members", headers=_auth(old)).status_code == 200
    rotated, new = apikeys.rotate_api_key(
        session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id, actor="zhang.hq"
    )
    assert client.get("/api/members", headers=_auth(old)).status_code == 401
    assert client.get("/api/members", headers=_auth(new)).status_code == 200
    apikeys.revoke_api_key(
        session_factory=siyu.session_factory, clock=siyu.clock, key_id=rotated.id, actor="x"
    )
    response = client.get("/api/members", headers=_auth(new))
    assert response.json()["detail"]["code"] == "api_key_revoked"


def test_keys_are_hashed_at_rest_and_record_last_use(
    siyu: Siyu, client: TestClient, keys: dict[str, str]
) -> None:
    client.get("/api/members", headers=_auth(keys["hq"]))
    with transaction(siyu.session_factory) as session:
        stored = session.execute(
            __import__("sqlalchemy").text("SELECT secret_hash, last_used_at FROM api_keys")
        ).all()
    assert all(keys["hq"] not in row[0] for row in stored)
    assert any(row[1] is not None for row in stored)


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("hq", {"Wang Fang", "Li Na", "Zhou Min"}),
        ("analyst", {"Wang Fang", "Li Na", "Zhou Min"}),
        ("supervisor", {"Wang Fang", "Zhou Min"}),
        ("guide", {"Wang Fang"}),
    ],
)
def test_search_lists_only_the_members_in_the_roles_scope(
    client: TestClient, keys: dict[str, str], people: People, role: str, visible: set[str]
) -> None:
    body = client.get("/api/members", headers=_auth(keys[role])).json()
    assert {m["id"] for m in body["items"]} == {people.members[n] for n in visible}
    assert body["total"] == len(visible)


@pytest.mark.parametrize(
    "route",
    [
        "/api/members/{li_na}",
        "/api/members/{li_na}/orders",
        "/api/members/by-identity/phone/13900001111",
    ],
)
@pytest.mark.parametrize("role", ["guide", "supervisor"])
def test_a_member_outside_the_scope_reads_as_not_found(
    client: TestClient, keys: dict[str, str], people: People, route: str, role: str
) -> None:
    path = route.format(li_na=people.members["Li Na"])
    assert client.get(path, headers=_auth(keys[role])).status_code == 404


def test_a_guide_reads_their_own_member(
    client: TestClient, keys: dict[str, str], people: People
) -> None:
    response = client.get(
        f"/api/members/{people.members['Wang Fang']}", headers=_auth(keys["guide"])
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Wang Fang"


@pytest.mark.parametrize("attempt", INJECTIONS)
def test_sql_injection_through_the_search_finds_nothing_and_breaks_nothing(
    client: TestClient, keys: dict[str, str], attempt: str
) -> None:
    response = client.get("/api/members", params={"q": attempt}, headers=_auth(keys["guide"]))
    assert response.status_code == 200
    assert response.json()["total"] == 0
    after = client.get("/api/members", headers=_auth(keys["hq"])).json()
    assert after["total"] == 3


@pytest.mark.parametrize("attempt", INJECTIONS)
def test_sql_injection_through_the_identity_route_is_not_found(
    client: TestClient, keys: dict[str, str], attempt: str
) -> None:
    response = client.get(
        f"/api/members/by-identity/member_no/{attempt.replace('/', '')}", headers=_auth(keys["hq"])
    )
    assert response.status_code in (404, 422)


def test_only_hq_manages_keys_and_the_secret_is_shown_once(
    client: TestClient, keys: dict[str, str]
) -> None:
    refused = client.post(
        "/api/apikeys", json={"name": "pos", "scopes": ["write:events"]},
        headers=_auth(keys["guide"]),
    )  # fmt: skip
    assert refused.status_code == 403
    created = client.post(
        "/api/apikeys", json={"name": "pos", "scopes": ["write:events"]},
        headers=_auth(keys["hq"]),
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json()["secret"].startswith("sk_")
    listed = client.get("/api/apikeys", headers=_auth(keys["hq"])).json()
    assert "secret" not in listed[-1]
    assert listed[-1]["scopes"] == ["write:events"]
