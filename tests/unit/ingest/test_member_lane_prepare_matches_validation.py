"""The member lane's `prepare` (DuckDB SQL) against `validate_member` (the definition), as a
Hypothesis property over member rows written to a CSV: every row the lane calls *plain* is one
`validate_member` accepts, with the same record key, values, UTC instant, warnings and row
hash; a row `validate_member` rejects is never plain. The loose spellings the lane uses to
find rows that may share a value cover every value the row path would read."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siyu.ingest import member_lane
from siyu.ingest.validation import (
    MEMBER_FIELDS,
    MEMBER_IDENTITIES,
    RowRejected,
    ValidRow,
    validate_member,
)
from tests.unit.ingest import test_columnar_prepare_matches_validation as orders_test
from tests.unit.ingest.test_columnar_prepare_matches_validation import (
    DATES,
    EXAMPLES,
    SHANGHAI,
    _padded,
    _utc_text,
    instants,
    odd_text,
    phone_parts,
)

CANONICAL: dict[str, list[str]] = {
    "member_no": ["M001", "M002", "会员7", ""],
    "phone": ["13800138000", "", "138 0013 8000", "+86 138-0013-8000", "8613900139000"],
    "unionid": ["oU1", "oU2", ""],
    "openid": ["o6_1", ""],
    "external_userid": ["wm-1", ""],
    "name": ["Wang Fang", "李雷", ""],
    "store_code": ["SH001", ""],
    "channel": ["pos", "miniprogram", ""],
    "gender": ["F", "M", "U", ""],
    "birthday": ["1990-05-04", "2000-02-29", ""],
    "registered_at": ["2026-06-01T12:00:00", "2024-01-01 08:00:00+08:00", ""],
}
MESSY: dict[str, st.SearchStrategy[str]] = {
    "member_no": st.one_of(odd_text, st.just("M 001")),
    "phone": st.one_of(
        phone_parts,
        st.sampled_from(["+86", "bad", "（138）00138000", "138\u300000138000", "-", "()"]),
    ),
    "unionid": odd_text,
    "openid": odd_text,
    "external_userid": odd_text,
    "name": odd_text,
    "store_code": odd_text,
    "channel": odd_text,
    "gender": st.sampled_from(["f", "female", "X", "男"]),
    "birthday": st.one_of(
        st.sampled_from(DATES),
        st.sampled_from(["1990-5-4", "19900504", "1990-02-30", "0000-01-01", "1990/05/04"]),
    ),
    "registered_at": st.one_of(instants, st.sampled_from(["2026-06-01", "yesterday"])),
}
assert tuple(CANONICAL) == tuple(MESSY) == MEMBER_FIELDS


@st.composite
def member_rows(draw: st.DrawFn) -> dict[str, str]:
    """A canonical row with up to three fields made messy (and maybe padded with spaces)."""
    row = {name: draw(st.sampled_from(values)) for name, values in CANONICAL.items()}
    for name in draw(st.sets(st.sampled_from(MEMBER_FIELDS), max_size=3)):
        row[name] = draw(_padded(st.one_of(MESSY[name], st.sampled_from(CANONICAL[name]))))
    return row


headers = st.sets(st.sampled_from(MEMBER_FIELDS), max_size=3).map(
    lambda dropped: [f for f in MEMBER_FIELDS if f not in dropped]
)


def _csv_file(header: list[str], rows: list[dict[str, str]]) -> AbstractContextManager[Path]:
    return orders_test._csv_file(header, rows, "members.csv")


def _prepared(path: Path) -> list[dict[str, Any]] | None:
    return orders_test._prepared(path, member_lane.MemberLane)


def _validated(row: dict[str, str]) -> ValidRow | None:
    try:
        return validate_member(row, tz=SHANGHAI)
    except RowRejected:
        return None


PLAIN_VALUES = ("member_no", "phone", "unionid", "openid", "external_userid", "name",
                "store_code", "channel", "gender")  # fmt: skip


def _lane_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: row[name] for name in PLAIN_VALUES},
        "record_key": row["record_key"],
        "birthday": row["birthday"],
        "registered_at": row["registered_at_utc"],
        "warnings": row["warnings"],
        "row_hash": row["row_hash"],
    }


def _row_view(valid: ValidRow) -> dict[str, Any]:
    values = valid.values
    registered = values["registered_at"]
    return {
        **{name: values[name] for name in PLAIN_VALUES},
        "record_key": valid.record.key,
        "birthday": values["birthday"].isoformat() if values["birthday"] else None,
        "registered_at": _utc_text(registered) if registered else None,
        "warnings": valid.warnings,
        "row_hash": valid.row_hash,
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers, rows=st.lists(member_rows(), min_size=1, max_size=12))
def test_every_plain_row_is_what_validate_member_makes_of_it(
    header: list[str], rows: list[dict[str, str]]
) -> None:
    written = [{name: row[name] for name in header} for row in rows]
    with _csv_file(header, written) as path:
        prepared = _prepared(path)
    if prepared is None:
        event("the lane refused the file")
        return
    assert len(prepared) == len(written)
    for source, row in zip(written, prepared, strict=True):
        valid = _validated(source)
        if valid is not None:
            # Whatever the row path reads as a value, the lane's loose spelling names it too.
            for kind, value in valid.record.identities:
                assert row[f"loose_{kind}"] == value, (kind, source)
        if not row["plain"]:
            event("slow row")
            continue
        event("plain row")
        assert valid is not None, f"plain, but validate_member rejects {source!r}"
        assert _lane_view(row) == _row_view(valid), source


def test_every_member_identity_has_a_loose_spelling() -> None:
    with _csv_file(list(MEMBER_FIELDS), [dict.fromkeys(MEMBER_FIELDS, "")]) as path:
        prepared = _prepared(path)
    assert prepared is not None
    assert {f"loose_{kind}" for kind in MEMBER_IDENTITIES} <= set(prepared[0])
