"""The columnar lane's `prepare` (DuckDB SQL) against `validate_order` (the definition), as a
Hypothesis property over order rows written to a CSV: every line the lane calls *plain* is one
`validate_order` accepts, with the same values, amount, UTC instant, warnings and row hash; a
line `validate_order` rejects is never plain. Values mix canonical text with near-canonical and
messy text (whitespace, full-width digits, odd amounts, odd timestamps and offsets, empties,
missing columns). A file the lane refuses (`LaneUnavailable`) makes the example vacuous."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siyu.ingest import columnar
from siyu.ingest.validation import ORDER_FIELDS, RowRejected, ValidRow, validate_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
# SIYU_LANE_EXAMPLES raises the example count for a long run (default keeps `make test` fast).
EXAMPLES = int(os.environ.get("SIYU_LANE_EXAMPLES", "60"))
TEXT_VALUES = ("order_id", "member_no", "unionid", "store_code", "channel", "category", "sku")

# Python's str.isspace() characters that a CSV line can hold (no line breaks).
SPACES = [" ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000"]
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A value, sometimes with whitespace around it."""
    pad = st.one_of(st.just(""), st.just(""), st.just(""), st.sampled_from(SPACES))
    return st.tuples(pad, core, pad).map("".join)


DATES = [
    "2026-06-01", "2026-03-08", "2026-11-01", "1899-12-31", "1900-01-01", "1901-06-01",
    "1940-06-02", "1986-05-04", "2026-02-29", "2024-02-29", "9999-12-31", "0001-01-01",
]  # fmt: skip
ODD_AMOUNTS = [
    "007.50", "12.5", "0.00", "00", "1.", ".5", "1.234", "-1", "+1", "1e3", "1_000", "１２.５",
    "99999999999999.99", "100000000000000", "", "NaN", "Infinity",
]  # fmt: skip
# Any text a CSV line can hold: no line breaks (one physical line per row), no NUL.
odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=6)
phone_parts = st.tuples(
    st.sampled_from(["", "", "+86", "0086", "86", "+", "+86 ", "(86)"]),
    st.sampled_from(["13800138000", "13900139000", "12345678901", "1380013800", "138001380001"]),
    st.sampled_from(["plain", "spaced", "dashed", "parens", "full-width", "tab"]),
).map(lambda parts: _phone(*parts))
instants = st.tuples(
    st.sampled_from(DATES),
    st.sampled_from(["T", " ", "t", "_"]),
    st.sampled_from(["12:00:00", "00:00:00", "02:30:00", "23:59:59", "01:30:00", "24:00:00"]),
    st.sampled_from(["", "", ".5", ".123", ".123456", ".000", ".1234567", ",123"]),
    st.sampled_from(
        ["", "", "Z", "z", "+08:00", "+05:45", "-00:00", "-03:30", "+0800", "+24:00", "+08:00:30"]
    ),
).map("".join)
# Per field: canonical values (most lines are plain), and near-canonical or messy ones.
CANONICAL: dict[str, list[str]] = {
    "order_id": ["O1", "O2", "SO-20260601-0007", "订单9"],
    "line_no": ["1", "2", "10", ""],
    "member_no": ["M001", "M002", ""],
    "phone": ["13800138000", "", "138 0013 8000", "+86 138-0013-8000", "8613900139000"],
    "unionid": ["oU1", "oU2", ""],
    "paid_at": ["2026-06-01T12:00:00", "2026-06-01 12:00:00", "2026-06-01T12:00:00+08:00"],
    "store_code": ["SH001", "BJ002", ""],
    "channel": ["pos", "miniprogram", ""],
    "amount": ["39.00", "10.50", "20", "0", "0.5"],
    "status": ["paid", "refunded", ""],
    "category": ["tea", "snack", ""],
    "sku": ["T1", "S1", ""],
}
MESSY: dict[str, st.SearchStrategy[str]] = {
    "order_id": st.one_of(odd_text, st.just("")),
    "line_no": st.sampled_from(
        ["01", "1.0", "1.00", "0", "-1", "+1", "١", "２", "1e2", "x", "9" * 15, "9" * 16]
    ),
    "member_no": st.one_of(odd_text, st.just("M 001")),
    "phone": st.one_of(
        phone_parts,
        st.sampled_from(["+86", "bad", "（138）00138000", "138\u300000138000", "-", "()", " - "]),
    ),
    "unionid": odd_text,
    "paid_at": st.one_of(
        instants, st.sampled_from(["", "2026-06-01", "2026-06-01T12:00", "yesterday"])
    ),
    "store_code": odd_text,
    "channel": odd_text,
    "amount": st.one_of(
        st.sampled_from(ODD_AMOUNTS),
        st.decimals(min_value=0, max_value=10**15, places=2, allow_nan=False).map(str),
        st.integers(min_value=0, max_value=10**16).map(str),
    ),
    "status": st.sampled_from(["PAID", "Paid", "void"]),
    "category": odd_text,
    "sku": odd_text,
}
assert tuple(CANONICAL) == tuple(MESSY) == ORDER_FIELDS


