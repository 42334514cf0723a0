"""HTTP API of members: search by any identity, the 360 by id and by identity, orders, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.db import transaction
from tests.factories.brand import WangFang, add_member, add_order, merge_into, seed_demo_tea


@pytest.fixture
def wang_fang(siyu: Siyu) -> WangFang:
    return seed_demo_tea(siyu.session_factory)


@pytest.fixture
def client(siyu: Siyu) -> Iterator[TestClient]:
    with TestClient(create_app(siyu)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "query", ["13812345678", "+86 138-1234-5678", "(138) 1234 5678", "M0001", "Wang"]
)
def test_search_finds_wang_fang_by_phone_in_any_format_member_no_or_name(
    client: TestClient, wang_fang: WangFang, query: str
) -> None:
    body = client.get("/api/members", params={"q": query}).json()
    assert body["total"] == 1
    assert body["items"][0] == {
        "id": wang_fang.member_id,
        "member_no": "M0001",
        "name": "Wang Fang",
        "phone": "13812345678",
        "gender": "F",
        "store_code": "SH001",
        "channel": "pos",
        "registered_at": "2026-03-01T02:00:00Z",
    }


def test_search_by_unionid(client: TestClient, wang_fang: WangFang) -> None:
    body = client.get("/api/members", params={"q": wang_fang.unionid}).json()
    assert [m["id"] for m in body["items"]] == [wang_fang.member_id]


def test_search_treats_like_wildcards_as_text(client: TestClient, wang_fang: WangFang) -> None:
    assert client.get("/api/members", params={"q": "%"}).json()["total"] == 0
    assert client.get("/api/members", params={"q": "_ang"}).json()["total"] == 0


def test_search_pages_through_every_member(siyu: Siyu, client: TestClient) -> None:
    with transaction(siyu.session_factory) as session:
        for n in range(5):
            add_member(session, name=f"Li Na {n}", identities={"member_no": f"L{n}"})
    body = client.get("/api/members", params={"q": "Li Na", "page": 2, "page_size": 2}).json()
    assert (body["total"], body["page"], [m["member_no"] for m in body["items"]]) == (
        5,
        2,
        ["L2", "L3"],
    )


def test_member_360_lists_identities_and_order_totals(
    client: TestClient, wang_fang: WangFang
) -> None:
    body = client.get(f"/api/members/{wang_fang.member_id}").json()
    assert [(i["type"], i["value"]) for i in body["identities"]] == [
        ("member_no", "M0001"),
        ("phone", "13812345678"),
        ("unionid", wang_fang.unionid),
    ]
    assert (body["orders"], body["spend"], body["phone"]) == (2, "123.50", "13812345678")


def test_member_by_identity_normalises_the_phone(client: TestClient, wang_fang: WangFang) -> None:
    body = client.get("/api/members/by-identity/phone/+8613812345678").json()
    assert body["id"] == wang_fang.member_id


def test_merged_member_resolves_to_the_survivor(
    siyu: Siyu, client: TestClient, wang_fang: WangFang
) -> None:
    # given a mini-program account of Wang Fang that OneID merged via her unionid
    with transaction(siyu.session_factory) as session:
        mini = add_member(session, name="芳芳", identities={"openid:wxa1": "oMini123"})
        add_order(session, member_id=mini.id, order_id="MP-9", lines=[("20.00", "tea", "sample")])
        merge_into(session, merged=mini, survivor_id=wang_fang.member_id, via=("unionid", "u"))
    # when it is asked for by its old id and by its openid
    by_id = client.get(f"/api/members/{mini.id}").json()
    by_openid = client.get("/api/members/by-identity/openid:wxa1/oMini123").json()
    # then both answer with the survivor, its merge history and the moved order
    assert (by_id["id"], by_id["requested_id"], by_openid["id"]) == (
        wang_fang.member_id,
        mini.id,
        wang_fang.member_id,
    )
    assert [(m["merged_id"], m["via_type"]) for m in by_id["merges"]] == [(mini.id, "unionid")]
    assert by_id["orders"] == 3
    search = client.get("/api/members", params={"q": "oMini123"}).json()
    assert [m["id"] for m in search["items"]] == [wang_fang.member_id]


def test_unknown_member_is_404(client: TestClient) -> None:
    response = client.get("/api/members/999999")
    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "member_not_found"


def test_unknown_identity_type_is_422(client: TestClient) -> None:
    response = client.get("/api/members/by-identity/email/a@b.c")
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "identity_not_understood"


def test_orders_are_grouped_newest_first_with_lines(
    client: TestClient, wang_fang: WangFang
) -> None:
    body = client.get(f"/api/members/{wang_fang.member_id}/orders").json()
    assert body["total"] == 2
    assert [(o["order_id"], o["amount"], len(o["lines"])) for o in body["items"]] == [
        ("SO-1002", "45.50", 1),
        ("SO-1001", "78.00", 2),
    ]
    assert body["items"][1]["lines"][1] == {
        "line_no": 2,
        "amount": "30.00",
        "status": "paid",
        "category": "teaware",
        "sku": "cup-white",
    }


def test_refunded_order_is_listed_but_not_counted(
    siyu: Siyu, client: TestClient, wang_fang: WangFang
) -> None:
    with transaction(siyu.session_factory) as session:
        add_order(
            session,
            member_id=wang_fang.member_id,
            order_id="SO-1003",
            lines=[("99.00", "tea", "gift-box")],
            status="refunded",
        )
    orders = client.get(f"/api/members/{wang_fang.member_id}/orders").json()
    assert [o["refunded"] for o in orders["items"]] == [False, False, True]
    assert client.get(f"/api/members/{wang_fang.member_id}").json()["orders"] == 2


def test_openapi_documents_the_member_routes(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {
        "/api/members",
        "/api/members/{member_id}",
        "/api/members/by-identity/{identity_type}/{value}",
        "/api/members/{member_id}/orders",
    } <= set(paths)
    assert not any(path.startswith("/console") for path in paths)
