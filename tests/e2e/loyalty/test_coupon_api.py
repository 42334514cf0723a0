"""The POS flow over HTTP: claim, list usable for a cart, reserve, redeem, reverse, wallet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.integration.loyalty.coupon_fixtures import SPEND_100_SAVE_20, members

CART = {
    "store_code": "SH001",
    "channel": "pos",
    "lines": [{"sku": "OOLONG-250G", "category": "tea", "amount_fen": 12800}],
}


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


def test_the_pos_flow_redeems_once_and_a_refund_gives_the_coupon_back(
    client: TestClient, siyu: Siyu
) -> None:
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    assert client.post("/api/coupons/templates", json=SPEND_100_SAVE_20).status_code == 201
    claim = {"template_code": "TEA_100_20", "member_id": wang_fang, "request_no": "MP-1"}
    coupon_id = client.post("/api/coupons/claim", json=claim).json()["coupon_id"]
    assert client.post("/api/coupons/claim", json=claim).json()["created"] is False

    usable = client.post("/api/coupons/usable", json={"member_id": wang_fang, "cart": CART})
    assert [(c["coupon_id"], c["discount_fen"]) for c in usable.json()] == [(coupon_id, 2000)]

    order = {"member_id": wang_fang, "cart": CART, "coupon_ids": [coupon_id], "order_no": "SO-1"}
    assert client.post("/api/coupons/reserve", json=order).json()["discount_fen"] == 2000
    redeemed = client.post("/api/coupons/redeem", json={**order, "coupon_ids": None})
    assert [r["state"] for r in redeemed.json()] == ["redeemed"]

    taken = client.post("/api/coupons/redeem", json={**order, "order_no": "SO-2"})
    assert taken.status_code == 409
    assert taken.json()["detail"]["code"] == "coupon_state_conflict"

    back = client.post("/api/coupons/reverse", json={"order_no": "SO-1", "refund_no": "RF-1"})
    assert [r["state"] for r in back.json()] == ["reversed"]
    wallet = client.get(f"/api/coupons/wallet/{wang_fang}").json()
    assert [(w["coupon_id"], w["state"]) for w in wallet] == [(coupon_id, "issued")]


def test_a_bad_template_names_the_field(client: TestClient) -> None:
    response = client.post(
        "/api/coupons/templates", json={**SPEND_100_SAVE_20, "threshold_fen": 1000}
    )
    assert response.status_code == 422
    assert "threshold_fen must be ≥ value_fen" in response.json()["detail"]["message"]


def test_a_paused_template_refuses_claims_over_http_until_resumed(
    client: TestClient, siyu: Siyu
) -> None:
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    client.post("/api/coupons/templates", json=SPEND_100_SAVE_20)
    paused = client.post("/api/coupons/templates/TEA_100_20/pause")
    assert paused.json() == {"code": "TEA_100_20", "status": "paused"}
    claim = {"template_code": "TEA_100_20", "member_id": wang_fang, "request_no": "MP-1"}
    refused = client.post("/api/coupons/claim", json=claim)
    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "template_inactive"
    assert client.post("/api/coupons/templates/TEA_100_20/resume").json()["status"] == "active"
    assert client.post("/api/coupons/claim", json=claim).json()["created"] is True


def test_a_refunded_order_number_cannot_redeem_again(client: TestClient, siyu: Siyu) -> None:
    (wang_fang,) = members(siyu.session_factory, "Wang Fang")
    client.post("/api/coupons/templates", json=SPEND_100_SAVE_20)
    claim = {"template_code": "TEA_100_20", "member_id": wang_fang, "request_no": "MP-1"}
    coupon_id = client.post("/api/coupons/claim", json=claim).json()["coupon_id"]
    order = {"member_id": wang_fang, "cart": CART, "coupon_ids": [coupon_id], "order_no": "SO-1"}
    client.post("/api/coupons/redeem", json=order)
    client.post("/api/coupons/reverse", json={"order_no": "SO-1", "refund_no": "RF-1"})
    again = client.post("/api/coupons/redeem", json=order)
    assert again.status_code == 409
    assert again.json()["detail"]["code"] == "order_reversed"


def test_a_cart_line_above_a_hundred_million_yuan_is_refused_by_field(client: TestClient) -> None:
    cart = {"lines": [{"sku": "X", "amount_fen": 10**30}]}
    response = client.post(
        "/api/coupons/validate", json={"member_id": 1, "cart": cart, "coupon_ids": [1]}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "amount_fen"


def test_consent_for_an_unknown_member_answers_404(client: TestClient) -> None:
    response = client.post(
        "/api/delivery/consents",
        json={"member_id": 424242, "channel": "sms", "granted": True, "source": "pos"},
    )
    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "member_not_found"
