"""Console coupon pages: create a template with the form, issue to members with progress,
see the burn-down and the wallet."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.e2e.console.helpers import csrf_from, login
from tests.factories.brand import PASSWORD, hq_user, seed_demo_tea


@pytest.fixture
def client(sqlite_siyu: Siyu) -> Iterator[TestClient]:
    hq_user(sqlite_siyu.session_factory, sqlite_siyu.clock)
    with TestClient(create_app(sqlite_siyu)) as test_client:
        login(test_client, "zhang.hq", PASSWORD)
        yield test_client


def test_hq_creates_a_template_issues_it_and_sees_it_in_the_wallet(
    client: TestClient, sqlite_siyu: Siyu
) -> None:
    wang_fang = seed_demo_tea(sqlite_siyu.session_factory)
    page = client.get("/console/loyalty/coupons")
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_from(page.text),
        "code": "TEA_100_20",
        "name": "满100减20",
        "kind": "spend_save",
        "threshold_yuan": "100",
        "value_yuan": "20",
        "valid_days": "30",
        "budget_total": "1000",
        "per_member_limit": "1",
    }
    created = client.post("/console/loyalty/coupons", data=form, follow_redirects=True)
    assert created.status_code == 200
    assert "满100减20" in created.text and "Budget burn-down" in created.text

    issue = {"csrf_token": csrf_from(created.text), "member_ids": str(wang_fang.member_id)}
    progress = client.post("/console/loyalty/coupons/TEA_100_20/issue", data=issue)
    for _ in range(50):
        if "finished" in progress.text:
            break
        time.sleep(0.1)
        progress = client.get(progress.url)
    assert "finished" in progress.text
    assert "1 issued" in progress.text

    wallet = client.get("/console/loyalty/wallet", params={"q": "13812345678"})
    assert "满100减20" in wallet.text and "138****5678" in wallet.text


def test_a_bad_form_shows_the_reason_and_creates_nothing(client: TestClient) -> None:
    page = client.get("/console/loyalty/coupons")
    form = {"csrf_token": csrf_from(page.text), "code": "BAD", "name": "x", "kind": "cash"}
    response = client.post("/console/loyalty/coupons", data=form)
    assert "value_fen must be &gt; 0" in response.text or "value_fen must be > 0" in response.text
    assert "No coupon template yet." in response.text
