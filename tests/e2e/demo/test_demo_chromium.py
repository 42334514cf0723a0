"""A newcomer's first minutes in the demo console, in a real Chromium: sign in, find a member,
open their 360 page, look at a journey and a report."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.api.app import create_app
from siyu.bootstrap import bootstrap
from siyu.config import Settings
from siyu.demo.build import DEMO_ADMIN
from tests.conftest import require_real
from tests.e2e import serving

CHROMIUM = os.environ.get("SIYU_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def served_demo(demo_dir: Path) -> Iterator[str]:
    require_real("chromium", os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    siyu = bootstrap(Settings(data_dir=demo_dir))
    with serving.served(create_app(siyu)) as url:
        yield url


def a_phone_of_one_member(demo_dir: Path) -> str:
    """A phone that appears on exactly one member row of the generated file (not a placeholder)."""
    with (demo_dir / "demo-input" / "members.csv").open(encoding="utf-8") as handle:
        phones = [row["phone"] for row in csv.DictReader(handle) if row["phone"]]
    unique = [phone for phone in phones if phones.count(phone) == 1 and phone.isdigit()]
    return unique[0]


def test_newcomer_signs_in_finds_a_member_by_phone_and_opens_a_journey_and_a_report(
    served_demo: str, demo_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    username, password = DEMO_ADMIN
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-background-networking", "--no-sandbox"]
        )
        page = browser.new_page()
        page.set_default_timeout(90_000)  # a loaded CI machine renders the first pages slowly
        page.goto(f"{served_demo}/console/")
        page.wait_for_url("**/console/login**")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")
        page.wait_for_url("**/console/")

        page.goto(f"{served_demo}/console/members")
        phones = page.locator("table.members td.phone").all_inner_texts()
        assert any("****" in shown for shown in phones)  # masked (some members have no phone)
        phone = a_phone_of_one_member(demo_dir)
        messy = f"+86 {phone[:3]}-{phone[3:7]} {phone[7:]}"  # as an operator might paste it
        page.fill("input[name=q]", messy)
        page.click("form.search button[type=submit]")
        page.wait_for_url("**/console/members?q=*")
        rows = page.locator("table.members tbody tr")
        assert rows.count() == 1
        assert rows.locator("td.phone").inner_text() == f"{phone[:3]}****{phone[7:]}"
        rows.locator("a").first.click()
        page.wait_for_url("**/console/members/*")
        assert phone[7:] in page.content()

        page.goto(f"{served_demo}/console/journeys")
        assert page.get_by_text("new-member-sop").count() >= 1

        page.goto(f"{served_demo}/console/reports/lifecycle")
        assert page.locator("svg").count() >= 1
        browser.close()
