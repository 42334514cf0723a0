"""The points API as a POS would call it (SQLite and PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.factories.brand import seed_demo_tea


def test_a_pos_earns_spends_replays_and_refunds_points(siyu: Siyu) -> None:
    wang = seed_demo_tea(siyu.session_factory)
    client = TestClient(create_app(siyu))
    base = f"/api/points/{wang.member_id}"
    earned = client.post(f"{base}/earn", json={"idempotency_key": "welcome", "points": 200})
    spent = client.post(f"{base}/spend", json={"idempotency_key": "SO-88", "points": 50})
    again = client.post(f"{base}/spend", json={"idempotency_key": "SO-88", "points": 50})
    refunded = client.post(
        f"{base}/reverse", json={"idempotency_key": "SO-88:refund", "original_key": "SO-88"}
    )
    assert earned.status_code == 200 and earned.json()["balance"] == 200
    assert spent.json()["balance"] == 150
    assert (again.json()["created"], again.json()["entry_id"]) == (False, spent.json()["entry_id"])
    assert refunded.json()["balance"] == 200
    assert client.get(base).json()["balance"] == 200
    kinds = [e["kind"] for e in client.get(f"{base}/history").json()]
    assert kinds == ["restore", "spend", "earn"]


def test_overspending_answers_409_with_the_error_code(siyu: Siyu) -> None:
    wang = seed_demo_tea(siyu.session_factory)
    client = TestClient(create_app(siyu))
    refused = client.post(
        f"/api/points/{wang.member_id}/spend", json={"idempotency_key": "SO-1", "points": 10}
    )
    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "insufficient_points"


def test_paying_or_reversing_for_an_unknown_member_answers_404(siyu: Siyu) -> None:
    client = TestClient(create_app(siyu))
    paid = client.post(
        "/api/points/999999/pay",
        json={"idempotency_key": "SO-1", "points": 100, "total_fen": 1000},
    )
    reversed_ = client.post(
        "/api/points/999999/reverse", json={"idempotency_key": "RF-1", "original_key": "SO-1"}
    )
    assert paid.status_code == 404
    assert reversed_.status_code == 404
    assert reversed_.json()["detail"]["code"] == "member_not_found"


def test_a_member_id_beyond_64_bits_is_the_callers_error(siyu: Siyu) -> None:
    client = TestClient(create_app(siyu))
    response = client.post(
        f"/api/points/{2**70}/spend", json={"idempotency_key": "SO-1", "points": 10}
    )
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "number_out_of_range"
