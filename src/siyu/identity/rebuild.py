"""Full OneID rebuild, set-based (`siyu identity rebuild`, issue #3).

Same rules and same result as `regroup(member_ids=None, recompute_pollution=True)` (docs/oneid.md
rule 6), computed in bulk instead of per record in Python:

1. Member rows, order lines (with their evidence columns), events, observations and identities
   are copied out of the store with one scan each (`siyu.store_copy.copy_for_update`: on an
   SQLite file, read straight into Arrow by ADBC on two cores while the session holds the
   write lock; elsewhere CSV built by the store) into a private in-memory DuckDB, not the
   warehouse. Only integers and the keys that join observations to records are copied; the
   few records a merge must explain are named from the store afterwards.
2. Pollution is recounted with one GROUP BY over `identity_member_nos`, in the store.
3. Components: a graph of nodes (a member row, an event or a whole order: its lines always
   belong together) and clean identity values, an edge for each value a node carries, handed
   to scipy's connected components (C, linear). A component's label is its first record.
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
import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components
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
from siyu.identity.regroup import _recount_pollution as recount_pollution
from siyu.store_copy import Column, Source, copy_for_update

KIND_RANK = {"member": 0, "order": 1, "event": 2}
_NO_ID = "0"  # an order line's evidence column without a value (ids start at 1)
_COPIES = (
    (
        Source(
            "member_records",
            (
                Column("row_id", "BIGINT", "id"),
                Column("key", "VARCHAR", "record_key"),
                Column("member_id", "BIGINT"),
            ),
        ),
        "member_rows",
    ),
    (
        Source(
            "order_lines",
            (
                Column("row_id", "BIGINT", "id"),
                Column("order_id", "VARCHAR"),
                Column("member_id", "BIGINT"),
                *(
                    Column(f"evidence_{n}", "BIGINT", f"coalesce({name}_identity_id, {_NO_ID})")
                    for n, name in enumerate(("member_no", "phone", "unionid"))
                ),
            ),
        ),
        "line_rows",
    ),
    (
        Source(
            "events",
            (
                Column("row_id", "BIGINT", "id"),
                Column("key", "VARCHAR", "event_id"),
                Column("member_id", "BIGINT"),
            ),
            where="member_id IS NOT NULL",
        ),
        "event_rows",
    ),
    (
        Source(
            "identity_observations",
            (
                Column("kind", "VARCHAR", "record_kind"),
                Column("key", "VARCHAR", "record_key"),
                Column("identity_id", "BIGINT"),
            ),
            where="record_kind <> 'order'",  # lines keep their values in their own columns
        ),
        "observations",
    ),
    (
        Source(
            "identities",
            (
                Column("id", "BIGINT"),
                Column("member_id", "BIGINT"),
                Column("polluted", "TINYINT", "CASE WHEN polluted THEN 1 ELSE 0 END"),
            ),
        ),
        "identities",
    ),
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
    """Records numbered without a sort: idx = the kind's offset + the row's id, the offsets
    stacking member rows, order lines and events (the regroup's order, so ties break alike;
    deleted rows leave gaps, which are harmless). `seen` holds each record's values."""
    copy_for_update(session, duck, _COPIES)
    lines_at = _scalar(duck, "SELECT coalesce(max(row_id), 0) + 1 FROM member_rows")
    events_at = lines_at + _scalar(duck, "SELECT coalesce(max(row_id), 0) + 1 FROM line_rows")
    order = KIND_RANK["order"]
    duck.execute(
        f"""CREATE TABLE lines AS
        SELECT row_id + {lines_at} AS idx, min(row_id) OVER (PARTITION BY order_id)
            + {lines_at} AS node, row_id, member_id, evidence_0, evidence_1, evidence_2
        FROM line_rows;
        DROP TABLE line_rows;
        CREATE TABLE records AS
        SELECT row_id AS idx, {KIND_RANK["member"]}::TINYINT AS kind_rank, row_id, member_id,
            row_id AS node FROM member_rows
        UNION ALL SELECT idx, {order}::TINYINT, row_id, member_id, node FROM lines
        UNION ALL SELECT row_id + {events_at}, {KIND_RANK["event"]}::TINYINT, row_id,
            member_id, row_id + {events_at} FROM event_rows;
        CREATE TABLE seen AS
        SELECT m.row_id AS idx, m.row_id AS node, o.identity_id FROM observations o
        JOIN member_rows m ON o.kind = 'member' AND m.key = o.key
        UNION ALL
        SELECT e.row_id + {events_at}, e.row_id + {events_at}, o.identity_id FROM observations o
        JOIN event_rows e ON o.kind = 'event' AND e.key = o.key
        UNION ALL
        SELECT idx, node, identity_id FROM (
            UNPIVOT lines ON evidence_0, evidence_1, evidence_2 INTO NAME slot VALUE identity_id)
        WHERE identity_id <> {_NO_ID};
        DROP TABLE lines; DROP TABLE observations; DROP TABLE member_rows; DROP TABLE event_rows"""
    )


