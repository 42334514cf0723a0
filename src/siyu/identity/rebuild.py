"""Full OneID rebuild, set-based (`siyu identity rebuild`, issue #3).

Same rules and same result as `regroup(member_ids=None, recompute_pollution=True)` (docs/oneid.md
rule 6), computed in bulk instead of per record in Python:

1. Reading (`siyu.store_copy.read_for_update`). On an SQLite file the session takes the write
   lock, then read-only ADBC connections read covering indexes straight into Arrow, four
   pieces at a time: the orders' (order_id, line_no) index in its order (an order is a run of
   equal ids, so each line's first line comes without hashing order ids), the lines' member
   index (which holds their three evidence ids, migration core_0005), member rows' key and
   member indexes, observations by identity, identities by member, the flagged values'
   partial index, and the pollution recount (one GROUP BY over `identity_member_nos`'s
   primary key). The rows themselves are ~4x wider than these indexes: at 10M members the
   store (~25 GB) outgrows memory, and reading rows was the rebuild's cost. Elsewhere
   (PostgreSQL) the same columns come as CSV through `copy_rows`. Only integers and the keys
   that join observations to records are read; the few records a merge must explain are
   named from the store afterwards.
2. Pollution flags that flip are written; polluted values leave the graph.
3. Components: a graph of nodes (a member row, an event or a whole order: its lines always
   belong together) and clean identity values, an edge for each value a node carries, handed
   to scipy's connected components (C, linear). A component's label is its first record.
4. A component with one member who is in no other component (the steady state after
   imports) keeps that member: numpy decides it for all of them at once. Only the others'
   records go to DuckDB, where survivor choice is the regroup's greedy rule (components in
   order of their lowest member id; each takes its lowest member id not taken by an earlier
   component; Python walks only the components whose lowest member id is shared — splits).
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
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
from siyu.store_copy import Column, Source, read_for_update

KIND_RANK = {"member": 0, "order": 1, "event": 2}
_NO_ID = 0  # an order line's evidence column without a value (ids start at 1)
_ROW_ID = Column("row_id", "BIGINT", "id")
# What the rebuild reads, each (on SQLite) from an index that holds it: the rows themselves
# are ~4x wider (ADR 0006).
_ORDERS = Source(  # the (order_id, line_no) unique index, in its order: orders come grouped
    "order_lines",
    (_ROW_ID, Column("order_id", "VARCHAR"), Column("line_no", "BIGINT")),
    order_by="order_id, line_no",
    ranges="order_id",
)
_LINES = Source(  # ix_order_lines_member_paid, which holds the evidence ids too
    "order_lines",
    (
        _ROW_ID,
        Column("member_id", "BIGINT"),
        *(
            Column(f"evidence_{n}", "BIGINT", f"coalesce({name}_identity_id, {_NO_ID})")
            for n, name in enumerate(("member_no", "phone", "unionid"))
        ),
    ),
    ranges="member_id",
)
_MEMBER_KEYS = Source("member_records", (_ROW_ID, Column("key", "VARCHAR", "record_key")))
_MEMBER_ROWS = Source(
    "member_records", (_ROW_ID, Column("member_id", "BIGINT")), ranges="member_id"
)
_EVENTS = Source(
    "events",
    (_ROW_ID, Column("key", "VARCHAR", "event_id"), Column("member_id", "BIGINT")),
    where="member_id IS NOT NULL",
)
_OBSERVATIONS = Source(
    "identity_observations",
    (
        Column("kind", "VARCHAR", "record_kind"),
        Column("key", "VARCHAR", "record_key"),
        Column("identity_id", "BIGINT"),
    ),
    where="record_kind <> 'order'",  # lines keep their values in their own columns
    ranges="identity_id",
)
_IDENTITIES = Source(
    "identities", (Column("id", "BIGINT"), Column("member_id", "BIGINT")), ranges="member_id"
)
_FLAGGED = Source("identities", (Column("id", "BIGINT"),), where="polluted")


def _recount(limit: int) -> Source:
    """The values seen with more than `limit` member_nos, counted by the store over the pairs'
    primary key (the regroup's pollution rule), read alongside everything else."""
    return Source(
        f"""(SELECT identity_id AS id FROM identity_member_nos GROUP BY identity_id
        HAVING count(*) > {int(limit)}) AS recount""",
        (Column("id", "BIGINT"),),
    )


_SOURCES = (
    _ORDERS,
    _LINES,
    _MEMBER_KEYS,
    _MEMBER_ROWS,
    _EVENTS,
    _OBSERVATIONS,
    _IDENTITIES,
    _FLAGGED,
)


@dataclass
class _Part:
    """One kind of record as arrays: idx = `offset` + row id, the offsets stacking member rows,
    order lines and events (the regroup's order, so ties break alike; deleted rows leave gaps,
    which are harmless). A node is the record itself, or for an order line its order's first
    line."""

    kind_rank: int
    offset: int
    row_id: np.ndarray
    node: np.ndarray
    member_id: np.ndarray
    lab: np.ndarray | None = None  # the first record of its component, once known


@dataclass
class _Graph:
    """The records, the edges node → identity id (`sources`, `values`: first the `observed`
    values of member rows and events, then the lines'), the lines' `evidence` columns, each
    value's current member (`owner`, -1 for none) and the pollution flags as stored and as
    recounted."""

    records_end: int
    values_end: int
    parts: list[_Part]
    sources: np.ndarray
    values: np.ndarray
    owner: np.ndarray
    observed: int
    evidence: list[np.ndarray]
    flagged: set[int]
    polluted: set[int]

    @property
    def records(self) -> int:
        return sum(len(part.row_id) for part in self.parts)


def rebuild_all(session: Session, *, now: datetime, max_member_nos: int) -> RegroupOutcome:
    """Recount pollution and regroup every stored record; the caller commits."""
    scratch = tempfile.TemporaryDirectory(prefix="siyu-rebuild-")
    duck = duckdb.connect()
    try:
        # At tens of millions of records the copy outgrows memory: let DuckDB spill, not fail.
        duck.execute("SET preserve_insertion_order = false")
        duck.execute("SET temp_directory = ?", [scratch.name])
        graph = _load(session, duck, max_member_nos)
        outcome = RegroupOutcome(records=graph.records)
        outcome.polluted = _recount_pollution(session, duck, graph)
        hub_labels = _components(graph)
        members = _single_members(duck, graph)
        targets = _targets(session, duck, now, outcome)
        _merge(session, duck, targets, now, outcome)
        _move_records(session, duck)
        _move_identities(session, duck, graph, hub_labels, members)
        return outcome
    finally:
        duck.close()
        scratch.cleanup()


def _column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.int64)


