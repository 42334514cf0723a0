"""`store_copy.read_for_update`: whole tables read as the session sees them, for a caller that
then writes what it decided (the full OneID rebuild)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from siyu import store_copy
from siyu.bootstrap import Siyu
from siyu.ingest import service as ingest_service
from siyu.store_copy import Column, Source, read_for_update

MEMBERS = [{"member_no": f"M{n:03d}", "phone": f"1380013{n:04d}"} for n in range(1, 8)]
RECORDS = Source(
    "member_records",
    (
        Column("row_id", "BIGINT", "id"),
        Column("key", "VARCHAR", "record_key"),
        Column("member_id", "BIGINT"),
    ),
    ranges="member_id",
)
BY_KEY = Source(
    "member_records",
    (Column("row_id", "BIGINT", "id"), Column("key", "VARCHAR", "record_key")),
    order_by="record_key DESC",
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


def test_an_sqlite_file_is_read_in_ranges_as_stored(
    sqlite_siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given seven member rows, and reads cut into ranges of two member ids (real ranges: 2M)
    _import_members(sqlite_siyu)
    monkeypatch.setattr(store_copy, "RANGE", 2)

    with sqlite_siyu.session_factory() as session:
        (records,) = read_for_update(session, [RECORDS])
        session.rollback()

    read = sorted(zip(*records.to_pydict().values(), strict=True))
    assert read == _stored(sqlite_siyu)


def test_a_source_with_an_order_comes_in_that_order(sqlite_siyu: Siyu) -> None:
    _import_members(sqlite_siyu)

    with sqlite_siyu.session_factory() as session:
        (keys,) = read_for_update(session, [BY_KEY])
        session.rollback()

    stored = sorted((key for _, key, _ in _stored(sqlite_siyu)), reverse=True)
    assert keys.column("key").to_pylist() == stored


def test_the_session_holds_the_write_lock_until_it_ends_so_nothing_commits_in_between(
    sqlite_siyu: Siyu,
) -> None:
    _import_members(sqlite_siyu)
    path = sqlite_siyu.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0)
    with sqlite_siyu.session_factory() as session:
        read_for_update(session, [RECORDS])

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

    with sqlite_siyu.session_factory() as session:
        session.execute(
            sa.text("UPDATE member_records SET member_id = :m WHERE id = :id"),
            {"m": last_member, "id": first_id},
        )
        (records,) = read_for_update(session, [RECORDS])
        session.rollback()

    # Then the read (through the session itself, not a second connection) has the move
    row_ids, members = records.column("row_id").to_pylist(), records.column("member_id").to_pylist()
    owners = dict(zip(row_ids, members, strict=True))
    assert owners[first_id] == last_member != first_member