def _recount_pollution(session: Session, duck: duckdb.DuckDBPyConnection, limit: int) -> int:
    """A value seen with more than `limit` member_nos (`identity_member_nos`) is polluted:
    one GROUP BY in the store, over the pairs' primary key."""
    polluted = pa.table(  # noqa: F841 — read by DuckDB
        {"id": pa.array(sorted(recount_pollution(session, limit)), type=pa.int64())}
    )
    duck.execute(
        """CREATE TABLE polluted AS SELECT id FROM polluted;
        CREATE TABLE flags AS SELECT i.id, p.id IS NOT NULL AS polluted, i.polluted = 1 AS was
        FROM identities i LEFT JOIN polluted p USING (id)"""
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
    """Label every record with the first record of its component, and every identity value
    with the component its records are in (`hub_labels`).

    The graph: a node per member row, event and whole order (its lines always belong
    together, so the order takes part as its first line, with the values all its lines carry),
    an edge from a node to each clean value it carries. scipy's connected components (C, one
    pass) finds the components; a component's label is its lowest record index."""
    records_end = _scalar(duck, "SELECT coalesce(max(idx), 0) + 1 FROM records")
    values_end = _scalar(duck, "SELECT coalesce(max(id), 0) + 1 FROM identities")
    size = records_end + values_end
    edges = duck.execute(
        f"""SELECT node::INTEGER AS node, (identity_id + {records_end})::INTEGER AS value
        FROM seen WHERE identity_id NOT IN (SELECT id FROM polluted)"""
    ).fetchnumpy()
    graph = csr_array(
        (np.ones(len(edges["node"]), dtype=np.int8), (edges["node"], edges["value"])),
        shape=(size, size),
    )
    del edges
    _, component = connected_components(graph, directed=False)
    del graph
    first = np.full(int(component.max(initial=0)) + 1, size, dtype=np.int64)
    np.minimum.at(first, component[:records_end], np.arange(records_end, dtype=np.int64))
    records = duck.execute("SELECT idx, kind_rank, row_id, member_id, node FROM records")
    columns = records.fetchnumpy()
    columns["lab"] = first[component[columns.pop("node")]]
    labelled = pa.table(columns)  # noqa: F841 — read by DuckDB
    hubs = first[component[records_end:]]
    reached = np.flatnonzero(hubs < records_end)
    hub_labels = pa.table(  # noqa: F841 — read by DuckDB
        {"id": reached.astype(np.int64), "lab": hubs[reached]}
    )
    duck.execute(
        "CREATE OR REPLACE TABLE records AS SELECT * FROM labelled; "
        "CREATE TABLE hub_labels AS SELECT * FROM hub_labels"
    )


def _targets(
    session: Session, duck: duckdb.DuckDBPyConnection, now: datetime, outcome: RegroupOutcome
) -> dict[int, int]:
    """Each component's member; returns them for the components that need Python (splits)."""
    duck.execute(
        """CREATE TABLE comp_members AS
        SELECT DISTINCT lab AS comp, member_id FROM records;
        CREATE TABLE comps AS
        SELECT comp, min(member_id) AS low FROM comp_members GROUP BY comp;
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
    stored, observed, info, indexes = _evidence(session, duck, sorted({row[0] for row in rows}))
    for comp, target, member_id in rows:
        via = _shared_value(stored, observed, info, indexes[comp], member_id)
        merge_members(session, survivor=target, merged=member_id, via=via, now=now)
        outcome.merges += 1


def _evidence(
    session: Session, duck: duckdb.DuckDBPyConnection, comps: Sequence[int]
) -> tuple[
    list[_Stored],
    dict[tuple[str, str], list[int]],
    dict[int, tuple[str, str, bool]],
    dict[int, list[int]],
]:
    """The merging components' records and values, shaped as the regroup's explanation reads;
    keys, order ids and values are read back from the store for these few records only."""
    block = pa.table({"comp": pa.array(comps, type=pa.int64())})  # noqa: F841 — read by DuckDB
    kinds = {rank: kind for kind, rank in KIND_RANK.items()}
    records = duck.execute(
        """SELECT r.lab, r.idx, r.kind_rank, r.row_id, r.member_id
        FROM records r WHERE r.lab IN (SELECT comp FROM block)
        ORDER BY r.idx"""
    ).fetchall()
    keys = _record_keys(session, [(kinds[rank], row_id) for _, _, rank, row_id, _ in records])
    stored: list[_Stored] = []
    indexes: dict[int, list[int]] = defaultdict(list)
    position: dict[int, int] = {}
    for comp, idx, rank, row_id, member_id in records:
        key, order_id = keys[(kinds[rank], row_id)]
        position[idx] = len(stored)
        indexes[comp].append(len(stored))
        stored.append(_Stored(kinds[rank], key, row_id, member_id, order_id))
    values = duck.execute(
        """SELECT s.idx, s.identity_id, f.polluted FROM records r JOIN seen s USING (idx)
        JOIN flags f ON f.id = s.identity_id
        WHERE r.lab IN (SELECT comp FROM block) ORDER BY s.idx, s.identity_id"""
    ).fetchall()
    identity = table_of(Identity)
    named: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(sorted({row[1] for row in values})):
        statement = sa.select(identity.c.id, identity.c.type, identity.c.value).where(
            identity.c.id.in_(chunk)
        )
        named.update((row.id, (row.type, row.value)) for row in session.execute(statement))
    observed: dict[tuple[str, str], list[int]] = defaultdict(list)
    info: dict[int, tuple[str, str, bool]] = {}
    for idx, identity_id, polluted in values:
        record = stored[position[idx]]
        observed[(record.kind, record.key)].append(identity_id)
        info[identity_id] = (*named[identity_id], bool(polluted))
    return stored, observed, info, indexes


def _record_keys(
    session: Session, records: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[str, str | None]]:
    """(kind, row id) → (record key, order id) as the regroup names records."""
    sources = {
        "member": sa.text("SELECT id, record_key, NULL FROM member_records WHERE id IN :ids"),
        "order": sa.text(
            "SELECT id, order_id || ':' || line_no, order_id FROM order_lines WHERE id IN :ids"
        ),
        "event": sa.text("SELECT id, event_id, NULL FROM events WHERE id IN :ids"),
    }
    keys: dict[tuple[str, int], tuple[str, str | None]] = {}
    for kind, statement in sources.items():
        row_ids = sorted({row_id for k, row_id in records if k == kind})
        for chunk in _chunks(row_ids):
            query = statement.bindparams(sa.bindparam("ids", expanding=True))
            for row_id, key, order_id in session.execute(query, {"ids": list(chunk)}):
                keys[(kind, row_id)] = (str(key), order_id)
    return keys


def _move_records(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    moves = duck.execute(
        """SELECT r.kind_rank, r.row_id, t.target FROM records r JOIN targets t ON t.comp = r.lab
        WHERE r.member_id <> t.target ORDER BY r.kind_rank, r.row_id"""
    ).fetchall()
    connection = session.connection()
    for rank, name in enumerate(("member_records", "order_lines", "events")):
        rows = [{"rid": rid, "mid": mid} for kind, rid, mid in moves if kind == rank]
        if rows:
            table = sa.table(name, sa.column("id"), sa.column("member_id"))
            statement = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("rid"))
                .values(member_id=sa.bindparam("mid"))
            )
            connection.execute(statement, rows)


def _move_identities(session: Session, duck: duckdb.DuckDBPyConnection) -> None:
    """Clean values follow their component; merges already moved whole members' values."""
    rows = duck.execute(
        """SELECT i.id, t.target FROM identities i JOIN hub_labels h USING (id)
        JOIN targets t ON t.comp = h.lab WHERE i.member_id <> t.target ORDER BY i.id"""
    ).fetchall()
    wanted = {identity_id: target for identity_id, target in rows}
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
