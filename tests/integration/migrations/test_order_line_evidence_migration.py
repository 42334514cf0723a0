"""core_0004 converts a store in place: order observations become the lines' evidence columns,
and every (value, member_no) pair the records carried becomes a row of identity_member_nos."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from siyu.migrations.runner import upgrade

T = "2026-06-01 04:00:00.000000"
# Wang Fang's POS row (M001 + phone) and one order line carrying M001, the phone and a unionid.
_BEFORE = [
    f"INSERT INTO members (id, gender, created_at, updated_at) VALUES (1, 'U', '{T}', '{T}')",
    "INSERT INTO member_records (id, record_key, member_id, member_no, phone, row_hash, "
    f"updated_at) VALUES (1, 'M001', 1, 'M001', '13800138000', 'h', '{T}')",
    "INSERT INTO identities (id, type, value, member_id, polluted, first_seen_at) VALUES "
    f"(10, 'member_no', 'M001', 1, 0, '{T}'), (11, 'phone', '13800138000', 1, 0, '{T}'), "
    f"(12, 'unionid', 'oU-wang', 1, 0, '{T}')",
    "INSERT INTO order_lines (id, order_id, line_no, member_id, member_no, phone, unionid, "
    f"paid_at, amount, status, row_hash, imported_at) VALUES (1, 'O1', 1, 1, 'M001', "
    f"'13800138000', 'oU-wang', '{T}', 39, 'paid', 'r', '{T}')",
    "INSERT INTO identity_observations (identity_id, record_kind, record_key, observed_at) "
    f"VALUES (10, 'member', 'M001', '{T}'), (11, 'member', 'M001', '{T}'), "
    f"(10, 'order', 'O1:1', '{T}'), (11, 'order', 'O1:1', '{T}'), (12, 'order', 'O1:1', '{T}')",
]


def test_order_observations_become_line_evidence_and_pairs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "core_0003")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in _BEFORE:
            connection.exec_driver_sql(statement)

    upgrade(url)

    with engine.connect() as connection:
        line = connection.exec_driver_sql(
            "SELECT member_no_identity_id, phone_identity_id, unionid_identity_id FROM order_lines"
        ).one()
        kinds = connection.exec_driver_sql(
            "SELECT DISTINCT record_kind FROM identity_observations"
        ).all()
        pairs = connection.exec_driver_sql(
            "SELECT identity_id, member_no_identity_id FROM identity_member_nos ORDER BY 1"
        ).all()
    assert tuple(line) == (10, 11, 12)
    assert [k for (k,) in kinds] == ["member"]
    assert [tuple(p) for p in pairs] == [(11, 10), (12, 10)]
    engine.dispose()
