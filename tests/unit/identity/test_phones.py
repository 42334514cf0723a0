"""Phone normalisation table (DESIGN §4.2)."""

from __future__ import annotations

import pytest

from siyu.identity.phones import normalize_phone

TABLE = [
    ("13800138000", "13800138000"),
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("(138)0013-8000", "13800138000"),
    ("+86 138 0013 8000", "13800138000"),
    ("+8613800138000", "13800138000"),
    ("008613800138000", "13800138000"),
    ("86 13800138000", "13800138000"),
    ("  19912345678 ", "19912345678"),
    ("12800138000", None),  # second digit must be 3-9
    ("1380013800", None),  # 10 digits
    ("138001380001", None),  # 12 digits
    ("02161234567", None),  # Shanghai landline
    ("abc", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("+1 415 555 0100", None),
]


@pytest.mark.parametrize(("raw", "expected"), TABLE)
def test_phone_normalises_to_eleven_digit_mobile_or_none(
    raw: str | None, expected: str | None
) -> None:
    assert normalize_phone(raw) == expected
