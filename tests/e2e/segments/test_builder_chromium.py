"""The segment builder in a real Chromium: conditions and JSON stay in step, the count is live."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from tests.conftest import require_real
from tests.e2e import serving
from tests.factories.brand import PASSWORD, add_member, hq_user, seed_demo_tea

CHROMIUM = os.environ.get("SIYU_TEST_CHROMIUM", "/usr/bin/chromium")
NOW = FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """Demo Tea (Wang Fang F with two orders, Zhang Wei M) behind a real HTTP server."""
    require_real("chromium", os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    siyu = bootstrap(Settings(environment="test", data_dir=tmp_path / "data"), clock=NOW)
    seed_demo_tea(siyu.session_factory)
    with transaction(siyu.session_factory) as db:
        add_member(db, name="Zhang Wei", identities={"phone": "13900001111"}, gender="M")
    hq_user(siyu.session_factory, siyu.clock)
    with serving.served(create_app(siyu)) as url:
        yield url
    siyu.close()


def test_the_live_count_follows_the_conditions_and_the_json(served: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-background-networking", "--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(f"{served}/console/login")
        page.fill("input[name=username]", "zhang.hq")
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url("**/console/")
        page.goto(f"{served}/console/segments/new")
        count = page.locator("#live-count")
        expect(count).to_have_attribute("data-count", "2")  # no condition: everyone

        page.select_option("#new-kind", "attr")
        page.click("#add-condition")
        row = page.locator("#rows li").first
        row.locator("[data-field=attr]").select_option("gender")
        row.locator("[data-field=value]").fill("M")
        expect(count).to_have_attribute("data-count", "1")
        assert json.loads(page.input_value("#definition")) == {
            "all": [{"attr": "gender", "op": "eq", "value": "M"}]
        }

        row.locator("[data-field=not]").check()
        expect(count).to_have_attribute("data-count", "1")
        expect(page.locator("#sample td").nth(1)).to_have_text("W********")

        repeat = {"event": "order_paid", "within_days": 365, "count": {"op": "gte", "value": 3}}
        page.fill("#definition", json.dumps({"any": [repeat]}))
        expect(count).to_have_attribute("data-count", "0")
        expect(page.locator("#rows li")).to_have_attribute("data-kind", "event")
        assert page.locator("#combinator").input_value() == "any"

        page.fill("#name", "loyal")
        page.click("form#segment-form button[type=submit]")
        page.wait_for_url("**/console/segments/loyal?saved=1")
        assert "Count history" in page.content()
        browser.close()
