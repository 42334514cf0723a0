"""Full OneID rebuild, set-based (`siyu identity rebuild`, issue #3).

Same rules and same result as `regroup(member_ids=None, recompute_pollution=True)` (docs/oneid.md
rule 6), computed in bulk instead of per record in Python:

1. Records (member rows, order lines, events), observations and identities are read from the
   store with one scan each (raw DB-API cursor, fetched in blocks into Arrow) into a private
   in-memory DuckDB, not the warehouse.
2. Pollution is recounted with one GROUP BY (distinct member_no values per other value).
3. Components: min-label propagation over (record, hub) edges, a hub being a clean identity
   value or an order id; each round also jumps labels to their label's label, so it converges
   in a few rounds on real identity graphs. A component's label is its first record.
4. Survivor choice is the regroup's greedy rule (components in order of their lowest member
   id; each takes its lowest member id not taken by an earlier component). A component whose
   lowest member id belongs to it alone takes it without looking at any other component, so
   Python only walks the components whose lowest member id is shared (splits) — few.
5. Only the changes are written back: flipped pollution flags, merges (with history, through
   `merge_members`), copied members for splits, then the record and identity rows whose member
   differs, one executemany per table.

Decision: the whole rebuild stays one transaction of the store, as before; the DuckDB copy is
discarded at the end. Records are ordered member rows, order lines, events, each by id — the
regroup's order, so ties break identically.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import Identity
from siyu.identity.oneid import MEMBER_NO, _chunks, merge_members, table_of
from siyu.identity.regroup import (
    RegroupOutcome,
    _copy_member,
    _identity_owners,
    _shared_value,
    _Stored,
)

FETCH = 200_000
KIND_RANK = {"member": 0, "order": 1, "event": 2}
_RECORD_SOURCES = (
    ("member", "member_records", ("record_key", "NULL", "NULL", "id", "member_id")),
    ("order", "order_lines", ("order_id", "order_id", "line_no", "id", "member_id")),
    ("event", "events", ("event_id", "NULL", "NULL", "id", "member_id")),
)
_RECORD_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("order_id", pa.string()),
        ("line_no", pa.int64()),
        ("row_id", pa.int64()),
        ("member_id", pa.int64()),
    ]
)


def rebuild_all(session: Session, *, now: datetime, max_member_nos: int) -> RegroupOutcome:
    """Recount pollution and regroup every stored record; the caller commits."""
    scratch = tempfile.TemporaryDirectory(prefix="siyu-rebuild-")
    duck = duckdb.connect()
    try:
        # At tens of millions of records the copy outgrows memory: let DuckDB spill, not fail.
        duck.execute("SET preserve_insertion_order = false")
        duck.execute("SET temp_directory = ?", [scratch.name])
        _load(session, duck)
        outcome = RegroupOutcome(records=_scalar(duck, "SELECT count(*) FROM records"))
        outcome.polluted = _recount_pollution(session, duck, max_member_nos)
        _components(duck)
        targets = _targets(session, duck, now, outcome)
        _merge(session, duck, targets, now, outcome)
        _move_records(session, duck)
        _move_identities(session, duck)
        return outcome
    finally:
        duck.close()
        scratch.cleanup()


def _scalar(duck: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = duck.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _blocks(session: Session, sql: str) -> Iterator[Sequence[Any]]:
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(FETCH):
            yield rows
    finally:
        cursor.close()


@dataclass(frozen=True)
class _Source:
    """Columns of one store table to copy (`where` filters; `id` is the table's key)."""

    table: str
    columns: Sequence[str]
    where: str = "TRUE"

    @property
    def sql(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {self.where}"


def _copy(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: _Source,
    schema: pa.Schema,
    table: str,
) -> None:
    driver = session.get_bind().dialect.driver
    if driver == "psycopg":  # psycopg 3: COPY, no row objects
        _copy_csv(session, duck, source.sql, schema, table)
        return
    if driver == "pysqlite":
        _copy_sqlite(session, duck, source, schema, table)
        return
    for rows in _blocks(session, source.sql):
        values = zip(*rows, strict=True)
        columns = [pa.array(col, type=f.type) for col, f in zip(values, schema, strict=True)]
        block = pa.Table.from_arrays(columns, schema=schema)  # noqa: F841 — read by DuckDB
        duck.execute(f"INSERT INTO {table} SELECT * FROM block")


def _copy_sqlite(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: _Source,
    schema: pa.Schema,
    table: str,
) -> None:
    """SQLite: each block of rows joined into one text by SQLite itself (unit-separated fields,
    one line a row), parsed by DuckDB — no Python object per row or field. A value holding a
    line break or a unit separator makes the parse fail loudly, never drops a row."""
    fields = " || char(31) || ".join(f"coalesce(CAST({c} AS TEXT), '')" for c in source.columns)
    statement = (
        f"SELECT max(id), group_concat(line, char(10)) FROM (SELECT id, {fields} AS line "
        f"FROM {source.table} WHERE id > ? AND {source.where} ORDER BY id LIMIT {FETCH})"
    )
    types = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int8(): "TINYINT"}
    columns = ", ".join(f"'{field.name}': '{types[field.type]}'" for field in schema)
    cursor = session.connection().connection.cursor()
    try:
        with tempfile.TemporaryDirectory(prefix="siyu-rebuild-") as folder:
            path, last = Path(folder) / f"{table}.txt", -(2**63)
            while (row := cursor.execute(statement, (last,)).fetchone())[0] is not None:
                last = row[0]
                path.write_text(row[1] + "\n", encoding="utf-8")
                duck.execute(
                    f"INSERT INTO {table} SELECT * FROM read_csv(?, header = false, "
                    f"delim = chr(31), quote = '', escape = '', strict_mode = true, "
                    f"columns = {{{columns}}})",
                    [str(path)],
                )
    finally:
        cursor.close()


def _copy_csv(
    session: Session, duck: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema, table: str
) -> None:
    """PostgreSQL: COPY … TO STDOUT as CSV into a scratch file DuckDB parses in parallel.

    Python only moves bytes here; fetching rows as tuples costs ~1-3 µs a row, the bulk of a
    rebuild at millions of rows."""
    types = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int8(): "TINYINT"}
    columns = ", ".join(f"'{field.name}': '{types[field.type]}'" for field in schema)
    with tempfile.TemporaryDirectory(prefix="siyu-rebuild-") as folder:
        path = Path(folder) / f"{table}.csv"
        cursor = session.connection().connection.cursor()
        try:
            with (
                path.open("wb") as sink,
                cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                for data in copy:
                    sink.write(data)
        finally:
            cursor.close()
        if path.stat().st_size == 0:  # an empty table: nothing for the CSV reader to sniff
            return
        duck.execute(
            f"INSERT INTO {table} SELECT * FROM read_csv(?, header = false, delim = ',', "
            f"quote = '\"', escape = '\"', allow_quoted_nulls = false, "
            f"columns = {{{columns}}})",
            [str(path)],
        )


def _load(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    duck.execute(
        "CREATE TABLE raw_records (kind_rank TINYINT, key VARCHAR, order_id VARCHAR, "
        "line_no BIGINT, row_id BIGINT, member_id BIGINT)"
    )
    for kind, table_name, columns in _RECORD_SOURCES:
        duck.execute(
            "CREATE TEMP TABLE staged (key VARCHAR, order_id VARCHAR, line_no BIGINT, "
            "row_id BIGINT, member_id BIGINT)"
        )
        source = _Source(table_name, columns, "member_id IS NOT NULL")
        _copy(session, duck, source, _RECORD_SCHEMA, "staged")
        key = "key || ':' || line_no::VARCHAR" if kind == "order" else "key"
        duck.execute(
            f"INSERT INTO raw_records SELECT {KIND_RANK[kind]}, {key}, order_id, line_no, "
            f"row_id, member_id FROM staged"
        )
        duck.execute("DROP TABLE staged")
    duck.execute(
        "CREATE TABLE records AS SELECT row_number() OVER (ORDER BY kind_rank, row_id) - 1 "
        "AS idx, kind_rank, key, order_id, row_id, member_id FROM raw_records"
    )
    duck.execute("DROP TABLE raw_records")
    duck.execute(
        "CREATE TABLE observations (kind VARCHAR, key VARCHAR, identity_id BIGINT); "
        "CREATE TABLE identities (id BIGINT, type VARCHAR, value VARCHAR, member_id BIGINT, "
        "polluted BOOLEAN)"
    )
    _copy(
        session,
        duck,
        _Source("identity_observations", ("record_kind", "record_key", "identity_id")),
        pa.schema([("kind", pa.string()), ("key", pa.string()), ("identity_id", pa.int64())]),
        "observations",
    )
    _copy(
        session,
        duck,
        _Source(
            "identities",
            ("id", "type", "value", "member_id", "CASE WHEN polluted THEN 1 ELSE 0 END"),
        ),
        pa.schema(
            [
                ("id", pa.int64()),
                ("type", pa.string()),
                ("value", pa.string()),
                ("member_id", pa.int64()),
                ("polluted", pa.int8()),
            ]
        ),
        "identities",
    )
    # Observations of stored records only (not of records erased since), as record indexes.
    ranks = " ".join(f"WHEN '{kind}' THEN {rank}" for kind, rank in KIND_RANK.items())
    duck.execute(
        f"CREATE TABLE seen AS SELECT r.idx, o.identity_id FROM observations o "
        f"JOIN records r ON r.kind_rank = CASE o.kind {ranks} END AND r.key = o.key"
    )
    duck.execute("DROP TABLE observations")


def _recount_pollution(session: Session, duck: duckdb.DuckDBPyConnection, limit: int) -> int:
    """A non-member_no value seen on records with more than `limit` member_nos is polluted."""
    duck.execute(
        f"""CREATE TABLE polluted AS
        SELECT s.identity_id AS id FROM seen s
        JOIN identities i ON i.id = s.identity_id AND i.type <> '{MEMBER_NO}'
        JOIN seen n ON n.idx = s.idx
        JOIN identities m ON m.id = n.identity_id AND m.type = '{MEMBER_NO}'
        GROUP BY s.identity_id HAVING count(DISTINCT m.value) > {int(limit)}"""
    )
    duck.execute(
        "CREATE TABLE flags AS SELECT i.id, p.id IS NOT NULL AS polluted, i.polluted AS was "
        "FROM identities i LEFT JOIN polluted p USING (id)"
    )
    table = table_of(Identity)
    for flag in (True, False):
        rows = duck.execute(
            "SELECT id FROM flags WHERE polluted = ? AND was <> ? ORDER BY id", [flag, flag]
        ).fetchall()
        for chunk in _chunks([row[0] for row in rows]):
            session.execute(sa.update(table).where(table.c.id.in_(chunk)).values(polluted=flag))
    return _scalar(duck, "SELECT count(*) FROM polluted")


def _components(duck: duckdb.DuckDBPyConnection) -> None:
    """Label every record with the first record of its component (min-label propagation)."""
    duck.execute(
        """CREATE TABLE edges AS
        SELECT s.idx, s.identity_id * 2 AS hub FROM seen s
        WHERE s.identity_id NOT IN (SELECT id FROM polluted)
        UNION ALL
        SELECT r.idx, dense_rank() OVER (ORDER BY r.order_id) * 2 + 1 FROM records r
        WHERE r.order_id IS NOT NULL"""
    )
    duck.execute("CREATE TABLE labels AS SELECT idx, idx AS lab FROM records")
    while True:
        duck.execute(
            """CREATE OR REPLACE TABLE next_labels AS
            WITH hubs AS (
                SELECT e.hub, min(l.lab) AS lab FROM edges e JOIN labels l USING (idx)
                GROUP BY e.hub),
            reached AS (
                SELECT e.idx, min(h.lab) AS lab FROM edges e JOIN hubs h USING (hub)
                GROUP BY e.idx),
            stepped AS (
                SELECT l.idx, least(l.lab, coalesce(r.lab, l.lab)) AS lab
                FROM labels l LEFT JOIN reached r USING (idx))
            SELECT s.idx, least(s.lab, j.lab) AS lab FROM stepped s JOIN stepped j
            ON j.idx = s.lab"""
        )
        changed = _scalar(
            duck,
            "SELECT count(*) FROM next_labels n JOIN labels l USING (idx) WHERE n.lab <> l.lab",
        )
        duck.execute("DROP TABLE labels; ALTER TABLE next_labels RENAME TO labels")
        if changed == 0:
            return


def _targets(
    session: Session, duck: duckdb.DuckDBPyConnection, now: datetime, outcome: RegroupOutcome
) -> dict[int, int]:
    """Each component's member; returns them for the components that need Python (splits)."""
    duck.execute(
        """CREATE TABLE comps AS
        SELECT l.lab AS comp, min(r.member_id) AS low FROM labels l JOIN records r USING (idx)
        GROUP BY l.lab;
        CREATE TABLE comp_members AS
        SELECT DISTINCT l.lab AS comp, r.member_id FROM labels l JOIN records r USING (idx);
        CREATE TABLE shared AS
        SELECT member_id FROM comp_members GROUP BY member_id HAVING count(*) > 1;
        CREATE TABLE targets AS
        SELECT comp, low AS target FROM comps WHERE low NOT IN (SELECT member_id FROM shared)"""
    )
    contested = duck.execute(
        """SELECT c.comp, c.low, list(m.member_id ORDER BY m.member_id),
            (SELECT r.member_id FROM records r WHERE r.idx = c.comp)
        FROM comps c JOIN comp_members m USING (comp)
        WHERE c.low IN (SELECT member_id FROM shared)
        GROUP BY c.comp, c.low ORDER BY c.low, c.comp"""
    ).fetchall()
    taken: set[int] = set()
    chosen: dict[int, int] = {}
    for comp, _, members, origin in contested:
        free = [member for member in members if member not in taken]
        if free:
            target = free[0]
        else:
            target = _copy_member(session, origin, now)
            outcome.splits += 1
        taken.add(target)
        chosen[comp] = target
    if chosen:
        block = pa.table(  # noqa: F841 — read by DuckDB
            {"comp": list(chosen), "target": list(chosen.values())}
        )
        duck.execute("INSERT INTO targets SELECT * FROM block")
    return chosen


def _merge(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    targets: dict[int, int],
    now: datetime,
    outcome: RegroupOutcome,
) -> None:
    """A member that is nobody's target merges into the first component (in order) holding it."""
    rows = duck.execute(
        """WITH ordered AS (
            SELECT m.member_id, m.comp, t.target, c.low,
                row_number() OVER (PARTITION BY m.member_id ORDER BY c.low, c.comp) AS nth
            FROM comp_members m JOIN comps c USING (comp) JOIN targets t USING (comp)
            WHERE m.member_id NOT IN (SELECT target FROM targets))
        SELECT comp, target, member_id FROM ordered WHERE nth = 1
        ORDER BY low, comp, member_id"""
    ).fetchall()
    if not rows:
        return
    stored, observed, info, indexes = _evidence(duck, sorted({row[0] for row in rows}))
    for comp, target, member_id in rows:
        via = _shared_value(stored, observed, info, indexes[comp], member_id)
        merge_members(session, survivor=target, merged=member_id, via=via, now=now)
        outcome.merges += 1


def _evidence(
    duck: duckdb.DuckDBPyConnection, comps: Sequence[int]
) -> tuple[
    list[_Stored],
    dict[tuple[str, str], list[int]],
    dict[int, tuple[str, str, bool]],
    dict[int, list[int]],
]:
    """The merging components' records and values, shaped as the regroup's explanation reads."""
    block = pa.table({"comp": pa.array(comps, type=pa.int64())})  # noqa: F841 — read by DuckDB
    kinds = {rank: kind for kind, rank in KIND_RANK.items()}
    records = duck.execute(
        """SELECT l.lab, r.idx, r.kind_rank, r.key, r.row_id, r.member_id, r.order_id
        FROM labels l JOIN records r USING (idx) WHERE l.lab IN (SELECT comp FROM block)
        ORDER BY r.idx"""
    ).fetchall()
    stored: list[_Stored] = []
    indexes: dict[int, list[int]] = defaultdict(list)
    position: dict[int, int] = {}
    for comp, idx, rank, key, row_id, member_id, order_id in records:
        position[idx] = len(stored)
        indexes[comp].append(len(stored))
        stored.append(_Stored(kinds[rank], key, row_id, member_id, order_id))
    values = duck.execute(
        """SELECT s.idx, i.id, i.type, i.value, f.polluted FROM labels l
        JOIN seen s USING (idx) JOIN identities i ON i.id = s.identity_id
        JOIN flags f ON f.id = i.id
        WHERE l.lab IN (SELECT comp FROM block) ORDER BY s.idx, i.id"""
    ).fetchall()
    observed: dict[tuple[str, str], list[int]] = defaultdict(list)
    info: dict[int, tuple[str, str, bool]] = {}
    for idx, identity_id, kind, value, polluted in values:
        record = stored[position[idx]]
        observed[(record.kind, record.key)].append(identity_id)
        info[identity_id] = (kind, value, bool(polluted))
    return stored, observed, info, indexes


def _move_records(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    tables = ("member_records", "order_lines", "events")
    connection = session.connection()
    for rank, name in enumerate(tables):
        rows = duck.execute(
            """SELECT r.row_id, t.target FROM records r JOIN labels l USING (idx)
            JOIN targets t ON t.comp = l.lab WHERE r.kind_rank = ? AND r.member_id <> t.target
            ORDER BY r.row_id""",
            [rank],
        ).fetchall()
        if rows:
            table = sa.table(name, sa.column("id"), sa.column("member_id"))
            statement = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("rid"))
                .values(member_id=sa.bindparam("mid"))
            )
            connection.execute(statement, [{"rid": rid, "mid": mid} for rid, mid in rows])


def _move_identities(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    """Clean values follow their component; merges already moved whole members' values."""
    rows = duck.execute(
        """SELECT DISTINCT s.identity_id, t.target, i.member_id FROM seen s
        JOIN labels l USING (idx) JOIN targets t ON t.comp = l.lab
        JOIN flags f ON f.id = s.identity_id JOIN identities i ON i.id = s.identity_id
        WHERE NOT f.polluted AND i.member_id <> t.target ORDER BY s.identity_id"""
    ).fetchall()
    wanted = {identity_id: target for identity_id, target, _ in rows}
    owners = _identity_owners(session, wanted)
    changed = [
        {"iid": identity_id, "mid": target}
        for identity_id, target in sorted(wanted.items())
        if owners.get(identity_id) != target
    ]
    if changed:
        table = table_of(Identity)
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("iid"))
            .values(member_id=sa.bindparam("mid"))
        )
        session.connection().execute(statement, changed)
