"""Console report pages: the same numbers as the JSON, with inline SVG charts, in Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from siyu.warehouse.sync import sync_all
from tests.conftest import require_real
from tests.e2e import serving
from tests.e2e.console.helpers import login
from tests.factories import operational as op
from tests.factories.brand import PASSWORD, hq_user

NOW = FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def demo_tea(tmp_path: Path) -> Iterator[Siyu]:
    """Wang Fang bought in April and twice in June, Li Lei once in June, Zhao Min never."""
    siyu = bootstrap(Settings(environment="test", data_dir=tmp_path / "data"), clock=NOW)
    with transaction(siyu.session_factory) as session:
        wang = op.member(session, name="Wang Fang", at=datetime(2026, 3, 1, tzinfo=UTC))
        li = op.member(session, name="Li Lei")
        op.member(session, name="Zhao Min")
        op.order_line(
            session, member_id=wang.id, order_id="W0", paid_at=datetime(2026, 4, 2, 4, tzinfo=UTC)
        )
        op.order_line(session, member_id=wang.id, order_id="W1", amount="30.00")
        op.order_line(session, member_id=wang.id, order_id="W2", amount="9.00")
        op.order_line(session, member_id=li.id, order_id="L1", amount="12.00")
    sync_all(
        session_factory=siyu.session_factory,
        warehouse=siyu.warehouse,
        tz=ZoneInfo("Asia/Shanghai"),
    )
    hq_user(siyu.session_factory, NOW)
    yield siyu
    siyu.close()


def signed_in(siyu: Siyu) -> TestClient:
    client = TestClient(create_app(siyu))
    assert login(client, "zhang.hq", PASSWORD).status_code == 303
    return client


@pytest.mark.parametrize("name", ["lifecycle", "rfm", "retention", "repurchase"])
def test_each_report_page_renders_an_inline_svg_chart(demo_tea: Siyu, name: str) -> None:
    page = signed_in(demo_tea).get(f"/console/reports/{name}?as_of=2026-06-18")
    assert page.status_code == 200
    assert f'data-report="{name}"' in page.text
    assert "<svg" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # offline: no CDN


def test_lifecycle_page_shows_the_stage_flows_of_the_month(demo_tea: Siyu) -> None:
    page = signed_in(demo_tea).get("/console/reports/lifecycle?as_of=2026-06-18")
    # Wang Fang was introduced in May (one April order) and is growing in June.
    assert "Stage flows since 2026-05-18" in page.text
    assert '<th scope="row">introduced</th>' in page.text


def test_repurchase_page_states_the_rate(demo_tea: Siyu) -> None:
    page = signed_in(demo_tea).get("/console/reports/repurchase?as_of=2026-06-18")
    assert "Repurchase rate 50.0%: 1 of\n2 buyers" in page.text


def test_report_pages_ask_for_a_login_first(demo_tea: Siyu) -> None:
    page = TestClient(create_app(demo_tea)).get("/console/reports/rfm", follow_redirects=False)
    assert page.status_code in (302, 303, 307)
    assert "/console/login" in page.headers["location"]


def test_an_unknown_report_is_a_404(demo_tea: Siyu) -> None:
    assert signed_in(demo_tea).get("/console/reports/nps").status_code == 404


def test_chromium_shows_the_rfm_table_and_chart(demo_tea: Siyu) -> None:
    require_real("chromium", os.path.exists(CHROMIUM), "Debian chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with serving.served(create_app(demo_tea)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{url}/console/login")
        page.fill("input[name=username]", "zhang.hq")
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url("**/console/")
        page.goto(f"{url}/console/reports/rfm?as_of=2026-06-18")
        assert page.locator("table.rfm tbody tr").count() == 8
        assert page.locator("svg[aria-label='bar chart'] rect").count() == 8
        page.fill("input[name=as_of]", "2026-06-01")
        page.click("section.reports form button[type=submit]")
        page.wait_for_url("**as_of=2026-06-01")
        assert page.locator("h1").inner_text() == "RFM report"
        browser.close()


def test_every_report_page_links_to_the_other_three(demo_tea: Siyu) -> None:
    page = signed_in(demo_tea).get("/console/reports/retention?as_of=2026-06-18")
    for name in ("lifecycle", "rfm", "repurchase"):
        assert f'href="/console/reports/{name}"' in page.text
