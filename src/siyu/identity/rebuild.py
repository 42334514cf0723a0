"""Full OneID rebuild, set-based (`siyu identity rebuild`, issue #3).

Same rules and same result as `regroup(member_ids=None, recompute_pollution=True)` (docs/oneid.md
rule 6), computed in bulk instead of per record in Python:

1. Records (member rows, order lines with their evidence columns, events), observations,
   identities and (value, member_no) pairs are copied out of the store with one scan each
   (`siyu.store_copy`: CSV built by SQLite or PostgreSQL's COPY, parsed by DuckDB) into a
   private in-memory DuckDB, not the warehouse.
2. Pollution is recounted with one GROUP BY over `identity_member_nos`.
3. Components: min-label propagation over (node, value) edges, a node being a member row, an
   event or a whole order (its lines always belong together) and a value a clean identity
   value; each round also jumps labels to their label's label, so it converges in a few rounds
   on real identity graphs. A component's label is its first record.
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
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import Identity
from siyu.identity.oneid import _chunks, merge_members, table_of
from siyu.identity.regroup import (
    RegroupOutcome,
    _copy_member,
    _identity_owners,
    _shared_value,
    _Stored,
)
from siyu.store_copy import Column, Source, copy_rows, create_target

KIND_RANK = {"member": 0, "order": 1, "event": 2}
_NO_EVIDENCE = ("NULL", "NULL", "NULL")
_RECORD_SOURCES = (
    ("member", "member_records", ("record_key", "NULL", "NULL", *_NO_EVIDENCE)),
    (
        "order",
        "order_lines",
        (
            "order_id",
            "order_id",
            "line_no",
            "member_no_identity_id",
            "phone_identity_id",
            "unionid_identity_id",
        ),
    ),
    ("event", "events", ("event_id", "NULL", "NULL", *_NO_EVIDENCE)),
)
_PAIRS = Source(
    "identity_member_nos",
    (Column("identity_id", "BIGINT"), Column("member_no_identity_id", "BIGINT")),
    key="rowid",
)
_OBSERVATIONS = Source(
    "identity_observations",
    (
        Column("kind", "VARCHAR", "record_kind"),
        Column("key", "VARCHAR", "record_key"),
        Column("identity_id", "BIGINT"),
    ),
)
_IDENTITIES = Source(
    "identities",
    (
        Column("id", "BIGINT"),
        Column("type", "VARCHAR"),
        Column("value", "VARCHAR"),
        Column("member_id", "BIGINT"),
        Column("polluted", "TINYINT", "CASE WHEN polluted THEN 1 ELSE 0 END"),
    ),
)


def _records(table: str, key: str, order_id: str, line_no: str, *evidence: str) -> Source:
    """One kind of record (member rows, order lines, events) with its member and, for an
    order line, the identity ids it carries."""
    return Source(
        table,
        (
            Column("key", "VARCHAR", key),
            Column("order_id", "VARCHAR", order_id),
            Column("line_no", "BIGINT", line_no),
            Column("row_id", "BIGINT", "id"),
            Column("member_id", "BIGINT"),
            *(Column(f"evidence_{n}", "BIGINT", sql) for n, sql in enumerate(evidence)),
        ),
        where="member_id IS NOT NULL",
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


def _load(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    duck.execute(
        "CREATE TABLE raw_records (kind_rank TINYINT, key VARCHAR, order_id VARCHAR, "
        "line_no BIGINT, row_id BIGINT, member_id BIGINT, evidence_0 BIGINT, "
        "evidence_1 BIGINT, evidence_2 BIGINT)"
    )
    for kind, table_name, columns in _RECORD_SOURCES:
        source = _records(table_name, *columns)
        create_target(duck, "staged", source)
        copy_rows(session, duck, source, "staged")
        key = "key || ':' || line_no::VARCHAR" if kind == "order" else "key"
        duck.execute(
            f"INSERT INTO raw_records SELECT {KIND_RANK[kind]}, {key}, order_id, line_no, "
            f"row_id, member_id, evidence_0, evidence_1, evidence_2 FROM staged"
        )
        duck.execute("DROP TABLE staged")
    duck.execute(
        "CREATE TABLE numbered AS SELECT row_number() OVER (ORDER BY kind_rank, row_id) - 1 "
        "AS idx, * FROM raw_records"
    )
    duck.execute("DROP TABLE raw_records")
    duck.execute(
        "CREATE TABLE records AS SELECT idx, kind_rank, key, order_id, row_id, member_id "
        "FROM numbered"
    )
    for name, source in (
        ("observations", _OBSERVATIONS),
        ("identities", _IDENTITIES),
        ("pairs", _PAIRS),
    ):
        create_target(duck, name, source)
        copy_rows(session, duck, source, name)
    # Observations of stored records only (not of records erased since), as record indexes,
    # and the order lines' own evidence.
    ranks = " ".join(f"WHEN '{kind}' THEN {rank}" for kind, rank in KIND_RANK.items())
    duck.execute(
        f"""CREATE TABLE seen AS
        SELECT r.idx, o.identity_id FROM observations o
        JOIN records r ON r.kind_rank = CASE o.kind {ranks} END AND r.key = o.key
        UNION ALL
        SELECT idx, identity_id FROM (
            UNPIVOT (SELECT idx, evidence_0, evidence_1, evidence_2 FROM numbered
                     WHERE kind_rank = {KIND_RANK["order"]})
            ON evidence_0, evidence_1, evidence_2 INTO NAME slot VALUE identity_id)"""
    )
    duck.execute("DROP TABLE observations; DROP TABLE numbered")


def _recount_pollution(session: Session, duck: duckdb.DuckDBPyConnection, limit: int) -> int:
    """A value seen with more than `limit` member_nos (`identity_member_nos`) is polluted."""
    duck.execute(
        f"""CREATE TABLE polluted AS
        SELECT identity_id AS id FROM pairs
        GROUP BY identity_id HAVING count(*) > {int(limit)}"""
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
    """Label every record with the first record of its component (min-label propagation).

    An order's lines always share a component (the order joins them), so each order takes part
    as one node, named by its first line, with the values any of its lines carries: at 1M
    members that is ~2M orders instead of 4.8M lines, and far fewer edges. Each line then takes
    its order's label. A component's first record is its first node's, as the order's node is
    its first line."""
    duck.execute(
        """CREATE TABLE nodes AS
        SELECT idx, CASE WHEN order_id IS NULL THEN idx
            ELSE min(idx) OVER (PARTITION BY order_id) END AS node
        FROM records"""
    )
    duck.execute(
        """CREATE TABLE edges AS
        SELECT DISTINCT n.node AS idx, s.identity_id AS hub FROM seen s JOIN nodes n USING (idx)
        WHERE s.identity_id NOT IN (SELECT id FROM polluted)"""
    )
    duck.execute("CREATE TABLE labels AS SELECT DISTINCT node AS idx, node AS lab FROM nodes")
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
            break
    duck.execute(
        """ALTER TABLE labels RENAME TO node_labels;
        CREATE TABLE labels AS
        SELECT n.idx, l.lab FROM nodes n JOIN node_labels l ON l.idx = n.node;
        DROP TABLE node_labels; DROP TABLE nodes"""
    )


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
