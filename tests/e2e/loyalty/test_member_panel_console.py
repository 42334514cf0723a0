"""Console: the member 360 page's loyalty panel (wallet, points, tier, stamp cards, links) and
the pause / resume button on a coupon template page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.loyalty import points_service, service
from siyu.loyalty.stamps import StampCardSpec
from tests.e2e.console.helpers import csrf_from, login
from tests.factories.brand import PASSWORD, hq_user, seed_demo_tea

TEA_100_20 = {
    "code": "TEA_100_20",
    "name": "满100减20",
    "kind": "spend_save",
    "threshold_fen": 10000,
    "value_fen": 2000,
    "valid_days": 30,
}
TIERS = {
    "levels": [
        {"code": "leaf", "name": "Leaf 茶叶", "threshold": 0},
        {"code": "bud", "name": "Bud 茶芽", "threshold": 300},
    ]
}


@pytest.fixture
def client(sqlite_siyu: Siyu) -> Iterator[TestClient]:
    hq_user(sqlite_siyu.session_factory, sqlite_siyu.clock)
    with TestClient(create_app(sqlite_siyu)) as test_client:
        login(test_client, "zhang.hq", PASSWORD)
        yield test_client


def test_the_member_page_shows_wallet_points_tier_and_stamp_cards(
    client: TestClient, sqlite_siyu: Siyu
) -> None:
    # given Wang Fang holds a 满100减20 coupon and 120 points, with a tier programme and a card
    siyu, now = sqlite_siyu, sqlite_siyu.clock.now()
    wang = seed_demo_tea(siyu.session_factory)
    with transaction(siyu.session_factory) as db:
        service.create_template(db, spec=TEA_100_20, now=now, actor="hq")
        service.issue_coupon(
            db, template_code="TEA_100_20", member_id=wang.member_id, idempotency_key="k", now=now
        )
    points_service.grant(
        siyu.session_factory, member_id=wang.member_id, points=120, reason="welcome",
        idempotency_key="welcome", now=now,
    )  # fmt: skip
    points_service.save_tier_rules(siyu.session_factory, data=TIERS, now=now)
    card = StampCardSpec(code="TEA5", name="5 teas, 1 free", stamps_required=5, reward_points=200)
    points_service.create_stamp_card(siyu.session_factory, spec=card, now=now)
    # when HQ opens her 360 page
    page = client.get(f"/console/members/{wang.member_id}")
    # then the loyalty panel shows all of it, with links to the loyalty pages
    assert page.status_code == 200
    panel = page.text[page.text.index('id="loyalty"') :]
    assert "满100减20" in panel and ">issued<" in panel
    assert '<dd id="loyalty-points">120' in panel
    assert "Leaf 茶叶" in panel and "176.50 to bud" in panel  # her seeded orders: ¥123.50
    assert "5 teas, 1 free: 0 / 5" in panel
    assert f'href="/console/loyalty/points/{wang.member_id}"' in panel
    assert 'href="/console/loyalty/coupons/TEA_100_20"' in panel
    wallet = client.get(f"/console/loyalty/wallet?member={wang.member_id}")
    assert wallet.status_code == 200 and "满100减20" in wallet.text


def test_a_member_without_loyalty_data_gets_an_empty_panel(
    client: TestClient, sqlite_siyu: Siyu
) -> None:
    wang = seed_demo_tea(sqlite_siyu.session_factory)
    page = client.get(f"/console/members/{wang.member_id}")
    assert page.status_code == 200
    assert "No coupons." in page.text and "no tier programme" in page.text


def test_hq_pauses_and_resumes_a_template_from_its_page(
    client: TestClient, sqlite_siyu: Siyu
) -> None:
    with transaction(sqlite_siyu.session_factory) as db:
        service.create_template(db, spec=TEA_100_20, now=sqlite_siyu.clock.now(), actor="hq")
    page = client.get("/console/loyalty/coupons/TEA_100_20")
    assert "Pause issuing" in page.text
    paused = client.post(
        "/console/loyalty/coupons/TEA_100_20/pause",
        data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )
    assert '<span class="pill" id="template-status">paused</span>' in paused.text
    assert "Resume issuing" in paused.text
    resumed = client.post(
        "/console/loyalty/coupons/TEA_100_20/resume",
        data={"csrf_token": csrf_from(paused.text)},
        follow_redirects=True,
    )
    assert '<span class="pill" id="template-status">active</span>' in resumed.text


def test_pausing_without_the_csrf_token_is_refused(client: TestClient, sqlite_siyu: Siyu) -> None:
    with transaction(sqlite_siyu.session_factory) as db:
        service.create_template(db, spec=TEA_100_20, now=sqlite_siyu.clock.now(), actor="hq")
    refused = client.post("/console/loyalty/coupons/TEA_100_20/pause", data={})
    assert refused.status_code in (400, 403)
    with transaction(sqlite_siyu.session_factory) as db:
        assert service.get_template(db, code="TEA_100_20").status == "active"