def _load(session: Session, duck: duckdb.DuckDBPyConnection, limit: int) -> _Graph:
    """Read the store into arrays; member rows' and events' values come from their
    observations, joined by record key in DuckDB."""
    orders, lines, member_keys, member_rows, events, observations, identities, flagged, recount = (
        read_for_update(session, (*_SOURCES, _recount(limit)), reshape={0: _first_lines})
    )
    member_row_ids = _column(member_rows, "row_id")
    line_row_ids = _column(lines, "row_id")
    event_row_ids = _column(events, "row_id")
    lines_at = int(member_row_ids.max(initial=0)) + 1
    events_at = lines_at + int(line_row_ids.max(initial=0)) + 1
    records_end = events_at + int(event_row_ids.max(initial=0)) + 1
    first_line = np.zeros(events_at - lines_at, dtype=np.int64)
    first_line[_column(orders, "row_id")] = _column(orders, "first")
    del orders
    for name, table in (
        ("member_keys", member_keys),
        ("event_keys", events),
        ("observations", observations),
    ):
        duck.register(name, table)
    try:
        seen = duck.execute(
            f"""SELECT m.row_id::INTEGER AS idx, o.identity_id::INTEGER AS id
            FROM observations o JOIN member_keys m ON o.kind = 'member' AND m.key = o.key
            UNION ALL
            SELECT (e.row_id + {events_at})::INTEGER, o.identity_id::INTEGER
            FROM observations o JOIN event_keys e ON o.kind = 'event' AND e.key = o.key"""
        ).fetchnumpy()
    finally:
        for name in ("member_keys", "event_keys", "observations"):
            duck.unregister(name)
    del member_keys, observations
    line_node = first_line[line_row_ids] + lines_at
    del first_line
    evidence = [_column(lines, f"evidence_{n}") for n in range(3)]
    sources, values = _line_edges(line_node, evidence)
    sources.insert(0, np.asarray(seen["idx"], dtype=np.int32))
    values.insert(0, np.asarray(seen["id"], dtype=np.int32))
    identity_ids = _column(identities, "id")
    values_end = max(int(v.max(initial=0)) for v in (*values, identity_ids)) + 1
    owner = np.full(values_end, -1, dtype=np.int64)
    owner[identity_ids] = _column(identities, "member_id")
    return _Graph(
        records_end=records_end,
        values_end=len(owner),
        parts=[
            _Part(0, 0, member_row_ids, member_row_ids, _column(member_rows, "member_id")),
            _Part(1, lines_at, line_row_ids, line_node, _column(lines, "member_id")),
            _Part(
                2, events_at, event_row_ids, event_row_ids + events_at, _column(events, "member_id")
            ),
        ],
        sources=np.concatenate(sources),
        values=np.concatenate(values),
        owner=owner,
        observed=len(seen["idx"]),
        evidence=evidence,
        flagged=set(_column(flagged, "id").tolist()),
        polluted=set(_column(recount, "id").tolist()),
    )


