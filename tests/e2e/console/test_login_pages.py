"""Console login: redirects, CSRF on every form, session expiry, lockout, no open redirect."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from tests.e2e.console.helpers import csrf_from, login
from tests.factories.brand import PASSWORD, hq_user, seed_demo_tea


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    hq_user(siyu.session_factory, siyu.clock)
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def test_a_page_without_a_session_redirects_to_login(client: TestClient) -> None:
    response = client.get("/console/members?q=138", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/members%3Fq%3D138"


def test_login_lands_on_the_requested_page(client: TestClient) -> None:
    response = login(client, "zhang.hq", PASSWORD, next_path="/console/members")
    assert (response.status_code, response.headers["location"]) == (303, "/console/members")
    assert "Zhang Wei" in client.get("/console/members").text


def test_overview_shows_members_orders_and_gmv(siyu: Siyu, client: TestClient) -> None:
    seed_demo_tea(siyu.session_factory)
    login(client, "zhang.hq", PASSWORD)
    page = client.get("/console/").text
    assert 'data-kpi="members"' in page
    assert "¥123.50" in page  # 48 + 30 + 45.50
    assert "<title>2026-05: ¥45.50</title>" in page


def test_wrong_password_shows_the_form_again(client: TestClient) -> None:
    response = login(client, "zhang.hq", "guess")
    assert response.status_code == 401
    assert "wrong username or password" in response.text


def test_login_post_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"username": "zhang.hq", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_logout_with_a_forged_token_is_refused(client: TestClient) -> None:
    login(client, "zhang.hq", PASSWORD)
    response = client.post("/console/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/console/", follow_redirects=False).status_code == 200


def test_logout_ends_the_session(client: TestClient) -> None:
    login(client, "zhang.hq", PASSWORD)
    token = csrf_from(client.get("/console/").text)
    client.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_login_issues_a_fresh_session_and_csrf_token(client: TestClient) -> None:
    before = csrf_from(client.get("/console/login").text)
    login(client, "zhang.hq", PASSWORD)
    after = csrf_from(client.get("/console/").text)
    assert before != after


def test_session_ends_after_its_max_age(siyu: Siyu, clock: FixedClock, client: TestClient) -> None:
    login(client, "zhang.hq", PASSWORD)
    clock.advance(timedelta(seconds=siyu.settings.session_max_age_seconds))
    assert client.get("/console/", follow_redirects=False).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_lockout_is_explained_on_the_login_page(client: TestClient) -> None:
    for _ in range(5):
        login(client, "zhang.hq", "guess")
    response = login(client, "zhang.hq", PASSWORD)
    assert response.status_code == 401
    assert "too many failed logins: try again in 15 min" in response.text


def test_next_pointing_off_site_goes_to_the_overview(client: TestClient) -> None:
    response = login(client, "zhang.hq", PASSWORD, next_path="https://evil.example/")
    assert response.headers["location"] == "/console/"


def test_static_css_is_served_without_login(client: TestClient) -> None:
    response = client.get("/console/static/siyu.css")
    assert response.status_code == 200
    assert "http" not in response.text  # no external resources: works offline
