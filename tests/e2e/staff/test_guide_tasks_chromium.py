"""Guide Xiao Li on her phone, in a real Chromium: sign in, see today's task, mark it done."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from siyu.access import service as access_service
from siyu.access.schemas import Role
from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.staff import tasks
from tests.conftest import require_real
from tests.e2e import serving
from tests.factories.people import People, seed_people

CHROMIUM = os.environ.get("SIYU_TEST_CHROMIUM", "/usr/bin/chromium")
PHONE: Any = {"width": 390, "height": 844}  # a common phone viewport


@pytest.fixture
def served(sqlite_siyu: Siyu) -> Iterator[tuple[str, People]]:
    require_real("chromium", os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    siyu = sqlite_siyu
    people = seed_people(siyu.session_factory)
    access_service.create_user(
        session_factory=siyu.session_factory, clock=siyu.clock, username="xiaoli",
        password="correct horse battery", role=Role.GUIDE, staff_id=people.guides["xiaoli"],
    )  # fmt: skip
    now = siyu.clock.now()
    with transaction(siyu.session_factory) as session:
        tasks.create_guide_task(
            session, kind="call", title="Call Wang Fang about the tasting day",
            guide_id=people.guides["xiaoli"], member_ids=[people.members["Wang Fang"]],
            due_at=now + timedelta(hours=6), source="supervisor", source_key="chromium:1", now=now,
        )  # fmt: skip
    with serving.served(create_app(siyu)) as url:
        yield url, people


def test_a_guide_on_a_phone_sees_todays_task_and_marks_it_done(
    served: tuple[str, People],
) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--disable-background-networking", "--no-sandbox"]
        )
        page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        page.goto(f"{base}/console/tasks")
        page.wait_for_url("**/console/login**")
        page.fill("input[name=username]", "xiaoli")
        page.fill("input[name=password]", "correct horse battery")
        page.click("form button[type=submit]")
        page.wait_for_url("**/console/tasks**")
        task = page.locator("section.task").first
        assert "Call Wang Fang about the tasting day" in task.inner_text()
        assert "138****5678" in task.inner_text()
        # the card fits the phone: no horizontal scrolling needed to reach the button
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
        task.locator("button.primary").click()
        page.wait_for_selector("#summary")
        assert page.locator("#summary").inner_text() == "0 open · 1 done today"
        assert "done" in page.locator("section.task .pill").first.inner_text()
        browser.close()
