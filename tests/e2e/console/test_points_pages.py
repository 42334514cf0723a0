"""Console points and tier pages: a member's points panel and the tier program with its chart."""

from __future__ import annotations

from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.loyalty import points_service
from tests.factories.brand import PASSWORD, hq_user, seed_demo_tea

from .helpers import login

TIERS = {
    "levels": [
        {"code": "mini", "name": "Mini member", "threshold": 0},
        {"code": "big", "name": "Big member", "threshold": 100, "multiplier": 2},
    ]
}


def test_the_member_points_page_shows_balance_lots_ledger_and_tier(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    wang = seed_demo_tea(siyu.session_factory)
    now = siyu.clock.now()
    points_service.save_tier_rules(siyu.session_factory, data=TIERS, now=now)
    points_service.grant(
        siyu.session_factory,
        member_id=wang.member_id,
        points=120,
        reason="welcome",
        idempotency_key="welcome",
        now=now,
    )
    hq_user(siyu.session_factory, siyu.clock)
    client = TestClient(create_app(siyu))
    login(client, "zhang.hq", PASSWORD)
    found = client.get("/console/loyalty/points", params={"q": wang.phone}, follow_redirects=False)
    page = client.get(f"/console/loyalty/points/{wang.member_id}")
    assert found.headers["location"] == f"/console/loyalty/points/{wang.member_id}"
    assert page.status_code == 200
    assert "welcome" in page.text and "Big member" in page.text
    assert "120" in page.text


def test_the_tier_page_draws_the_distribution(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    seed_demo_tea(siyu.session_factory)
    points_service.save_tier_rules(siyu.session_factory, data=TIERS, now=siyu.clock.now())
    hq_user(siyu.session_factory, siyu.clock)
    client = TestClient(create_app(siyu))
    login(client, "zhang.hq", PASSWORD)
    page = client.get("/console/loyalty/tiers")
    assert page.status_code == 200
    assert "<svg" in page.text and "Mini member" in page.text


def test_points_pages_require_sign_in(sqlite_siyu: Siyu) -> None:
    client = TestClient(create_app(sqlite_siyu))
    page = client.get("/console/loyalty/tiers", follow_redirects=False)
    assert page.status_code in (302, 303)
