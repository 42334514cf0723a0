"""Erasure on SQLite and PostgreSQL: no personal value left in any row of any table of the
operational store (read back through SQL, every column as text) nor in the warehouse file.

On PostgreSQL the server's data files are not ours to read: old row versions stay on disk
until autovacuum reclaims them (docs/security.md); what every client can read is checked.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.privacy import service
from tests.integration.privacy.test_erasure import SECRETS, _seed


def _operational_text(siyu: Siyu) -> str:
    chunks: list[str] = []
    with siyu.session_factory() as session:
        tables = sa.MetaData()
        tables.reflect(bind=session.get_bind())
        for table in tables.sorted_tables:
            for row in session.execute(sa.select(table)):
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


def test_erasure_leaves_no_personal_value_readable_in_either_store(
    siyu: Siyu, tmp_path: Path
) -> None:
    persona = _seed(siyu)
    before = _operational_text(siyu)
    assert all(value in before for value in SECRETS)

    service.erase_member(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
        member_id=persona.member_id, viewer=Viewer.system("dpo"),
    )  # fmt: skip

    after = _operational_text(siyu)
    # audit rows name the member id and counts, never a value
    for value in SECRETS:
        assert value not in after, value
    siyu.warehouse.close()
    warehouse_bytes = b"".join(p.read_bytes() for p in tmp_path.rglob("*.duckdb*"))
    assert warehouse_bytes
    for value in SECRETS:
        assert value.encode() not in warehouse_bytes, value
