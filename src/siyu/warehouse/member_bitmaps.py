"""`member_bitmaps`: the member bitmap index of the DuckDB warehouse (ADR 0005).

One roaring bitmap of member ids per indexed value — each value of `gender`, `store_code` and
`channel` (NULL included, as a row whose value is NULL), each tag — and one of every member
(`universe`). Segment previews answer attribute and tag conditions from it with bitmap algebra
instead of scanning and joining member sets (segments/bitmaps.py); the bitmap 圈人 of
ClickHouse-based platforms, here on DuckDB.

Kept by the sync: each batch that rewrites members or tags updates the bitmaps of those
members in the batch's own transaction (`apply_member_changes`: every bitmap loses them, their
new rows add them back), so a 10M-member index is not rebuilt for one changed member; the end
of a run rebuilds it whole only when it is absent or stale (`ensure_member_bitmaps`).
The guard: every sync write to `members` or `member_tags` bumps
`sync_state['members_generation']` in its own transaction, and the index records the
generation and the two tables' row counts it matches. Readers use it only while all three
still match, so after rows were added or removed outside the sync (tests, a hand repair) a
preview falls back to SQL: slower, never stale. A row changed in place keeps the counts, so
every writer that changes members or tags in place must move the index with it
(`held_bitmaps` before, `note_member_write` + `apply_member_changes` after, one transaction):
the sync and PIPL erasure do.

Decision: bitmaps are 32-bit (pyroaring `BitMap`, the faster kind); a warehouse holding a member
id ≥ 2^32 is not indexed and previews use SQL.
"""

from __future__ import annotations

import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import pyarrow as pa
from pyroaring import BitMap

TABLE = "member_bitmaps"
INDEXED_COLUMNS = ("gender", "store_code", "channel", "birthday")
TAG = "tag"
UNIVERSE = "universe"
# The value each member is indexed under, per dimension (a birthday as its ISO date text).
_MEMBER_VALUES = {
    UNIVERSE: "''",
    **{column: column for column in INDEXED_COLUMNS if column != "birthday"},
    "birthday": "CAST(birthday AS VARCHAR)",
}
GENERATION = "members_generation"  # sync_state: bumped by every sync write to members/tags
# What the index was built from, recorded in sync_state (name, how to count it now).
_BUILT = (
    (
        "member_bitmaps.generation",
        f"(SELECT max(watermark) FROM sync_state WHERE name = '{GENERATION}')",
    ),
    ("member_bitmaps.members", "(SELECT count(*) FROM members)"),
    ("member_bitmaps.tags", "(SELECT count(*) FROM member_tags)"),
)
_MAX_ID = 2**32 - 1


class DuckDBWarehouse(Protocol):
    """The DuckDB warehouse (warehouse/duckdb.py): the index is built on its connection."""

    dialect: str

    @property
    def connection(self) -> Any: ...

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...


def note_member_write(connection: Any) -> None:
    """Bump the generation; call inside the transaction that writes members or tags."""
    connection.execute(
        "INSERT INTO sync_state (name, watermark) VALUES (?, 1) "
        "ON CONFLICT (name) DO UPDATE SET watermark = sync_state.watermark + 1",
        [GENERATION],
    )


def member_bitmaps_current(warehouse: Any) -> bool:
    """Whether the index matches the members and tags in the warehouse now (always False on
    an engine other than DuckDB: the index is DuckDB's)."""
    if getattr(warehouse, "dialect", None) != "duckdb":
        return False
    return index_state(warehouse.connection) is not None


def index_current(connection: Any) -> bool:
    """The guard, read on a connection (inside the caller's transaction, if any)."""
    return index_state(connection) is not None


def index_state(connection: Any) -> tuple[int, ...] | None:
    """What the index matches (generation, members, tags) when it is current, else None:
    readers key what they cache of it on this. One query (a preview runs it every time)."""
    names = [name for name, _ in _BUILT]
    rows = connection.execute(
        "SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM member_tags), name, "
        f"watermark FROM sync_state WHERE name IN ({', '.join('?' * 4)})",
        [GENERATION, *names],
    ).fetchall()
    if not rows:
        return None
    recorded = {name: watermark for _, _, name, watermark in rows}
    now = (recorded.get(GENERATION, 0), rows[0][0], rows[0][1])
    built = tuple(recorded.get(name) for name in names)
    return now if now == built else None


