"""Console journey pages: list, detail (per-step counts, holdout comparison), form + YAML editor."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from siyu.access import service as access_service
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.journeys import templates as shipped
from siyu.journeys.models import Enrollment, EnrollmentState, Journey
from tests.factories.journeys import add_member

PASSWORD = "tea-leaves-2026"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WELCOME = """
name: welcome
title: Welcome
trigger: {type: event, event: member_registered}
goal: {event: order_paid, within: {days: 14}}
holdout_percent: 10
steps:
  - {id: day1, type: wait, duration: {days: 1}}
  - {id: hello, type: action, action: send_message, params: {body: "Hi {{ member.name }}"}}
"""


def _csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def _login(client: TestClient, username: str) -> None:
    token = _csrf(client.get("/console/login").text)
    response = client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    for username, role in (("zhang.hq", Role.HQ), ("chen.analyst", Role.ANALYST)):
        access_service.create_user(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            username=username,
            password=PASSWORD,
            role=role,
        )
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def _publish_yaml(client: TestClient, text: str) -> tuple[int, str, str]:
    token = _csrf(client.get("/console/journeys/new").text)
    response = client.post(
        "/console/journeys/save",
        data={"csrf_token": token, "mode": "yaml", "yaml": text},
        follow_redirects=False,
    )
    return response.status_code, response.headers.get("location", ""), response.text


def test_the_list_offers_the_four_shipped_templates(client: TestClient) -> None:
    _login(client, "zhang.hq")
    page = client.get("/console/journeys").text
    for name in ("new-member-sop", "product-launch", "win-back", "coupon-expiring"):
        assert f"/console/journeys/new?template={name}" in page
    assert shipped.names() == ["coupon-expiring", "new-member-sop", "product-launch", "win-back"]


def test_publishing_yaml_creates_the_journey_and_shows_its_steps(client: TestClient) -> None:
    _login(client, "zhang.hq")
    status, location, _ = _publish_yaml(client, WELCOME)
    assert (status, location) == (303, "/console/journeys/welcome?saved=created")
    detail = client.get(location).text
    assert "Saved: created." in detail
    assert "<td>day1</td><td>wait</td>" in detail
    assert "<td>hello</td><td>action</td>" in detail
    assert "Conversion against the holdout" in detail


def test_a_template_opens_in_the_structured_form_and_publishes_unchanged(
    client: TestClient,
) -> None:
    # given the new-member SOP template opened in the editor's form
    _login(client, "zhang.hq")
    page = client.get("/console/journeys/new?template=new-member-sop").text
    assert 'name="name" value="new-member-sop"' in page
    fields = _form_fields(page)

    # when the form is published as is, twice
    first = client.post("/console/journeys/save", data=fields, follow_redirects=False)
    second = client.post("/console/journeys/save", data=fields, follow_redirects=False)

    # then the first creates it and the second changes nothing (no new version)
    assert first.headers["location"] == "/console/journeys/new-member-sop?saved=created"
    assert second.headers["location"] == "/console/journeys/new-member-sop?saved=unchanged"


def test_a_form_edit_publishes_a_new_version(siyu: Siyu, client: TestClient) -> None:
    _login(client, "zhang.hq")
    _publish_yaml(client, WELCOME)
    fields = _form_fields(client.get("/console/journeys/welcome/edit").text)
    fields["title"] = "Welcome to Demo Tea"
    response = client.post("/console/journeys/save", data=fields, follow_redirects=False)
    assert response.headers["location"] == "/console/journeys/welcome?saved=new_version"
    with transaction(siyu.session_factory) as db:
        journey = db.query(Journey).filter_by(name="welcome").one()
        assert (journey.title, journey.current_version) == ("Welcome to Demo Tea", 2)


def test_an_invalid_definition_reshows_the_editor_naming_the_field(client: TestClient) -> None:
    _login(client, "zhang.hq")
    status, _, page = _publish_yaml(client, WELCOME.replace("days: 1}", "fortnights: 1}"))
    assert status == 422
    assert 'role="alert"' in page
    assert "fortnights" in page


def test_an_analyst_may_look_but_not_publish(client: TestClient) -> None:
    _login(client, "chen.analyst")
    assert client.get("/console/journeys").status_code == 200
    status, _, _ = _publish_yaml(client, WELCOME)
    assert status == 403


def test_pause_and_resume_from_the_detail_page(client: TestClient) -> None:
    _login(client, "zhang.hq")
    _publish_yaml(client, WELCOME)
    token = _csrf(client.get("/console/journeys/welcome").text)
    client.post("/console/journeys/welcome/pause", data={"csrf_token": token})
    assert '<span class="pill status">paused</span>' in client.get("/console/journeys/welcome").text
    client.post("/console/journeys/welcome/resume", data={"csrf_token": token})
    assert '<span class="pill status">active</span>' in client.get("/console/journeys/welcome").text


def test_the_holdout_comparison_shows_rates_and_interval(siyu: Siyu, client: TestClient) -> None:
    # given 100 treated members of whom 30 converted and 100 held out of whom 10 converted
    _login(client, "zhang.hq")
    _publish_yaml(client, WELCOME)
    now = siyu.clock.now()
    with transaction(siyu.session_factory) as db:
        journey_id = db.query(Journey.id).filter_by(name="welcome").scalar()
        for index in range(200):
            member_id = add_member(db, name=f"Member {index}", registered_at=now)
            held = index >= 100
            converted = index % 100 < (10 if held else 30)
            state = EnrollmentState.HOLDOUT if held else EnrollmentState.COMPLETED
            db.add(
                Enrollment(
                    journey_id=journey_id,
                    version=1,
                    member_id=member_id,
                    occurrence_key=f"test:{index}",
                    state=state,
                    entered_at=now,
                    converted_at=now + timedelta(days=2) if converted else None,
                )
            )

    # when the detail page is opened
    page = client.get("/console/journeys/welcome").text

    # then uplift 20 points, 95% CI 20 ± 1.96·sqrt(.3·.7/100 + .1·.9/100) = [+9.3, +30.7]
    assert "30 of 100 converted" in page
    assert "10 of 100" in page
    assert "Uplift <strong>+20.0 points</strong>" in page
    assert "[+9.3, +30.7] points" in page
    assert "<strong>significant</strong>" in page


def _form_fields(page: str) -> dict[str, str]:
    """The structured form's fields as a browser would submit them."""
    form = page[page.index('id="form"') : page.index('id="yaml"')]
    fields: dict[str, str] = {}
    for name, value in re.findall(r'<input type="(?:hidden|text|number)"[^>]*?name="([^"]+)"'
                                  r'[^>]*?value="([^"]*)"', form):  # fmt: skip
        fields[name] = _unescape(value)
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', body)
        fields[name] = selected.group(1) if selected else ""
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = _unescape(text)
    return fields


def _unescape(text: str) -> str:
    return html.unescape(text)
