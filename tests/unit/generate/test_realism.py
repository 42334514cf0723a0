"""The brand has the mess real brands have: overlapping identities, refunds, guests, seasons."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from siyu.generate.catalog import PLACEHOLDER_PHONES
from tests.unit.generate.conftest import Brand
from tests.unit.generate.test_formats import normalise_phone


def member_nos_by(brand: Brand, field: str) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = defaultdict(set)
    for member in brand.rows("members.csv"):
        value = member[field] and (
            normalise_phone(member[field]) if field == "phone" else member[field]
        )
        if value and member["member_no"]:
            owners[value].add(member["member_no"])
    return owners


def test_the_same_phone_joins_a_pos_member_and_a_miniprogram_member(brand: Brand) -> None:
    channels = {m["member_no"]: m["channel"] for m in brand.rows("members.csv")}
    shared = [nos for phone, nos in member_nos_by(brand, "phone").items() if len(nos) == 2]

    twins = [nos for nos in shared if {channels[n] for n in nos} == {"pos", "miniprogram"}]
    assert len(twins) > 400  # ~4% of 20,000


def test_a_unionid_bridges_two_member_numbers(brand: Brand) -> None:
    bridged = [nos for nos in member_nos_by(brand, "unionid").values() if len(nos) == 2]

    assert len(bridged) > 200  # ~2% of 20,000


def test_placeholder_phones_are_shared_by_more_than_twenty_member_numbers(brand: Brand) -> None:
    owners = member_nos_by(brand, "phone")

    assert all(len(owners[phone]) > 20 for phone in PLACEHOLDER_PHONES)
    assert max(len(nos) for phone, nos in owners.items() if phone not in PLACEHOLDER_PHONES) == 2


def test_phones_come_in_messy_formats(brand: Brand) -> None:
    phones = [m["phone"] for m in brand.rows("members.csv") if m["phone"]]

    assert any(p.startswith("+86 ") for p in phones)
    assert any(p.startswith("0086") for p in phones)
    assert any(p.count("-") == 2 for p in phones)
    assert any(p.startswith("(") for p in phones)
    assert any(p.startswith(" ") and p.endswith(" ") for p in phones)


def orders_of(brand: Brand) -> dict[str, list[dict[str, str]]]:
    orders: dict[str, list[dict[str, str]]] = defaultdict(list)
    for line in brand.rows("orders.csv"):
        orders[line["order_id"]].append(line)
    return orders


def test_about_three_percent_of_orders_are_refunded_in_both_styles(brand: Brand) -> None:
    orders = orders_of(brand)
    refunded = [lines for lines in orders.values() if any(x["status"] == "refunded" for x in lines)]
    as_separate_row = [lines for lines in refunded if any(x["status"] == "paid" for x in lines)]

    assert len(orders) == brand.manifest["counts"]["orders"]
    assert len(refunded) == brand.manifest["counts"]["refunded_orders"]
    assert 0.025 < len(refunded) / len(orders) < 0.035
    assert 0.3 < len(as_separate_row) / len(refunded) < 0.7
    assert all(lines[-1]["sku"] == "" for lines in as_separate_row)


def test_separate_refund_rows_return_the_order_total(brand: Brand) -> None:
    for lines in orders_of(brand).values():
        refund = [x for x in lines if x["status"] == "refunded"]
        if (
            refund
            and len(refund) < len(lines)
            and not any(x["amount"].startswith("-") for x in lines)
        ):
            paid = sum(round(float(x["amount"]) * 100) for x in lines if x["status"] == "paid")
            assert round(float(refund[0]["amount"]) * 100) == paid


def test_baskets_have_several_lines(brand: Brand) -> None:
    sizes = Counter(len([x for x in lines if x["sku"]]) for lines in orders_of(brand).values())

    assert sizes[1] > sizes[2] > sizes[3] > 0
    assert sizes[5] > 0


def test_guests_order_with_a_phone_that_belongs_to_no_member(brand: Brand) -> None:
    member_phones = set(member_nos_by(brand, "phone"))
    guest_orders = {
        line["order_id"]
        for line in brand.rows("orders.csv")
        if not line["member_no"]
        and not line["unionid"]
        and line["phone"]
        and normalise_phone(line["phone"]) not in member_phones
    }

    assert len(guest_orders) == brand.manifest["counts"]["guest_orders"]


def test_most_buyers_buy_once_and_a_few_buy_very_often(brand: Brand) -> None:
    per_member = Counter(
        lines[0]["member_no"] for lines in orders_of(brand).values() if lines[0]["member_no"]
    )
    buyers_once = sum(1 for n in per_member.values() if n == 1)
    members = brand.rows("members.csv")
    never = [
        m
        for m in members
        if m["member_no"] and m["member_no"] not in per_member and m["channel"] == "pos"
    ]

    assert buyers_once / len(per_member) > 0.4
    assert max(per_member.values()) >= 30
    assert len(never) > 1000


def test_double_eleven_and_618_outsell_an_ordinary_day(brand: Brand) -> None:
    per_day = Counter(
        line["paid_at"][:10] for line in brand.rows("orders.csv") if line["line_no"] == "1"
    )
    ordinary = per_day[date(2025, 9, 10).isoformat()] + per_day[date(2025, 9, 17).isoformat()]

    assert per_day["2025-11-11"] > 3 * ordinary / 2
    assert per_day["2025-06-18"] > 2 * ordinary / 2


def test_members_have_birthdays_and_genders_mostly(brand: Brand) -> None:
    members = brand.rows("members.csv")
    genders = Counter(m["gender"] for m in members)

    assert 0.8 < sum(1 for m in members if m["birthday"]) / len(members) < 0.95
    assert genders["F"] > genders["M"] > genders["U"]