@st.composite
def order_rows(draw: st.DrawFn) -> dict[str, str]:
    """A canonical line with up to three fields made messy (and maybe padded with spaces)."""
    row = {name: draw(st.sampled_from(values)) for name, values in CANONICAL.items()}
    for name in draw(st.sets(st.sampled_from(ORDER_FIELDS), max_size=3)):
        row[name] = draw(_padded(st.one_of(MESSY[name], st.sampled_from(CANONICAL[name]))))
    return row


# A few columns may be missing from the file (order_id, paid_at and amount never are).
REQUIRED = {"order_id", "paid_at", "amount"}
headers = st.sets(st.sampled_from(ORDER_FIELDS), max_size=3).map(
    lambda dropped: [f for f in ORDER_FIELDS if f not in dropped or f in REQUIRED]
)


def _phone(prefix: str, digits: str, style: str) -> str:
    if style == "spaced":
        digits = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    elif style == "dashed":
        digits = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    elif style == "parens":
        digits = f"({digits[:3]}){digits[3:]}"
    elif style == "full-width":
        digits = digits.translate(FULL_WIDTH)
    elif style == "tab":
        digits = f"{digits[:3]}\t{digits[3:]}"
    return prefix + digits


@contextmanager
def _csv_file(
    header: list[str], rows: list[dict[str, str]], name: str = "orders.csv"
) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        yield path


def _prepared(
    path: Path, lane_type: type[columnar.FileLane] = columnar.OrderLane
) -> list[dict[str, Any]] | None:
    """The lane's `prepared` rows in file order, or None when the lane refuses the file."""
    try:
        lane = lane_type(path, tz=SHANGHAI, now=NOW)
    except columnar.LaneUnavailable:
        return None
    try:
        lane.prepare(0, lane.rows)
        lane.take_prepared()
        cursor = lane.duck.execute("SELECT * FROM prepared ORDER BY idx")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        lane.close()


def _validated(row: dict[str, str]) -> ValidRow | None:
    try:
        return validate_order(row, tz=SHANGHAI)
    except RowRejected:
        return None


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _lane_view(line: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: line[name] for name in (*TEXT_VALUES, "line_no", "phone", "status")},
        "amount": line["amount_value"],
        "paid_at": line["paid_at_utc"],
        "warnings": line["warnings"],
        "row_hash": line["row_hash"],
    }


def _row_view(valid: ValidRow) -> dict[str, Any]:
    values = valid.values
    return {
        **{name: values[name] for name in (*TEXT_VALUES, "line_no", "phone", "status")},
        "amount": float(values["amount"]),
        "paid_at": _utc_text(values["paid_at"]),
        "warnings": valid.warnings,
        "row_hash": valid.row_hash,
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers, rows=st.lists(order_rows(), min_size=1, max_size=12))
def test_every_plain_line_is_what_validate_order_makes_of_it(
    header: list[str], rows: list[dict[str, str]]
) -> None:
    written = [{name: row[name] for name in header} for row in rows]
    with _csv_file(header, written) as path:
        prepared = _prepared(path)
    if prepared is None:
        event("the lane refused the file")
        return
    assert len(prepared) == len(written)
    for source, line in zip(written, prepared, strict=True):
        valid = _validated(source)
        if valid is not None:
            # Whatever the row path reads as a value or an order, the loose spelling names it.
            for kind, value in valid.record.identities:
                assert line[f"loose_{kind}"] == value, (kind, source)
            assert line["loose_order_id"] == valid.record.order_id, source
        if not line["plain"]:
            event("slow line")
            continue
        event("plain line")
        assert valid is not None, f"plain, but validate_order rejects {source!r}"
        assert _lane_view(line) == _row_view(valid), source


@pytest.mark.parametrize("phone", ["-", "()", " - ", "( )"])
def test_a_plain_line_with_a_phone_of_separators_only_counts_its_warning(phone: str) -> None:
    row = {
        "order_id": "O1",
        "member_no": "M001",
        "phone": phone,
        "paid_at": "2026-06-01T12:00:00",
        "amount": "39.00",
    }
    with _csv_file(list(row), [row]) as path:
        prepared = _prepared(path)

    assert prepared is not None
    (line,) = prepared
    assert validate_order(row, tz=SHANGHAI).warnings == 1
    assert not line["plain"] or line["warnings"] == 1
