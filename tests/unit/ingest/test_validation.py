"""Every rejection reason of the row validation (DESIGN §4.2), one test each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from siyu.ingest.validation import RowRejected, validate_event, validate_member, validate_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
WANG = {"member_no": "M001", "phone": "13800138000", "name": "Wang Fang", "gender": "F"}
LINE = {
    "order_id": "O1",
    "line_no": "1",
    "member_no": "M001",
    "paid_at": "2026-06-18T10:00:00",
    "amount": "39.00",
    "status": "paid",
}
EVENT = {
    "event_id": "E1",
    "type": "page_view",
    "occurred_at": "2026-06-18T10:00:00+08:00",
    "identities": {"unionid": "oU1"},
}


def _reason(validator: Any, row: dict[str, Any]) -> str:
    with pytest.raises(RowRejected) as caught:
        validator(row, tz=SHANGHAI)
    return caught.value.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"member_no": "", "phone": ""}, "no valid identity"),
        (
            {"member_no": "", "phone": "12345"},
            "no valid identity (phone '12345' is not a valid mobile number)",
        ),
        ({"gender": "X"}, "gender: 'X' is not one of F, M, U"),
        ({"birthday": "1990-13-01"}, "birthday: '1990-13-01' is not a date YYYY-MM-DD"),
        ({"registered_at": "yesterday"}, "registered_at: 'yesterday' is not an ISO 8601 timestamp"),
    ],
)
def test_member_row_rejections(change: dict[str, str], reason: str) -> None:
    assert _reason(validate_member, {**WANG, **change}) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"order_id": ""}, "order_id: missing"),
        ({"line_no": "first"}, "line_no: 'first' is not a whole number"),
        ({"line_no": "0"}, "line_no: '0' must be 1 or more"),
        ({"member_no": ""}, "no valid identity"),
        ({"paid_at": ""}, "paid_at: missing"),
        ({"paid_at": "18/06/2026"}, "paid_at: '18/06/2026' is not an ISO 8601 timestamp"),
        (
            {"paid_at": "9999-12-31T23:00:00-05:00"},
            "paid_at: '9999-12-31T23:00:00-05:00' is out of range",
        ),
        ({"amount": ""}, "amount: missing"),
        ({"amount": "-5"}, "amount: '-5' is negative"),
        ({"amount": "1.234"}, "amount: '1.234' is not a number of yuan with at most 2 decimals"),
        ({"amount": "ten"}, "amount: 'ten' is not a number of yuan with at most 2 decimals"),
        ({"status": "lost"}, "status: 'lost' is not one of paid, refunded"),
    ],
)
def test_order_row_rejections(change: dict[str, str], reason: str) -> None:
    assert _reason(validate_order, {**LINE, **change}) == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_id": ""}, "event_id: missing"),
        ({"type": ""}, "type: missing"),
        ({"occurred_at": "soon"}, "occurred_at: 'soon' is not an ISO 8601 timestamp"),
        ({"identities": {}}, "no valid identity"),
        ({"identities": {"email": "a@b.c"}}, "identities: unknown identity type 'email'"),
        ({"identities": "{not json"}, "identities: not a JSON object"),
        ({"properties": "[1, 2]"}, "properties: not an object"),
    ],
)
def test_event_row_rejections(change: dict[str, Any], reason: str) -> None:
    assert _reason(validate_event, {**EVENT, **change}) == reason


def test_an_invalid_phone_beside_a_member_no_is_a_warning_not_a_rejection() -> None:
    valid = validate_member({**WANG, "phone": "12345"}, tz=SHANGHAI)
    assert valid.warnings == 1
    assert valid.record.identities == (("member_no", "M001"),)


def test_timestamps_without_offset_are_shanghai_time() -> None:
    valid = validate_order(LINE, tz=SHANGHAI)
    assert valid.values["paid_at"].astimezone(UTC) == datetime(2026, 6, 18, 2, 0, tzinfo=UTC)


def test_order_defaults_line_no_one_and_status_paid() -> None:
    valid = validate_order({**LINE, "line_no": "", "status": ""}, tz=SHANGHAI)
    assert (valid.values["line_no"], valid.values["status"]) == (1, "paid")
    assert valid.values["amount"] == Decimal("39.00")


def test_identical_rows_hash_identically_and_changed_rows_do_not() -> None:
    first = validate_member(WANG, tz=SHANGHAI).row_hash
    assert validate_member(dict(WANG), tz=SHANGHAI).row_hash == first
    assert validate_member({**WANG, "name": "Wang Fang 2"}, tz=SHANGHAI).row_hash != first
