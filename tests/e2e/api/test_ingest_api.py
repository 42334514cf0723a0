"""HTTP batch ingest: rows in DESIGN §4.2 names, rejections by position, idempotent re-sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu

WANG_FANG = {
    "member_no": "M0001",
    "phone": "+86 138-1234-5678",
    "name": "Wang Fang",
    "gender": "F",
    "registered_at": "2026-03-01T10:00:00",
    "store_code": "SH001",
    "channel": "pos",
}
ORDER_LINES = [
    {"order_id": "SO-1001", "line_no": 1, "member_no": "M0001", "paid_at": "2026-03-08T12:30:00",
     "amount": "48.00", "status": "paid", "category": "tea", "sku": "oolong-250g"},
    {"order_id": "SO-1001", "line_no": 2, "member_no": "M0001", "paid_at": "2026-03-08T12:30:00",
     "amount": "30.00", "status": "paid", "category": "teaware", "sku": "cup-white"},
]  # fmt: skip


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def test_ingested_member_and_orders_are_readable(client: TestClient) -> None:
    members = client.post("/api/ingest/members", json=[WANG_FANG]).json()
    orders = client.post("/api/ingest/orders", json=ORDER_LINES).json()
    assert (members["accepted"], orders["accepted"]) == (1, 2)
    member = client.get("/api/members/by-identity/member_no/M0001").json()
    assert (member["name"], member["phone"], member["spend"]) == (
        "Wang Fang",
        "13812345678",
        "78.00",
    )


def test_resending_the_same_rows_counts_duplicates(client: TestClient) -> None:
    client.post("/api/ingest/orders", json=ORDER_LINES)
    again = client.post("/api/ingest/orders", json=ORDER_LINES).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)


def test_bad_row_is_rejected_by_position_and_the_rest_kept(client: TestClient) -> None:
    bad = {**ORDER_LINES[0], "order_id": "SO-2", "amount": "-5"}
    body = client.post("/api/ingest/orders", json=[ORDER_LINES[0], bad]).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["rejections"][0]["line"] == 2
    assert "amount" in body["rejections"][0]["reason"]


def test_unknown_kind_is_422(client: TestClient) -> None:
    assert client.post("/api/ingest/coupons", json=[]).status_code == 422
