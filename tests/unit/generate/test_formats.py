"""The generated files parse as the import formats of DESIGN §4.2, malformed rows excepted."""

from __future__ import annotations

import re
from datetime import date, datetime

from siyu.generate.members import MEMBER_COLUMNS
from siyu.generate.orders import ORDER_COLUMNS
from tests.unit.generate.conftest import Brand

PHONE = re.compile(r"^1[3-9]\d{9}$")
AMOUNT = re.compile(r"^\d+\.\d{2}$")


def normalise_phone(raw: str) -> str:
    """The §4.2 rule: strip spaces, dashes, parentheses and a leading +86/0086/86."""
    digits = re.sub(r"[\s\-()]", "", raw)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) > 11:
            return digits[len(prefix) :]
    return digits


def parses_as_instant(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        return False


def parses_as_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def test_headers_are_the_import_field_names(brand: Brand) -> None:
    assert (brand.directory / "members.csv").read_text(encoding="utf-8").splitlines()[
        0
    ] == ",".join(MEMBER_COLUMNS)
    assert (brand.directory / "orders.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(
        ORDER_COLUMNS
    )
    assert MEMBER_COLUMNS == (
        "member_no",
        "phone",
        "unionid",
        "openid",
        "external_userid",
        "name",
        "gender",
        "birthday",
        "registered_at",
        "store_code",
        "channel",
    )


def test_every_member_phone_normalises_to_a_mainland_mobile(brand: Brand) -> None:
    phones = [row["phone"] for row in brand.rows("members.csv") if row["phone"]]

    assert len(phones) > 10_000
    assert all(PHONE.match(normalise_phone(phone)) for phone in phones)


def test_member_dates_parse_except_the_counted_malformed_rows(brand: Brand) -> None:
    members = brand.rows("members.csv")
    malformed = brand.manifest["malformed"]["members"]

    bad_birthdays = [m for m in members if m["birthday"] and not parses_as_day(m["birthday"])]
    bad_registrations = [m for m in members if not parses_as_instant(m["registered_at"])]

    assert len(bad_birthdays) == malformed["bad_birthday"] >= 1
    assert len(bad_registrations) == malformed["bad_registered_at"] >= 1
    assert {m["gender"] for m in members} == {"F", "M", "U"}


def test_members_without_any_identity_are_exactly_the_counted_ones(brand: Brand) -> None:
    identities = ("member_no", "phone", "unionid", "openid", "external_userid")
    anonymous = [m for m in brand.rows("members.csv") if not any(m[k] for k in identities)]

    assert len(anonymous) == brand.manifest["malformed"]["members"]["no_identity"] >= 1


def test_amounts_have_two_decimals_and_only_the_counted_ones_are_negative(brand: Brand) -> None:
    amounts = [row["amount"] for row in brand.rows("orders.csv")]
    negative = [a for a in amounts if a.startswith("-")]

    assert all(AMOUNT.match(a.lstrip("-")) for a in amounts)
    assert len(negative) == brand.manifest["malformed"]["orders"]["negative_amount"] >= 1


def test_order_fields_parse_except_the_counted_malformed_rows(brand: Brand) -> None:
    lines = brand.rows("orders.csv")
    malformed = brand.manifest["malformed"]["orders"]

    bad_instants = [row for row in lines if not parses_as_instant(row["paid_at"])]
    anonymous = [row for row in lines if not (row["member_no"] or row["phone"] or row["unionid"])]

    assert len(bad_instants) == malformed["bad_paid_at"] >= 1
    assert len(anonymous) == malformed["no_identity"] >= 1
    assert {row["status"] for row in lines} == {"paid", "refunded"}
    assert {row["channel"] for row in lines} == {"pos", "miniprogram", "wecom", "tmall", "douyin"}
    assert all(PHONE.match(normalise_phone(row["phone"])) for row in lines if row["phone"])


def test_an_order_line_is_identified_by_order_id_and_line_no(brand: Brand) -> None:
    keys = [(row["order_id"], row["line_no"]) for row in brand.rows("orders.csv")]

    assert len(keys) == len(set(keys)) == brand.manifest["counts"]["order_lines"]


def test_events_are_json_objects_with_identities_and_properties(brand: Brand) -> None:
    events = brand.events()
    malformed = brand.manifest["malformed"]["events"]

    assert len(events) == brand.manifest["counts"]["events"]
    assert all(
        set(e) == {"event_id", "type", "occurred_at", "identities", "properties"} for e in events
    )
    assert len({e["event_id"] for e in events}) == len(events)
    assert sum(1 for e in events if not e["identities"]) == malformed["no_identity"] >= 1
    assert (
        sum(1 for e in events if not parses_as_instant(e["occurred_at"]))
        == malformed["bad_occurred_at"]
        >= 1
    )
    assert {e["type"] for e in events} == {
        "page_view",
        "sign_in",
        "coupon_view",
        "favourite",
        "share",
        "add_to_cart",
    }


def test_manifest_counts_the_rows_of_every_file(brand: Brand) -> None:
    manifest = brand.manifest
    malformed = manifest["malformed"]

    assert manifest["files"] == {
        "stores.csv": len(brand.rows("stores.csv")),
        "staff.csv": len(brand.rows("staff.csv")),
        "members.csv": 20_000,
        "orders.csv": len(brand.rows("orders.csv")),
        "events.ndjson": len(brand.events()),
    }
    assert manifest["malformed_rows"] == sum(sum(kinds.values()) for kinds in malformed.values())
    assert manifest["seed"] == 7
