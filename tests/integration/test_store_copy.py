"""`store_copy.copy_for_update`: whole tables copied as the session sees them, for a caller that
then writes what it decided (the full OneID rebuild)."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest
import sqlalchemy as sa

from siyu import store_copy
from siyu.bootstrap import Siyu
from siyu.ingest import service as ingest_service
from siyu.store_copy import Column, Source, copy_for_update

MEMBERS = [{"member_no": f"M{n:03d}", "phone": f"1380013{n:04d}"} for n in range(1, 8)]
RECORDS = Source(
    "member_records",
    (
        Column("row_id", "BIGINT", "id"),
        Column("key", "VARCHAR", "record_key"),
        Column("member_id", "BIGINT"),
    ),
)


def _import_members(siyu: Siyu) -> None:
    ingest_service.ingest_records(
        session_factory=siyu.session_factory,
        kind="members",
        rows=MEMBERS,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        max_member_nos=20,
    )


def _stored(siyu: Siyu) -> list[tuple[int, str, int]]:
    with siyu.session_factory() as session:
        rows = session.execute(
            sa.text("SELECT id, record_key, member_id FROM member_records ORDER BY id")
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_an_sqlite_file_is_copied_in_id_ranges_as_stored(
    sqlite_siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given seven member rows, and reads cut into ranges of two ids (real ranges are 2M)
    _import_members(sqlite_siyu)
    monkeypatch.setattr(store_copy, "RANGE", 2)
    duck = duckdb.connect()

    with sqlite_siyu.session_factory() as session:
        copy_for_update(session, duck, [(RECORDS, "records")])
        session.rollback()

    copied = duck.execute("SELECT row_id, key, member_id FROM records ORDER BY row_id").fetchall()
    assert copied == _stored(sqlite_siyu)


def test_the_session_holds_the_write_lock_until_it_ends_so_nothing_commits_in_between(
    sqlite_siyu: Siyu,
) -> None:
    _import_members(sqlite_siyu)
    path = sqlite_siyu.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0)
    with sqlite_siyu.session_factory() as session:
        copy_for_update(session, duckdb.connect(), [(RECORDS, "records")])

        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("UPDATE members SET updated_at = updated_at")
        session.rollback()

    other.execute("UPDATE members SET updated_at = updated_at")  # free again
    other.rollback()
    other.close()


def test_a_session_that_already_wrote_copies_its_own_uncommitted_rows(sqlite_siyu: Siyu) -> None:
    # Given seven member rows, one of them moved by the session and not committed
    _import_members(sqlite_siyu)
    first_id, _, first_member = _stored(sqlite_siyu)[0]
    last_member = _stored(sqlite_siyu)[-1][2]
    duck = duckdb.connect()

    with sqlite_siyu.session_factory() as session:
        session.execute(
            sa.text("UPDATE member_records SET member_id = :m WHERE id = :id"),
            {"m": last_member, "id": first_id},
        )
        copy_for_update(session, duck, [(RECORDS, "records")])
        session.rollback()

    # Then the copy (through the session itself, not a second connection) has the move
    moved = duck.execute("SELECT member_id FROM records WHERE row_id = ?", [first_id]).fetchall()
    assert moved == [(last_member,)] != [(first_member,)]
