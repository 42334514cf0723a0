"""Console pages of people and trust: tasks, customers, ranking, region, contests, API keys,
reveal — each for the role that uses it, and refused to the others."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from siyu.bootstrap import Siyu
from tests.e2e.console.helpers import csrf_from
from tests.e2e.staff.conftest import give_task, signed_in
from tests.factories.people import People


def _audit(siyu: Siyu) -> list[str]:
    with siyu.session_factory() as session:
        return list(session.scalars(sa.text("SELECT action FROM audit_log ORDER BY id")))


def test_a_guide_sees_todays_task_and_marks_it_done(
    siyu: Siyu, app_client: TestClient, people: People
) -> None:
    task_id = give_task(siyu, people)
    client = signed_in(app_client, "xiaoli")
    page = client.get("/console/tasks")
    assert "Send the new oolong" in page.text and "138****5678" in page.text
    done = client.post(
        f"/console/tasks/{task_id}/done", data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )  # fmt: skip
    assert "0 open · 1 done today" in done.text


def test_a_guide_ticks_off_one_member(siyu: Siyu, app_client: TestClient, people: People) -> None:
    task_id = give_task(siyu, people)
    client = signed_in(app_client, "xiaoli")
    token = csrf_from(client.get("/console/tasks").text)
    member = people.members["Wang Fang"]
    after = client.post(
        f"/console/tasks/{task_id}/members/{member}/done", data={"csrf_token": token},
        follow_redirects=True,
    )  # fmt: skip
    assert "1/1 done" in after.text


def test_an_analyst_cannot_mark_a_task_done(
    siyu: Siyu, app_client: TestClient, people: People
) -> None:
    task_id = give_task(siyu, people)
    client = signed_in(app_client, "chen.analyst")
    token = csrf_from(client.get("/console/tasks").text)
    refused = client.post(f"/console/tasks/{task_id}/done", data={"csrf_token": token})
    assert "error=not_allowed" in refused.headers.get("location", refused.text) or (
        "not_allowed" in refused.text
    )


def test_my_customers_lists_only_the_guides_own_members_masked(
    app_client: TestClient, people: People
) -> None:
    page = signed_in(app_client, "xiaoli").get("/console/staff/customers").text
    assert "Wang Fang" in page and "138****5678" in page
    assert "Li Na" not in page and "13812345678" not in page


def test_a_guide_sees_their_ranking(app_client: TestClient, people: People) -> None:
    page = signed_in(app_client, "xiaoli").get("/console/staff/ranking").text
    assert "My rank" in page
    assert 'class="me"' in page
    assert "Xiao Chen" not in page  # North is another region


def test_the_supervisor_dashboard_shows_the_region_only(
    app_client: TestClient, people: People
) -> None:
    page = signed_in(app_client, "wu.east").get("/console/staff/dashboard").text
    assert "East" in page and "Xiao Li" in page and "SH002" in page
    assert "BJ001" not in page and "Xiao Chen" not in page


def test_a_guide_may_not_open_the_region_dashboard(app_client: TestClient, people: People) -> None:
    response = signed_in(app_client, "xiaoli").get("/console/staff/dashboard")
    assert response.status_code == 403


def test_hq_creates_a_store_pk_contest_with_a_bar_chart(
    app_client: TestClient, people: People
) -> None:
    client = signed_in(app_client, "zhang.hq")
    token = csrf_from(client.get("/console/staff/contests").text)
    created = client.post(
        "/console/staff/contests",
        data={"csrf_token": token, "name": "June PK", "level": "store", "metric": "gmv",
              "participants": "SH001, BJ001", "starts_on": "2026-06-01", "ends_on": "2026-06-30"},
        follow_redirects=True,
    )  # fmt: skip
    assert created.status_code == 200
    assert "June PK" in created.text and "<svg" in created.text
    assert re.search(r"SH001.*BJ001|BJ001.*SH001", created.text, re.S)


def test_hq_creates_an_api_key_shown_once_then_rotates_and_revokes_it(
    siyu: Siyu, app_client: TestClient, people: People
) -> None:
    client = signed_in(app_client, "zhang.hq")
    token = csrf_from(client.get("/console/admin/apikeys").text)
    created = client.post(
        "/console/admin/apikeys",
        data={"csrf_token": token, "name": "pos-sync", "scopes": "write:events", "role": "hq"},
    )
    secret = re.search(r'<code id="secret">(sk_[^<]+)</code>', created.text)
    assert secret is not None
    listed = client.get("/console/admin/apikeys").text
    assert secret.group(1) not in listed and "pos-sync" in listed
    key_id = re.search(r'data-key-id="(\d+)"', listed).group(1)  # type: ignore[union-attr]
    rotated = client.post(f"/console/admin/apikeys/{key_id}/rotate", data={"csrf_token": token})
    assert '<code id="secret">sk_' in rotated.text
    assert _audit(siyu)[-2:] == ["apikey.create", "apikey.rotate"]


@pytest.mark.parametrize("username", ["xiaoli", "wu.east", "chen.analyst"])
def test_only_hq_opens_the_api_key_page(
    app_client: TestClient, people: People, username: str
) -> None:
    assert signed_in(app_client, username).get("/console/admin/apikeys").status_code == 403


def test_the_reveal_button_shows_the_full_phone_and_is_audited(
    siyu: Siyu, app_client: TestClient, people: People
) -> None:
    client = signed_in(app_client, "xiaoli")
    member = people.members["Wang Fang"]
    page = client.get(f"/console/members/{member}").text
    assert "13812345678" not in page and 'id="reveal"' in page
    shown = client.post(f"/console/members/{member}/reveal", data={"csrf_token": csrf_from(page)})
    assert '<strong id="revealed">13812345678</strong>' in shown.text
    assert _audit(siyu)[-1] == "pii.reveal"


def test_analysts_have_no_reveal(app_client: TestClient, people: People) -> None:
    client = signed_in(app_client, "chen.analyst")
    member = people.members["Wang Fang"]
    page = client.get(f"/console/members/{member}").text
    assert 'id="reveal"' not in page
    refused = client.post(f"/console/members/{member}/reveal", data={"csrf_token": csrf_from(page)})
    assert refused.status_code == 403


def test_a_supervisor_assigns_a_task_by_phone_and_the_guide_sees_it(
    siyu: Siyu, app_client: TestClient, people: People
) -> None:
    supervisor = signed_in(app_client, "wu.east")
    page = supervisor.get("/console/tasks")
    assert 'action="/console/tasks/assign"' in page.text and "Xiao Li" in page.text
    assigned = supervisor.post(
        "/console/tasks/assign",
        data={"csrf_token": csrf_from(page.text), "staff_no": "xiaoli",
              "title": "Invite to the oolong tasting", "kind": "call",
              "due_on": "2026-06-18", "members": "138 1234 5678\n"},
        follow_redirects=False,
    )  # fmt: skip
    assert assigned.status_code == 303 and "error" not in assigned.headers["location"]
    supervisor.post("/console/logout", data={"csrf_token": csrf_from(page.text)})
    guide = signed_in(app_client, "xiaoli")
    assert "Invite to the oolong tasting" in guide.get("/console/tasks").text


def _supervisor_assigns_a_call(client: TestClient, members: str) -> str:
    """East supervisor Wu asks Xiao Li to call `members`; the page shown afterwards."""
    supervisor = signed_in(client, "wu.east")
    token = csrf_from(supervisor.get("/console/tasks").text)
    page = supervisor.post(
        "/console/tasks/assign",
        data={"csrf_token": token, "staff_no": "xiaoli", "title": "Call", "kind": "call",
              "due_on": "2026-06-18", "members": members},
        follow_redirects=True,
    )  # fmt: skip
    return str(page.text)


def test_assigning_a_customer_the_guide_does_not_own_is_refused_with_the_reason(
    app_client: TestClient, people: People
) -> None:
    page = _supervisor_assigns_a_call(app_client, "13700002222")  # Zhou Min, Xiao Zhao's
    assert "Could not do that" in page
    assert 'class="card task' not in page  # nothing was created


def test_an_unknown_identity_names_its_line(app_client: TestClient, people: People) -> None:
    page = _supervisor_assigns_a_call(app_client, "13812345678\n13000000000")
    assert "line 2" in page


def test_a_guide_has_no_assign_form_and_cannot_post_it(
    app_client: TestClient, people: People
) -> None:
    guide = signed_in(app_client, "xiaoli")
    page = guide.get("/console/tasks")
    assert "/console/tasks/assign" not in page.text
    refused = guide.post(
        "/console/tasks/assign",
        data={"csrf_token": csrf_from(page.text), "staff_no": "xiaoli", "title": "x",
              "kind": "call", "due_on": "2026-06-18", "members": "13812345678"},
        follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 403
