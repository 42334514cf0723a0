"""/api/staff, /api/tasks, /api/leaderboards, reveal/erase/export through API keys by role.

Personas (tests/factories/people.py): Xiao Li guides Wang Fang at SH001 (East); Xiao Chen
guides Li Na at BJ001 (North); the East supervisor; an analyst; HQ.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from siyu.access import apikeys
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.factories.people import People, seed_people


@pytest.fixture
def people(siyu: Siyu) -> People:
    return seed_people(siyu.session_factory)


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    siyu.settings.api_auth = True
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def _key(siyu: Siyu, role: Role, **kw: object) -> dict[str, str]:
    _, secret = apikeys.create_api_key(
        session_factory=siyu.session_factory, clock=siyu.clock, name=f"{role}-key",
        scopes=["*"] if role is not Role.ANALYST else ["read:members", "read:staff"],
        role=role, actor="zhang.hq", **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def keys(siyu: Siyu, people: People) -> dict[str, dict[str, str]]:
    return {
        "hq": _key(siyu, Role.HQ),
        "guide": _key(siyu, Role.GUIDE, staff_id=people.guides["xiaoli"]),
        "supervisor": _key(siyu, Role.SUPERVISOR, region="East"),
        "analyst": _key(siyu, Role.ANALYST),
    }


def _audit_actions(siyu: Siyu) -> list[str]:
    with siyu.session_factory() as session:
        return list(session.scalars(sa.text("SELECT action FROM audit_log ORDER BY id")))


def test_a_supervisor_assigns_a_task_the_guide_ticks_off_and_completes(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    wang_fang = people.members["Wang Fang"]
    created = client.post(
        "/api/tasks", headers=keys["supervisor"],
        json={"staff_no": "xiaoli", "title": "Call Wang Fang about the new oolong",
              "kind": "call", "member_ids": [wang_fang], "due_at": "2026-06-18T18:00:00+08:00"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    mine = client.get("/api/tasks", headers=keys["guide"]).json()
    assert [t["title"] for t in mine] == ["Call Wang Fang about the new oolong"]
    ticked = client.post(f"/api/tasks/{task_id}/members/{wang_fang}/done", headers=keys["guide"])
    assert ticked.json()["status"] == "done"  # its only member is done: the task is done


def test_a_supervisor_cannot_give_a_guide_another_guides_customer(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    response = client.post(
        "/api/tasks", headers=keys["hq"],
        json={"staff_no": "xiaoli", "title": "Call", "kind": "call",
              "member_ids": [people.members["Li Na"]], "due_at": "2026-06-18T18:00:00+08:00"},
    )  # fmt: skip
    assert response.status_code == 404
    assert "not xiaoli's customers" in response.json()["detail"]["message"]


def test_a_guide_cannot_read_or_complete_another_guides_task(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    created = client.post(
        "/api/tasks", headers=keys["hq"],
        json={"staff_no": "xiaochen", "title": "Call Li Na", "kind": "call",
              "member_ids": [people.members["Li Na"]], "due_at": "2026-06-18T18:00:00+08:00"},
    ).json()  # fmt: skip
    assert client.get(f"/api/tasks/{created['id']}", headers=keys["guide"]).status_code == 403
    done = client.post(f"/api/tasks/{created['id']}/complete", headers=keys["guide"])
    assert done.status_code == 403
    assert client.get("/api/tasks", headers=keys["guide"]).json() == []


def test_stores_and_staff_are_scoped_to_the_supervisors_region(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    stores = client.get("/api/staff/stores", headers=keys["supervisor"]).json()
    assert [s["code"] for s in stores] == ["SH001", "SH002"]
    staff = client.get("/api/staff", headers=keys["supervisor"]).json()
    assert [s["staff_no"] for s in staff] == ["xiaoli", "xiaowang", "xiaozhao"]


def test_hq_hires_a_guide_and_a_leaver_hands_over_their_members(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    hired = client.put(
        "/api/staff", headers=keys["hq"],
        json={"staff_no": "xiaosun", "name": "Xiao Sun", "store_code": "SH001"},
    )  # fmt: skip
    assert hired.status_code == 200 and hired.json()["active"] is True
    left = client.post("/api/staff/xiaoli/leave", headers=keys["hq"], json={"to": "xiaosun"})
    assert left.json() == {"moved": 1, "without_guide": 0, "tasks_cancelled": 0}
    owner = client.get(f"/api/staff/owners/{people.members['Wang Fang']}", headers=keys["hq"])
    assert owner.json()["history"][-1]["reason"] == "xiaoli left"


def test_only_hq_sets_up_staff(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    refused = client.put(
        "/api/staff", headers=keys["supervisor"], json={"staff_no": "x1", "name": "X"}
    )
    assert refused.status_code == 403


def test_analysts_get_masked_phones_and_names(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    detail = client.get(f"/api/members/{people.members['Wang Fang']}", headers=keys["analyst"])
    assert detail.json()["phone"] == "138****5678"
    assert detail.json()["name"] == "W********"
    assert "13812345678" not in detail.text


def test_a_guide_sees_masked_phones_until_an_audited_reveal(
    siyu: Siyu, client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    member = people.members["Wang Fang"]
    listed = client.get("/api/members", headers=keys["guide"]).json()
    assert listed["items"][0]["phone"] == "138****5678"
    revealed = client.post(f"/api/members/{member}/reveal", headers=keys["guide"])
    assert revealed.json() == {"member_id": member, "name": "Wang Fang", "phones": ["13812345678"]}
    assert _audit_actions(siyu)[-1] == "pii.reveal"


def test_reveal_is_refused_to_analysts_and_outside_the_scope(
    client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    li_na = people.members["Li Na"]
    assert client.post(f"/api/members/{li_na}/reveal", headers=keys["guide"]).status_code == 404
    analyst = client.post(f"/api/members/{li_na}/reveal", headers=keys["analyst"])
    assert analyst.status_code == 403  # the analyst key lacks reveal:members


@pytest.mark.parametrize("role", ["guide", "supervisor"])
def test_only_hq_exports_or_erases_a_member(
    client: TestClient, keys: dict[str, dict[str, str]], people: People, role: str
) -> None:
    member = people.members["Wang Fang"]
    assert client.get(f"/api/members/{member}/export", headers=keys[role]).status_code == 403
    assert client.post(f"/api/members/{member}/erase", headers=keys[role]).status_code == 403


def test_hq_exports_then_erases_a_member_both_audited(
    siyu: Siyu, client: TestClient, keys: dict[str, dict[str, str]], people: People
) -> None:
    member = people.members["Wang Fang"]
    exported = client.get(f"/api/members/{member}/export", headers=keys["hq"])
    assert exported.json()["tables"]["members"][0]["name"] == "Wang Fang"
    erased = client.post(f"/api/members/{member}/erase", headers=keys["hq"])
    assert erased.status_code == 200
    assert _audit_actions(siyu)[-2:] == ["member.export_data", "member.erase"]
    after = client.get(f"/api/members/{member}", headers=keys["hq"]).json()
    assert after["name"] is None and after["phone"] is None