def ensure_member_bitmaps(warehouse: DuckDBWarehouse) -> bool:
    """Rebuild the index unless it is current; whether it is usable afterwards."""
    if member_bitmaps_current(warehouse):
        return True
    return rebuild_member_bitmaps(warehouse) is not None


def rebuild_member_bitmaps(warehouse: DuckDBWarehouse) -> int | None:
    """Build the whole index from `members` and `member_tags`; the number of bitmaps, or None
    when a member id does not fit 32 bits (the index is then dropped: previews use SQL)."""
    connection = warehouse.connection
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        _forget_guard(connection)
        highest = connection.execute("SELECT max(member_id) FROM members").fetchall()[0][0]
        if highest is not None and int(highest) > _MAX_ID:
            connection.execute("COMMIT")
            return None
        rows = list(_bitmaps(connection))
        connection.execute(f"CREATE TABLE {TABLE} (dimension VARCHAR, value VARCHAR, members BLOB)")
        _insert(connection, rows)
        note_member_write(connection)  # a new state: what readers cached of the old is dropped
        _record_guard(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return len(rows)


Key = tuple[str, str | None]  # (dimension, value) of one bitmap


def held_bitmaps(connection: Any, member_ids: Sequence[int]) -> set[Key] | None:
    """The bitmaps `member_ids` are in now, read from their rows BEFORE the sync rewrites them
    (same transaction); None when the index is not current (then nothing is updated: the end
    of the sync rebuilds it)."""
    if not member_ids or not index_current(connection):
        return None
    return {(d, v) for d, v, _ in _rows_of(connection, member_ids)}


def apply_member_changes(
    connection: Any, member_ids: Sequence[int], *, held: set[Key] | None
) -> None:
    """Bring the index up to date with the rewritten members and tags of `member_ids`, inside
    the sync's transaction that rewrote them (after `note_member_write`).

    `held` is what `held_bitmaps` read before the write: those bitmaps lose the members, and
    the bitmaps their new rows name gain them (a merged-away member is in none). Only the
    bitmaps involved are read and rewritten, so one changed member costs a few bitmaps, not
    the index. `held` None (the index was stale or absent) leaves it to `ensure_member_bitmaps`
    at the end of the sync."""
    if held is None or not member_ids:
        return
    if max(member_ids) > _MAX_ID:
        _forget_guard(connection)  # not indexable any more: the end of the sync drops it
        return
    rows = _rows_of(connection, member_ids)
    touched = held | {(d, v) for d, v, _ in rows}
    bitmaps = _read(connection, touched)
    leaving = BitMap(member_ids)  # built once: a big batch holds thousands of bitmaps
    for key in held:
        bitmaps[key] -= leaving
    for dimension, value, member_id in rows:
        bitmaps[(dimension, value)].add(member_id)
    with _keys_table(connection, touched):
        connection.execute(
            f"DELETE FROM {TABLE} b USING _bitmap_keys k "
            "WHERE b.dimension = k.dimension AND b.value IS NOT DISTINCT FROM k.value"
        )
    kept = sorted((key for key in touched if bitmaps[key]), key=str)
    _insert(connection, [(d, v, _serialized_bitmap(bitmaps[(d, v)])) for d, v in kept])
    _record_guard(connection)


def _rows_of(connection: Any, member_ids: Sequence[int]) -> list[tuple[str, str | None, int]]:
    """(dimension, value, member id) of every bitmap the members' current rows put them in."""
    connection.register("_bitmap_ids", pa.table({"member_id": pa.array(member_ids, pa.int64())}))
    try:
        selects = [
            f"SELECT '{dimension}', {value}, member_id FROM members"
            for dimension, value in _MEMBER_VALUES.items()
        ]
        members = " UNION ALL ".join(
            f"{sql} WHERE member_id IN (SELECT member_id FROM _bitmap_ids)" for sql in selects
        )
        tags = (
            f"SELECT '{TAG}', tag, member_id FROM member_tags "
            "WHERE member_id IN (SELECT member_id FROM _bitmap_ids) "
            "AND member_id IN (SELECT member_id FROM members)"
        )
        return [tuple(row) for row in connection.execute(f"{members} UNION ALL {tags}").fetchall()]
    finally:
        connection.unregister("_bitmap_ids")


def _read(connection: Any, keys: set[Key]) -> dict[Key, BitMap]:
    """The stored bitmaps of `keys` (an empty one for a key not stored yet)."""
    found: dict[Key, BitMap] = {key: BitMap() for key in keys}
    with _keys_table(connection, keys):
        for dimension, value, blob in connection.execute(
            f"SELECT b.dimension, b.value, b.members FROM {TABLE} b JOIN _bitmap_keys k "
            "ON b.dimension = k.dimension AND b.value IS NOT DISTINCT FROM k.value"
        ).fetchall():
            found[(dimension, value)] = BitMap.deserialize(blob)
    return found


@contextmanager
def _keys_table(connection: Any, keys: set[Key]) -> Iterator[None]:
    """`keys` as the relation `_bitmap_keys` (one statement for thousands of bitmaps: a batch
    of 50k members touches most birthdays)."""
    block = pa.table(
        {
            "dimension": pa.array([key[0] for key in keys], pa.string()),
            "value": pa.array([key[1] for key in keys], pa.string()),
        }
    )
    connection.register("_bitmap_keys", block)
    try:
        yield
    finally:
        connection.unregister("_bitmap_keys")


def _insert(connection: Any, rows: Sequence[tuple[str, str | None, bytes]]) -> None:
    if not rows:
        return
    block = pa.table(
        {
            "dimension": pa.array([row[0] for row in rows], pa.string()),
            "value": pa.array([row[1] for row in rows], pa.string()),
            "members": pa.array([row[2] for row in rows], pa.binary()),
        }
    )
    connection.register("_bitmap_rows", block)
    try:
        connection.execute(
            f"INSERT INTO {TABLE} SELECT dimension, value, members FROM _bitmap_rows"
        )
    finally:
        connection.unregister("_bitmap_rows")


def _forget_guard(connection: Any) -> None:
    names = [name for name, _ in _BUILT]
    connection.execute(
        f"DELETE FROM sync_state WHERE name IN ({', '.join('?' for _ in names)})", names
    )


def _record_guard(connection: Any) -> None:
    _forget_guard(connection)
    for name, sql in _BUILT:
        connection.execute(
            f"INSERT INTO sync_state (name, watermark) SELECT ?, coalesce({sql}, 0)", [name]
        )


def _bitmaps(connection: Any) -> Iterator[tuple[str, str | None, bytes]]:
    """(dimension, value, serialized bitmap) for every indexed value, universe first."""
    for dimension, value in _MEMBER_VALUES.items():
        select = f"SELECT {value} AS value, member_id FROM members"
        yield from _grouped(connection, dimension, select)
    yield from _grouped(
        connection,
        TAG,
        "SELECT tag AS value, member_id FROM member_tags "
        "WHERE member_id IN (SELECT member_id FROM members)",
    )


def _grouped(
    connection: Any, dimension: str, select: str
) -> Iterator[tuple[str, str | None, bytes]]:
    """One query per dimension: each value's member ids as one list, turned into a bitmap
    from the list's flat buffer (no Python object per member)."""
    table = connection.sql(
        f"SELECT value, list(member_id) AS ids FROM ({select}) GROUP BY value"
    ).to_arrow_table()
    values = table.column("value").to_pylist()
    lists = table.column("ids").combine_chunks()
    offsets = lists.offsets.to_numpy()
    flat = lists.values.to_numpy().astype("uint32")
    for position, value in enumerate(values):
        ids = flat[offsets[position] : offsets[position + 1]]
        yield dimension, value, _serialized(ids)


def _serialized(ids: Any) -> bytes:
    buffer = array.array("I")
    buffer.frombytes(ids.tobytes())  # both native byte order
    return _serialized_bitmap(BitMap(buffer))


def _serialized_bitmap(bitmap: BitMap) -> bytes:
    bitmap.run_optimize()
    return bytes(bitmap.serialize())
