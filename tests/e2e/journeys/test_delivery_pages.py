"""Console and API views of what left (or did not): the outbox, each message's policy decisions,
and the per-member preview of a journey's messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from siyu.access import service as access_service
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.db import transaction
from siyu.delivery import outbox
from siyu.delivery.dispatcher import dispatch_due
from tests.factories.journeys import add_member, apply_journey, runtime_for

PASSWORD = "tea-leaves-2026"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WELCOME = """
name: welcome
title: Welcome
trigger: {type: event, event: member_registered}
steps:
  - {id: hello, type: action, action: send_message,
     params: {body: "Hi {{ member.name }}, your store is {{ member.store_code }}"}}
  - {id: day1, type: wait, duration: {days: 1}}
  - {id: tips, type: action, action: send_message,
     params: {channel: email, subject: "Tea tips for {{ member.name }}", body: "Brew at 85°C"}}
  - {id: typo, type: action, action: send_message, params: {body: "Dear {{ member.nickname }}"}}
"""


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    access_service.create_user(
        session_factory=siyu.session_factory,
        clock=siyu.clock,
        username="chen.analyst",
        password=PASSWORD,
        role=Role.ANALYST,
    )
    with TestClient(create_app(siyu)) as test_client:
        match = _CSRF.search(test_client.get("/console/login").text)
        assert match
        test_client.post(
            "/console/login",
            data={"username": "chen.analyst", "password": PASSWORD, "csrf_token": match[1]},
            follow_redirects=False,
        )
        yield test_client


@pytest.fixture
def members(siyu: Siyu) -> tuple[int, int]:
    """Wang Fang (sandbox message, sent) and Li Na (SMS without consent on record, suppressed)."""
    now = siyu.clock.now()
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=now)
        li = add_member(db, name="Li Na", registered_at=now, phone="13900139000")
        outbox.enqueue(
            db_session=db,
            now=now,
            idempotency_key="test:welcome:wang",
            channel="sandbox",
            member_id=wang,
            body="Hi Wang Fang",
            source="journey:welcome:v1:hello",
        )
        outbox.enqueue(
            db_session=db,
            now=now,
            idempotency_key="test:welcome:li",
            channel="sms",
            member_id=li,
            body="Hi Li Na",
        )
    dispatch_due(
        session_factory=siyu.session_factory,
        channels={"sandbox": SandboxChannel()},
        now=now,
        tz=ZoneInfo("Asia/Shanghai"),
    )
    return wang, li


def test_the_outbox_shows_sent_and_suppressed_messages_with_the_reason(
    client: TestClient, members: tuple[int, int]
) -> None:
    page = client.get("/console/delivery").text

    assert "Hi Wang Fang" in page
    assert "Hi Li Na" in page
    assert "139****9000" in page and "13900139000" not in page
    assert 'class="pill decision-sent">sent<' in page
    assert 'class="pill decision-suppressed">suppressed<' in page


def test_the_outbox_filters_by_status(client: TestClient, members: tuple[int, int]) -> None:
    page = client.get("/console/delivery", params={"status": "suppressed"}).text

    assert "Hi Li Na" in page
    assert "Hi Wang Fang" not in page


def test_a_message_page_lists_its_decisions(
    siyu: Siyu, client: TestClient, members: tuple[int, int]
) -> None:
    listing = client.get("/api/delivery/outbox", params={"status": "suppressed"}).json()
    [suppressed] = listing

    page = client.get(f"/console/delivery/{suppressed['id']}").text
    decisions = client.get("/api/delivery/decisions", params={"outbox_id": suppressed["id"]})

    [decision] = decisions.json()
    assert decision["decision"] == "suppressed"
    assert decision["reason"] in page
    assert "test:welcome:li" in page


def test_an_unknown_message_is_404(client: TestClient) -> None:
    assert client.get("/console/delivery/999999").status_code == 404


def test_the_preview_renders_every_message_step_for_the_member_and_names_errors(
    siyu: Siyu, client: TestClient
) -> None:
    # given the welcome journey and Wang Fang at SH001
    apply_journey(siyu, runtime_for(siyu), WELCOME)
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=siyu.clock.now())

    # when the operator previews it for her
    page = client.get("/console/journeys/welcome/preview", params={"member_id": wang}).text
    api = client.get("/api/journeys/welcome/preview", params={"member_id": wang}).json()

    # then each message step shows rendered, and the typo names its unknown field
    assert "Hi Wang Fang, your store is SH001" in page
    assert "Tea tips for Wang Fang" in page
    assert "nickname" in page
    assert [(p["step_id"], p["channel"], p["error"] is None) for p in api] == [
        ("hello", "sandbox", True),
        ("tips", "email", True),
        ("typo", "sandbox", False),
    ]


def test_the_preview_of_an_unknown_member_says_so(siyu: Siyu, client: TestClient) -> None:
    apply_journey(siyu, runtime_for(siyu), WELCOME)

    page = client.get("/console/journeys/welcome/preview", params={"member_id": 424242})

    assert page.status_code == 200
    assert "no member 424242" in page.text
