"""Console WeCom pages: codes with stats and chart, HQ creates a code, a simulated scan in demo
mode, staff sends and groups after the demo stage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.access import service as access_service
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.channels.wecom.demo import populate
from siyu.growth import service as growth
from tests.e2e.console.helpers import csrf_from, login
from tests.factories.brand import PASSWORD, guide_xiao_li, hq_user, store_sh001
from tests.integration.wecom.harness import configure


@pytest.fixture
def demo_tea(sqlite_siyu: Siyu, monkeypatch: pytest.MonkeyPatch) -> Siyu:
    monkeypatch.delenv("SIYU_WECOM_SECRET", raising=False)
    configure(sqlite_siyu)
    with sqlite_siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        session.commit()
    hq_user(sqlite_siyu.session_factory, sqlite_siyu.clock)
    return sqlite_siyu


@pytest.fixture
def client(demo_tea: Siyu) -> Iterator[TestClient]:
    with TestClient(create_app(demo_tea)) as test_client:
        login(test_client, "zhang.hq", PASSWORD)
        yield test_client


def _post_code(client: TestClient, **fields: str) -> Any:
    """Submit the new-code form as the signed-in user (CSRF token from the page)."""
    page = client.get("/console/wecom/codes")
    return client.post(
        "/console/wecom/codes",
        data={"csrf_token": csrf_from(page.text), **fields},
        follow_redirects=True,
    )


def test_hq_creates_a_code_and_simulates_a_scan(client: TestClient) -> None:
    page = client.get("/console/wecom/codes")
    assert page.status_code == 200
    assert "No channel code yet." in page.text and "Simulated WeCom" in page.text

    created = client.post(
        "/console/wecom/codes",
        data={
            "csrf_token": csrf_from(page.text),
            "name": "SH001 counter",
            "scope": "store",
            "guides": "xiaoli",
            "state": "sh001-counter",
            "store_code": "SH001",
            "welcome": "欢迎 {name}",
        },
        follow_redirects=True,
    )
    assert created.status_code == 200
    assert "sh001-counter" in created.text and "<svg" in created.text

    code_id = created.text.split("/console/wecom/codes/")[1].split("/simulate")[0]
    scanned = client.post(
        f"/console/wecom/codes/{code_id}/simulate",
        data={"csrf_token": csrf_from(created.text), "customer": "Wang Fang"},
    )
    assert scanned.status_code == 200
    assert "Scan simulated: SH001 counter" in scanned.text
    assert "欢迎 Wang Fang" in scanned.text
    assert "200 success" in scanned.text


def test_hq_creates_a_code_whose_welcome_has_an_image_and_a_mini_program_card(
    client: TestClient, demo_tea: Siyu
) -> None:
    created = _post_code(
        client,
        name="Gift card",
        guides="xiaoli",
        state="gift-card",
        welcome="欢迎 {name}",
        welcome_image_url="https://img.example/welcome.jpg",
        card_title="领取新人礼",
        card_appid="wx1234567890",
        card_page="pages/gift/index",
    )
    assert created.status_code == 200

    with demo_tea.session_factory() as session:
        code = growth.code_by_state(session, "gift-card")
    assert code is not None and code.welcome == {
        "text": "欢迎 {name}",
        "image_url": "https://img.example/welcome.jpg",
        "miniprogram": {"title": "领取新人礼", "appid": "wx1234567890", "page": "pages/gift/index"},
    }


def test_a_mini_program_card_without_its_page_is_refused_with_the_reason(
    client: TestClient,
) -> None:
    refused = _post_code(
        client,
        name="Half card",
        guides="xiaoli",
        card_title="领取新人礼",
        card_appid="wx1234567890",
    )
    assert refused.status_code == 422
    assert "welcome.miniprogram needs title, appid, page" in refused.text


def test_a_state_longer_than_30_characters_is_refused_with_the_reason(
    client: TestClient,
) -> None:
    refused = _post_code(client, name="Too long", guides="xiaoli", state="x" * 31)
    assert refused.status_code == 422
    assert "is 31 characters (max 30)" in refused.text


def test_a_guide_may_look_but_not_create_codes(demo_tea: Siyu) -> None:
    access_service.create_user(
        session_factory=demo_tea.session_factory,
        clock=demo_tea.clock,
        username="xiaoli",
        password=PASSWORD,
        role=Role.GUIDE,
        display_name="Xiao Li",
    )
    with TestClient(create_app(demo_tea)) as guide:
        login(guide, "xiaoli", PASSWORD)
        page = guide.get("/console/wecom/codes")
        refused = guide.post(
            "/console/wecom/codes",
            data={"csrf_token": csrf_from(page.text), "name": "Mine", "guides": "xiaoli"},
        )
    assert page.status_code == 200 and "New channel code" not in page.text
    assert refused.status_code == 403


def test_sends_and_groups_pages_show_the_demo_stage(demo_tea: Siyu, client: TestClient) -> None:
    populate(demo_tea, now=demo_tea.clock.now())

    sends = client.get("/console/wecom/sends")
    groups = client.get("/console/wecom/groups")

    assert sends.status_code == 200
    assert "桂花乌龙上新" in sends.text and "moment" in sends.text
    assert groups.status_code == 200 and "Demo Tea 茶友群" in groups.text


def test_pages_need_a_signed_in_user(demo_tea: Siyu) -> None:
    with TestClient(create_app(demo_tea)) as anonymous:
        page = anonymous.get("/console/wecom/codes", follow_redirects=False)
    assert page.status_code in (302, 303)