def _line_edges(
    line_node: np.ndarray, evidence: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The edges (order node, value) the lines carry, as int32 (the graph's index type). Lines
    come in the member index's order, so an order's lines are neighbours: a value the line
    before gave the same order already is left out (~3x fewer edges at 10M members)."""
    sources, values = [], []
    same_order = np.concatenate([[False], line_node[1:] == line_node[:-1]])
    for column in evidence:
        repeated = same_order & np.concatenate([[False], column[1:] == column[:-1]])
        keep = (column != _NO_ID) & ~repeated
        sources.append(line_node[keep].astype(np.int32))
        values.append(column[keep].astype(np.int32))
    return sources, values


def _first_lines(orders: pa.Table) -> pa.Table:
    """Each order line's order's first line (lowest id): `orders` (a piece of them) comes
    sorted by order id, so an order is a run of equal order ids."""
    row_ids = _column(orders, "row_id")
    if orders.num_rows == 0:
        return pa.table({"row_id": row_ids, "first": row_ids})
    order_ids = orders.column("order_id").combine_chunks()
    starts = np.flatnonzero(
        np.concatenate(
            [[True], pc.not_equal(order_ids[1:], order_ids[:-1]).to_numpy(zero_copy_only=False)]
        )
    )
    lengths = np.diff(np.append(starts, len(row_ids)))
    first = np.repeat(np.minimum.reduceat(row_ids, starts), lengths)
    return pa.table({"row_id": row_ids, "first": first})


def _recount_pollution(session: Session, duck: duckdb.DuckDBPyConnection, graph: _Graph) -> int:
    """Write the pollution flags that flip (`graph.polluted` is the recount); `polluted` lists
    the values the rest of the rebuild leaves out."""
    polluted, flagged = graph.polluted, graph.flagged
    _create_table(duck, "polluted", pa.table({"id": pa.array(sorted(polluted), type=pa.int64())}))
    table = table_of(Identity)
    for flag, ids in ((True, polluted - flagged), (False, flagged - polluted)):
        for chunk in _chunks(sorted(ids)):
            session.execute(sa.update(table).where(table.c.id.in_(chunk)).values(polluted=flag))
    return len(polluted)


def _components(graph: _Graph) -> np.ndarray:
    """Label every record with the first record of its component (`part.lab`); returns each
    identity value's component label (≥ `records_end` for a value no record carries cleanly).

    The graph: a node per member row, event and whole order (its lines always belong
    together, so the order takes part as its first line, with the values all its lines carry),
    an edge from a node to each clean value it carries. scipy's connected components (C, one
    pass) finds the components; a component's label is its lowest record index."""
    records_end, size = graph.records_end, graph.records_end + graph.values_end
    clean = np.ones(graph.values_end, dtype=bool)
    clean[0] = False  # a line's evidence column without a value
    clean[[v for v in graph.polluted if v < graph.values_end]] = False
    kept = clean[graph.values]
    edges = csr_array(
        (
            np.ones(int(kept.sum()), dtype=np.int8),
            (graph.sources[kept], graph.values[kept] + np.int32(records_end)),
        ),
        shape=(size, size),
    )
    del kept
    _, component = connected_components(edges, directed=False)
    del edges
    first = np.full(int(component.max(initial=0)) + 1, size, dtype=np.int64)
    np.minimum.at(first, component[:records_end], np.arange(records_end, dtype=np.int64))
    for part in graph.parts:
        part.lab = first[component[part.node]]
    hubs: np.ndarray = first[component[records_end:]]
    return hubs


def _single_members(duck: duckdb.DuckDBPyConnection, graph: _Graph) -> np.ndarray:
    """Each component's member when it is simple — one member, who is in no other component,
    the steady state after imports — else -1. Only the other components' records go to
    DuckDB (`records`) for the regroup's survivor, merge and split rules."""
    labs = np.concatenate([part.lab for part in graph.parts if part.lab is not None])
    members = np.concatenate([part.member_id for part in graph.parts])
    lowest = np.full(graph.records_end, np.iinfo(np.int64).max, dtype=np.int64)
    highest = np.full(graph.records_end, -1, dtype=np.int64)
    np.minimum.at(lowest, labs, members)
    np.maximum.at(highest, labs, members)
    members_end = int(members.max(initial=0)) + 1
    first_lab = np.full(members_end, np.iinfo(np.int64).max, dtype=np.int64)
    last_lab = np.full(members_end, -1, dtype=np.int64)
    np.minimum.at(first_lab, members, labs)
    np.maximum.at(last_lab, members, labs)
    tangled = (highest >= 0) & (lowest != highest)
    split = first_lab != last_lab
    tangled[labs[split[members]]] = True
    del labs, members
    rows = []
    for part in graph.parts:
        assert part.lab is not None
        mine = tangled[part.lab]
        rows.append(
            pa.table(
                {
                    "idx": part.row_id[mine] + part.offset,
                    "kind_rank": np.full(int(mine.sum()), part.kind_rank, dtype=np.int8),
                    "row_id": part.row_id[mine],
                    "member_id": part.member_id[mine],
                    "lab": part.lab[mine],
                }
            )
        )
    _create_table(duck, "records", pa.concat_tables(rows))
    # Their values, for explaining merges: observed ones, and the lines' evidence columns.
    held = np.zeros(graph.records_end, dtype=bool)
    for part in graph.parts:
        assert part.lab is not None
        held[part.row_id[tangled[part.lab]] + part.offset] = True
    observed = graph.sources[: graph.observed]
    mine = held[observed]
    _create_table(
        duck,
        "seen",
        pa.table(
            {
                "idx": observed[mine].astype(np.int64),
                "identity_id": graph.values[: graph.observed][mine].astype(np.int64),
            }
        ),
    )
    lines = graph.parts[KIND_RANK["order"]]
    assert lines.lab is not None
    mine = tangled[lines.lab]
    columns = {f"evidence_{n}": column[mine] for n, column in enumerate(graph.evidence)}
    _create_table(
        duck, "line_values", pa.table({"idx": lines.row_id[mine] + lines.offset, **columns})
    )
    return np.where(tangled | (highest < 0), -1, lowest)


def _create_table(duck: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
    duck.register("_rows", rows)
    try:
        duck.execute(f"CREATE TABLE {name} AS SELECT * FROM _rows")
    finally:
        duck.unregister("_rows")


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
        block = pa.table({"comp": list(chosen), "target": list(chosen.values())})
        _create_table(duck, "chosen", block)
        duck.execute("INSERT INTO targets SELECT * FROM chosen")
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
    duck.execute("DROP TABLE IF EXISTS block")
    _create_table(duck, "block", pa.table({"comp": pa.array(comps, type=pa.int64())}))
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
        f"""WITH mine AS (SELECT idx FROM records WHERE lab IN (SELECT comp FROM block)),
        held AS (
            SELECT idx, identity_id FROM seen WHERE idx IN (SELECT idx FROM mine)
            UNION ALL
            SELECT idx, identity_id FROM (
                UNPIVOT (SELECT * FROM line_values WHERE idx IN (SELECT idx FROM mine))
                ON evidence_0, evidence_1, evidence_2 INTO NAME slot VALUE identity_id)
            WHERE identity_id <> {_NO_ID})
        SELECT h.idx, h.identity_id, h.identity_id IN (SELECT id FROM polluted)
        FROM held h ORDER BY h.idx, h.identity_id"""
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


def _move_identities(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    graph: _Graph,
    hub_labels: np.ndarray,
    members: np.ndarray,
) -> None:
    """Clean values follow their component; merges already moved whole members' values."""
    reached = np.flatnonzero((hub_labels < graph.records_end) & (graph.owner >= 0))
    target = members[hub_labels[reached]]
    chosen = dict(duck.execute("SELECT comp, target FROM targets").fetchall())
    if chosen:  # the tangled components' survivors, decided in DuckDB
        tangled = np.flatnonzero(target < 0)
        target[tangled] = [chosen[int(lab)] for lab in hub_labels[reached[tangled]]]
    differs = graph.owner[reached] != target
    wanted = dict(zip(reached[differs].tolist(), target[differs].tolist(), strict=True))
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
