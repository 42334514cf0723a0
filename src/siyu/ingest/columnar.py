"""The columnar lane of an order import: the common case of a batch validated, hashed and
resolved to members in DuckDB, set-based, instead of one Python object per line.

The row-by-row path (`validation`, `writer`, `identity.oneid`) stays the definition of what an
import does. This lane only takes the lines it can prove that path would treat exactly so, and
hands every other line to it (the *slow* lines), so results never depend on the lane:

- A line is *plain* when every field is already in canonical form (no surrounding whitespace,
  an amount written as `str(Decimal)` writes it, an ISO timestamp with seconds, a known
  status, a phone of digits and separators): its values and content hash are computed in SQL
  and equal, byte for byte, what `validate_order` gives. Anything else goes to the slow lane,
  which also writes the rejection reasons.
- A plain line is *settled* when OneID has nothing to decide: every identity value on it
  already exists, its non-polluted values all belong to one member, the order's stored lines
  (if any) belong to that member, and every (clean value, member_no) pair it carries is
  already in `identity_member_nos`, so no pollution count can change. Such a line only adds an
  order line, with the identity ids of its values as its evidence, and the pairs it brings for
  already polluted values. Every line of an order takes the same lane, so an order is never
  split between them.
- Duplicates: a line already stored with the same hash is a duplicate; with another hash it is
  rejected, as in the slow lane. An order with two lines of the same key in one batch goes to
  the slow lane.

Decided here: the lane reads CSV (when every physical line is one row, so line numbers are
exact) and Parquet files whose columns are all strings, on SQLite. NDJSON, other Parquet
files and PostgreSQL keep the row-by-row path. Naive timestamps take the business time
zone's offset per local hour, computed in Python; an hour whose offset changes inside it, or
that is not whole minutes (pre-1900 local mean time), goes to the slow lane. The lane assumes
the stored pollution flags agree with `max_member_nos`; after lowering it, run
`siyu identity rebuild` (which recounts them) as before.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import Identity, IdentityMemberNo, Member
from siyu.identity.oneid import table_of
from siyu.ingest.bulk import insert_sql, insert_tuples_returning_ids
from siyu.ingest.readers import SourceRow, csv_row, detect_format, scan_text
from siyu.ingest.validation import ORDER_FIELDS
from siyu.ingest.writer import BatchResult, Rejection
from siyu.orders.models import OrderLine

# Python's str.isspace() characters: a field starting or ending with one is not canonical.
_SPACE = (
    r"[\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
# Fields joined by \x01: one of them starts or ends with a space.
_EDGE_SPACE = rf"(^|\x{{01}}){_SPACE}|{_SPACE}(\x{{01}}|$)"
_INSTANT = (
    r"^(\d{4})-(\d{2})-(\d{2})[T ]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"
    r"(\.\d{3}|\.\d{6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$"
)
# A CSV line whose fields are each unquoted (no quote inside) or wholly quoted ("" escapes).
_QUOTED_LINE = r'(?:[^",]*|"(?:[^"]|"")*")(?:,(?:[^",]*|"(?:[^"]|"")*"))*\r?'
_AMOUNT = r"^(0|[1-9]\d{0,13})(\.\d{1,2})?$"
_PHONE_CHARS = r"^[0-9+ ()\-]*$"
_TEXT_FIELDS = (
    "order_id", "line_no", "member_no", "unionid", "store_code", "channel", "paid_at", "amount",
    "status", "category", "sku",
)  # fmt: skip
_STORE_COLUMNS = (
    "order_id", "line_no", "member_id", "member_no", "phone", "unionid", "store_code",
    "channel", "paid_at", "amount", "status", "category", "sku", "row_hash",
    "member_no_identity_id", "phone_identity_id", "unionid_identity_id",
)  # fmt: skip


MEMORY_LIMIT = "1GB"


class LaneUnavailable(Exception):
    """The file cannot take the columnar lane; the caller imports it row by row."""


@dataclass
class ColumnarBatch:
    """One batch of the file: what the lane stored, and the lines left to the slow lane."""

    rows: int
    result: BatchResult
    slow: list[SourceRow]


class FileLane:
    """A file's rows loaded once into a private DuckDB, handed out batch by batch; a lane
    names the file's fields, its instant field and the SQL that prepares a batch."""

    fields: tuple[str, ...] = ()
    instant_field = ""

    def prepare_sql(self) -> str:
        raise NotImplementedError

    def __init__(self, path: Path, *, tz: tzinfo, now: datetime) -> None:
        self.path = path
        self.tz = tz
        self.now_text = _utc_text(now)
        # A 50M-line file is several GB as a table: DuckDB keeps MEMORY_LIMIT in RAM and
        # spills the rest to a scratch directory, so an import's memory does not grow with
        # the file.
        self.scratch = tempfile.TemporaryDirectory(prefix="siyu-import-")
        self.duck = duckdb.connect()
        self.duck.execute("SET preserve_insertion_order = true")
        self.duck.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.duck.execute("SET temp_directory = ?", [self.scratch.name])
        try:
            self.rows = self._load(path)
        except BaseException:
            self.close()
            raise
        self._offsets_known: set[str] = set()
        self.duck.execute("CREATE TABLE local_offsets (hour VARCHAR PRIMARY KEY, minutes INTEGER)")

    def close(self) -> None:
        self.duck.close()
        self.scratch.cleanup()

    def _load(self, path: Path) -> int:
        fmt = detect_format(path)
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                header = [name.strip() for name in next(csv.reader(handle), [])]
            if not header or len(set(header)) != len(header) or any("\n" in n for n in header):
                raise LaneUnavailable("the CSV header is empty or repeats a column")
            source = (
                "read_csv(?, header = true, all_varchar = true, delim = ',', quote = '\"', "
                "escape = '\"', null_padding = true, auto_detect = false, "
                f"columns = {_struct(header)})"
            )
            names = header
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            schema = pq.ParquetFile(path).schema_arrow
            if not all(
                pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema
            ):
                raise LaneUnavailable("a Parquet column is not text")
            source = "read_parquet(?)"
            names = list(schema.names)
        else:
            raise LaneUnavailable(f"{fmt} files are read row by row")
        if len(set(names)) != len(names):
            raise LaneUnavailable("a column name repeats")
        # An empty cell is "no value" (`validation._text`); Parquet keeps '' apart from NULL.
        selected = ", ".join(
            _non_empty(name) if name in names else f'NULL::VARCHAR AS "{name}"'
            for name in self.fields
        )
        extra = [n for n in names if n not in self.fields]
        extras = "".join(f', "{_ident(n)}"' for n in extra)
        try:
            self.duck.execute(
                f"CREATE TABLE source AS SELECT row_number() OVER () - 1 AS idx, {selected}"
                f"{extras}, false AS odd_quotes FROM {source}",
                [str(path)],
            )
        except duckdb.Error as error:  # a row with too many columns, bad encoding…
            raise LaneUnavailable(f"DuckDB could not read the file: {error}") from None
        self.file_columns = names  # what the slow lane and the rejected-rows file see
        self.odd_quotes = False
        rows = int(self.duck.execute("SELECT count(*) FROM source").fetchone()[0])  # type: ignore[index]
        if fmt == "csv":
            text = scan_text(path)
            if text.lines != rows + 1:
                # A blank line or a quoted line break: row index + 2 would not be its line.
                raise LaneUnavailable("the CSV has blank lines or line breaks inside fields")
            if text.has_quotes:
                self._mark_odd_quotes(path)
        self.first_line = 2 if fmt == "csv" else 1
        return rows

    def _mark_odd_quotes(self, path: Path) -> None:
        """Python's csv module and DuckDB agree on well-formed quoted fields only (` "a"` is
        `a` to one and ` "a"` to the other): lines with any other use of quotes go slow, and
        the slow lane reads them with Python's csv module, as the row path does."""
        try:
            self.duck.execute(
                "CREATE TABLE odd_lines AS SELECT idx, line FROM ("
                "SELECT row_number() OVER () - 1 AS idx, line FROM read_csv(?, header = true, "
                "columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', "
                "auto_detect = false)) "
                "WHERE contains(line, '\"') AND NOT regexp_full_match(line, ?)",
                [str(path), _QUOTED_LINE],
            )
        except duckdb.Error as error:  # a \x01 in the file
            raise LaneUnavailable(f"DuckDB could not read the raw lines: {error}") from None
        self.duck.execute(
            "UPDATE source SET odd_quotes = true WHERE idx IN (SELECT idx FROM odd_lines)"
        )
        self.odd_quotes = True

    def batches(self, size: int) -> Iterator[tuple[int, int]]:
        for start in range(0, self.rows, size):
            yield start, min(start + size, self.rows)

    def prepare(self, start: int, stop: int) -> None:
        """Canonical values, storage values and content hash of lines [start, stop), into
        `prepared_next`. It needs nothing from the store, so `import_file` runs it for the
        next batch, on its own cursor, while this batch is written."""
        cursor = self.duck.cursor()
        try:
            self._learn_offsets(cursor, start, stop)
            cursor.execute(self.prepare_sql(), [start, stop])
        finally:
            cursor.close()

    def take_prepared(self) -> None:
        """The batch prepared last becomes the one `store_batch` works on."""
        self.duck.execute("DROP TABLE IF EXISTS prepared")
        self.duck.execute("ALTER TABLE prepared_next RENAME TO prepared")

    def _learn_offsets(self, cursor: duckdb.DuckDBPyConnection, start: int, stop: int) -> None:
        """The business time zone's offset for every local hour that naive instants name."""
        column = self.instant_field
        hours = cursor.execute(
            f"SELECT DISTINCT substr({column}, 1, 13) FROM source WHERE idx >= ? AND idx < ? "
            f"AND regexp_matches({column}, ?) "
            f"AND NOT regexp_matches({column}, '(Z|[+-]\\d\\d:\\d\\d)$')",
            [start, stop, _INSTANT],
        ).fetchall()
        new = [h for (h,) in hours if h not in self._offsets_known]
        rows = []
        for hour in new:
            self._offsets_known.add(hour)
            rows.append((hour, _hour_offset(hour, self.tz)))
        if rows:
            table = pa.table(
                {"hour": [h for h, _ in rows], "minutes": [m for _, m in rows]},
                schema=pa.schema([("hour", pa.string()), ("minutes", pa.int32())]),
            )
            cursor.register("new_offsets", table)
            cursor.execute("INSERT INTO local_offsets SELECT * FROM new_offsets")
            cursor.unregister("new_offsets")

    def source_rows(self, condition: str) -> list[SourceRow]:
        """The lines of the prepared batch matching `condition`, as the slow lane reads them."""
        names = ", ".join(f's."{_ident(c)}"' for c in self.file_columns)
        odd = "o.line" if self.odd_quotes else "NULL"
        join = "LEFT JOIN odd_lines o USING (idx)" if self.odd_quotes else ""
        found = self.duck.execute(
            f"SELECT s.idx, {odd}, {names} FROM source s JOIN prepared p USING (idx) {join} "
            f"WHERE {condition} ORDER BY s.idx"
        ).fetchall()
        rows = []
        for idx, line, *values in found:
            number = int(idx) + self.first_line
            if line is not None:
                rows.append(csv_row(number, self.file_columns, next(csv.reader([line]), [])))
                continue
            cells = {
                c: ("" if v is None else v) for c, v in zip(self.file_columns, values, strict=True)
            }
            rows.append(SourceRow(number, cells))
        return rows


class OrderLane(FileLane):
    """An orders file (`ORDER_FIELDS`; naive `paid_at` read in the business time zone)."""

    fields = ORDER_FIELDS
    instant_field = "paid_at"

    def prepare_sql(self) -> str:
        return _PREPARE


def _struct(names: Sequence[str]) -> str:
    return "{" + ", ".join(f"'{_quote(n)}': 'VARCHAR'" for n in names) + "}"


def _quote(name: str) -> str:
    return name.replace("'", "''")


def _non_empty(name: str) -> str:
    column = f'"{_ident(name)}"'
    return f"nullif({column}, '') AS {column}"


def _ident(name: str) -> str:
    return name.replace('"', '""')


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _hour_offset(hour: str, tz: tzinfo) -> int | None:
    """Minutes east of UTC for naive instants in this local hour, as `validate_order` reads
    them (`replace(tzinfo=tz)`, fold 0), or None when the hour has no single such offset."""
    try:
        start = datetime.fromisoformat(hour.replace("T", " ") + ":00:00")
    except ValueError:
        return None
    if start.year < 1900:
        return None
    offsets = {
        (start + timedelta(seconds=s)).replace(tzinfo=tz).utcoffset() for s in (0, 1799, 3599)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    if offset is None or offset.total_seconds() % 60:
        return None
    return int(offset.total_seconds() // 60)


@dataclass(frozen=True)
class InstantSQL:
    """SQL reading an ISO instant column exactly as `validation.parse_instant` reads it, in
    three CTEs: `zone` in the first, `parts` (+ `join`) in the second, the rest after."""

    zone: str
    parts: str
    join: str
    canonical: str  # the text is an instant this SQL reproduces
    text: str  # str() of the aware datetime Python builds (what the content hash reads)
    utc: str  # the stored UTC text


def instant_sql(column: str) -> InstantSQL:
    c = column
    return InstantSQL(
        zone=rf"regexp_extract({c}, '(Z|[+-]\d\d:\d\d)$') AS {c}_zone",
        parts=rf"""try_strptime(replace({c}[1:19], 'T', ' '), '%Y-%m-%d %H:%M:%S') AS {c}_second,
        CASE WHEN length({c}) > 19 AND {c}[20] = '.'
             THEN TRY_CAST(rpad(regexp_extract({c}, '\.(\d+)', 1), 6, '0') AS INTEGER)
             ELSE 0 END AS {c}_micros,
        CASE WHEN {c}_zone = 'Z' THEN 0
             WHEN {c}_zone <> '' THEN (CASE WHEN {c}_zone[1] = '-' THEN -1 ELSE 1 END)
                  * (TRY_CAST({c}_zone[2:3] AS INTEGER) * 60 + TRY_CAST({c}_zone[5:6] AS INTEGER))
             ELSE {c}_hours.minutes END AS {c}_offset""",
        join=f"LEFT JOIN local_offsets {c}_hours ON {c}_zone = '' AND {c}_hours.hour = r.{c}[1:13]",
        canonical=(
            f"regexp_matches({c}, '{_INSTANT}') AND {c}_second IS NOT NULL "
            f"AND year({c}_second) BETWEEN 1900 AND 9998 AND {c}_offset IS NOT NULL"
        ),
        text=f"""(strftime({c}_second, '%Y-%m-%d %H:%M:%S')
            || CASE WHEN {c}_micros <> 0 THEN '.' || lpad({c}_micros::VARCHAR, 6, '0') ELSE '' END
            || CASE WHEN {c}_offset < 0 THEN '-' ELSE '+' END
            || lpad((abs({c}_offset) // 60)::VARCHAR, 2, '0') || ':'
            || lpad((abs({c}_offset) % 60)::VARCHAR, 2, '0'))""",
        utc=(
            f"strftime({c}_second + to_microseconds({c}_micros) - to_minutes({c}_offset), "
            f"'%Y-%m-%d %H:%M:%S.%f')"
        ),
    )


# A phone with separators and a country prefix removed (`phone_digits`), before the mobile check.
_PHONE_BARE = r"regexp_replace(coalesce(phone, ''), '[ ()\-]', '', 'g') AS phone_bare"
PHONE_DIGITS = r"""CASE
            WHEN starts_with(phone_bare, '+86') AND length(phone_bare) = 14 THEN phone_bare[4:]
            WHEN starts_with(phone_bare, '0086') AND length(phone_bare) = 15 THEN phone_bare[5:]
            WHEN starts_with(phone_bare, '86') AND length(phone_bare) = 13 THEN phone_bare[3:]
            ELSE phone_bare
        END AS phone_digits"""


def loose(column: str) -> str:
    """What a value could normalise to on the row path (Python's strip()), in SQL: two rows
    whose values could meet there have equal loose values."""
    return f"nullif(regexp_replace({column}, '^{_SPACE}+|{_SPACE}+$', '', 'g'), '')"


# A phone's loose value: the last 11 of its digits (what `normalize_phone` keeps, if valid).
LOOSE_PHONE = r"right(regexp_replace(phone, '[^\pN]', '', 'g'), 11)"


def components(duck: duckdb.DuckDBPyConnection, rows: str = "prepared") -> None:
    """`labels`: every row of `rows` (an `idx` column) with the lowest index of its component,
    rows being joined by any (type, value) of `loose_keys` they share; min-label propagation."""
    duck.execute(f"CREATE OR REPLACE TEMP TABLE labels AS SELECT idx, idx AS lab FROM {rows}")
    while True:
        duck.execute(_PROPAGATE)
        changed = _scalar(
            duck,
            "SELECT count(*) FROM next_labels n JOIN labels l USING (idx) WHERE n.lab <> l.lab",
        )
        duck.execute("DROP TABLE labels; ALTER TABLE next_labels RENAME TO labels")
        if changed == 0:
            return


def loose_keys_sql(kinds: Sequence[str]) -> str:
    """The batch's (idx, type, loose value) rows for these kinds: the edges of `components`."""
    return " UNION ALL ".join(
        f"SELECT idx, '{kind}' AS type, loose_{kind} AS value FROM prepared "
        f"WHERE loose_{kind} IS NOT NULL AND loose_{kind} <> ''"
        for kind in kinds
    )


def polluted_components_sql(keys: str, limit: int) -> str:
    """Components (`labels`) in which a value of `keys` (idx, type, value) is seen with more
    member_nos than `limit`: the pollution guard, not the lane, decides who joins there."""
    return f"""SELECT DISTINCT c.lab FROM {keys} k JOIN labels c USING (idx)
    JOIN prepared p USING (idx) WHERE k.type <> 'member_no' AND p.member_no IS NOT NULL
    GROUP BY c.lab, k.type, k.value HAVING count(DISTINCT p.member_no) > {int(limit)}"""


_PROPAGATE = """
CREATE OR REPLACE TEMP TABLE next_labels AS
WITH hubs AS (
    SELECT k.type, k.value, min(l.lab) AS lab FROM loose_keys k JOIN labels l USING (idx)
    GROUP BY k.type, k.value
), reached AS (
    SELECT k.idx, min(h.lab) AS lab FROM loose_keys k JOIN hubs h USING (type, value)
    GROUP BY k.idx
)
SELECT l.idx, least(l.lab, coalesce(r.lab, l.lab)) AS lab
FROM labels l LEFT JOIN reached r USING (idx)
"""
# The mobile number a phone normalises to (or NULL), and whether it was a phone at all.
PHONE_CHECKS = r"""CASE WHEN regexp_matches(phone_digits, '^1[3-9]\d{9}$') THEN phone_digits END
            AS phone_number,
        trim(coalesce(phone, '')) <> ''
            AND NOT regexp_matches(phone_digits, '^1[3-9]\d{9}$') AS phone_warning"""
_PAID_AT = instant_sql("paid_at")
# Canonical values of lines [?, ?): `plain` says the SQL below reproduces validate_order.
_PREPARE = rf"""
CREATE OR REPLACE TABLE prepared_next AS
WITH raw AS (
    SELECT s.*, {_PHONE_BARE}, {_PAID_AT.zone}
    FROM source s WHERE idx >= ? AND idx < ?
), normal AS (
    SELECT r.*, {PHONE_DIGITS},
        CASE WHEN line_no IS NULL THEN 1 ELSE TRY_CAST(line_no AS BIGINT) END AS line_number,
        {_PAID_AT.parts}
    FROM raw r {_PAID_AT.join}
), checked AS (
    SELECT n.*,
        {PHONE_CHECKS},
        order_id IS NOT NULL
        AND NOT regexp_matches(
            concat_ws(chr(1), {", ".join(_TEXT_FIELDS)}), '{_EDGE_SPACE}'
        )
        AND (line_no IS NULL OR regexp_matches(line_no, '^\d{{1,15}}$')) AND line_number >= 1
        AND regexp_matches(coalesce(phone, ''), '{_PHONE_CHARS}')
        AND paid_at IS NOT NULL AND {_PAID_AT.canonical}
        AND NOT odd_quotes
        AND amount IS NOT NULL AND regexp_matches(amount, '{_AMOUNT}')
        AND coalesce(status, 'paid') IN ('paid', 'refunded')
        AS canonical
    FROM normal n
), valued AS (
    SELECT c.*,
        canonical AND (member_no IS NOT NULL OR phone_number IS NOT NULL OR unionid IS NOT NULL)
            AS plain,
        order_id || ':' || line_number AS line_key,
        {_PAID_AT.text} AS paid_at_text,
        coalesce(status, 'paid') AS status_value
    FROM checked c
)
SELECT idx, plain, order_id, line_number AS line_no, line_key, member_no,
    phone_number AS phone, unionid, store_code, channel,
    {_PAID_AT.utc} AS paid_at_utc,
    TRY_CAST(amount AS DOUBLE) AS amount_value, status_value AS status, category, sku,
    phone_warning::INTEGER AS warnings,
    md5(concat_ws(chr(31),
        'amount' || chr(30) || amount,
        'category' || chr(30) || coalesce(category, 'None'),
        'channel' || chr(30) || coalesce(channel, 'None'),
        'line_no' || chr(30) || line_number,
        'member_no' || chr(30) || coalesce(member_no, 'None'),
        'order_id' || chr(30) || order_id,
        'paid_at' || chr(30) || paid_at_text,
        'phone' || chr(30) || coalesce(phone_number, 'None'),
        'sku' || chr(30) || coalesce(sku, 'None'),
        'status' || chr(30) || status_value,
        'store_code' || chr(30) || coalesce(store_code, 'None'),
        'unionid' || chr(30) || coalesce(unionid, 'None')
    )) AS row_hash,
    {loose("order_id")} AS loose_order_id, {loose("member_no")} AS loose_member_no,
    {LOOSE_PHONE} AS loose_phone, {loose("unionid")} AS loose_unionid
FROM valued
"""


def store_batch(
    session: Session,
    lane: OrderLane,
    start: int,
    stop: int,
    *,
    now: datetime,
    max_member_nos: int = 20,
) -> ColumnarBatch:
    """Store the settled orders of lines [start, stop), prepared and taken before (see
    `OrderLane.prepare`); return the rest for the slow lane.

    The caller owns the transaction and runs `writer.write_batch` on `slow` right after, in
    the same transaction (the slow lines' orders never overlap the stored ones)."""
    duck = lane.duck
    connection = session.connection()
    duck.execute(_LINE_KEYS)
    _fetch_into(
        duck,
        "known",
        connection,
        probes="SELECT DISTINCT type, value FROM line_keys",
        probe_columns=("type", "value"),
        store_sql=_KNOWN,
        found={"id": "BIGINT", "member_id": "BIGINT", "polluted": "BOOLEAN"},
    )
    _fetch_into(
        duck,
        "stored_lines",
        connection,
        probes="SELECT DISTINCT order_id FROM prepared WHERE plain",
        probe_columns=("order_id",),
        store_sql=_STORED_LINES,
        found={"line_no": "BIGINT", "row_hash": "VARCHAR", "member_id": "BIGINT"},
    )
    duck.execute(_LINE_IDS)
    _fetch_into(
        duck,
        "pairs",
        connection,
        probes=_PAIR_PROBES,
        probe_columns=("identity_id", "member_no_identity_id"),
        store_sql=_PAIRS,
    )
    duck.execute(_DECIDE)
    result = BatchResult()
    result.duplicates = _scalar(duck, "SELECT count(*) FROM fast WHERE stored_hash = row_hash")
    conflicts = "p.idx IN (SELECT idx FROM fast WHERE stored_hash <> row_hash)"
    keys = dict(duck.execute(f"SELECT idx, line_key FROM prepared p WHERE {conflicts}").fetchall())
    for line in lane.source_rows(conflicts):
        key = keys[line.line - lane.first_line]
        reason = f"order line {key} was already imported with different values"
        result.rejected.append(Rejection(line.line, line.row, reason))
    lines = duck.execute(_NEW_LINES).fetchall()
    _insert(connection, _line_insert(lane.now_text), lines)
    _insert(connection, PAIR_INSERT, duck.execute(_NEW_PAIRS).fetchall())
    result.accepted = len(lines)
    result.warnings = _scalar(
        duck, "SELECT coalesce(sum(warnings), 0) FROM fast WHERE stored_hash IS NULL"
    )
    _store_new_people(connection, duck, lane.now_text, max_member_nos, result)
    slow = lane.source_rows(
        "p.idx NOT IN (SELECT idx FROM fast) AND p.idx NOT IN (SELECT idx FROM fresh)"
    )
    return ColumnarBatch(rows=stop - start, result=result, slow=slow)


def _store_new_people(
    connection: sa.Connection,
    duck: duckdb.DuckDBPyConnection,
    now: str,
    max_member_nos: int,
    result: BatchResult,
) -> None:
    """Orders of people the store has never seen (no member row: a guest at the till) become
    new members here rather than on the row path: each *fresh* component of lines — lines
    joined by an order or a value in any spelling, all plain, unrepeated, unstored, none of
    their values known, none past the pollution limit — is one new member, seeded as
    `oneid._earliest_seed` seeds it (the line paid first, then the first line)."""
    # The settled lines stay out of the graph: every value they share is known, so a line next
    # to one of them could not be fresh anyway, nor anything connected to that line.
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE unsettled AS SELECT idx FROM prepared "
        "WHERE idx NOT IN (SELECT idx FROM fast)"
    )
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE loose_keys AS SELECT * FROM ({_LOOSE_KEYS}) "
        "WHERE idx IN (SELECT idx FROM unsettled)"
    )
    components(duck, "unsettled")
    duck.execute(_FRESH.format(polluted=polluted_components_sql("line_keys", max_member_nos)))
    seeds = duck.execute(_SEEDS).fetchall()
    if not seeds:
        return
    first_member = insert_new_members(connection, seeds, now=now)
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE fresh_members AS SELECT component, ? - 1 + dense_rank() "
        "OVER (ORDER BY component) AS member_id FROM (SELECT DISTINCT component FROM fresh)",
        [first_member],
    )
    insert_new_identities(connection, duck, _FRESH_IDENTITIES, "fresh_ids", now=now)
    lines = duck.execute(_FRESH_LINES).fetchall()
    _insert(connection, _line_insert(now), lines)
    _insert(connection, PAIR_INSERT, duck.execute(_FRESH_PAIRS).fetchall())
    result.accepted += len(lines)
    result.members_created += len(seeds)
    result.warnings += _scalar(
        duck, "SELECT coalesce(sum(p.warnings), 0) FROM fresh JOIN prepared p USING (idx)"
    )


def insert_new_members(connection: sa.Connection, seeds: list[tuple[Any, ...]], *, now: str) -> int:
    """New members (name, gender, birthday, registered_at, store_code, channel, in storage
    form), created and updated `now`; the first id (the rest follow in row order)."""
    columns = ("name", "gender", "birthday", "registered_at", "store_code", "channel")
    return insert_tuples_returning_ids(
        connection, table_of(Member), columns, seeds,
        constants={"created_at": now, "updated_at": now},
    )[0]  # fmt: skip


def insert_new_identities(
    connection: sa.Connection,
    duck: duckdb.DuckDBPyConnection,
    values: str,
    target: str,
    *,
    now: str,
) -> None:
    """Store the new clean identity values `values` selects in DuckDB (type, value, member_id;
    one member per value), first seen `now`, and name their ids in DuckDB as `target` (type,
    value, identity_id): the store numbers them in the order they are inserted."""
    rows = duck.execute(
        f"SELECT DISTINCT type, value, member_id FROM ({values}) ORDER BY type, value"
    ).fetchall()
    first = insert_tuples_returning_ids(
        connection, table_of(Identity), ("type", "value", "member_id"), rows,
        constants={"polluted": 0, "first_seen_at": now},
    )[0]  # fmt: skip
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT type, value, ? - 1 + row_number() "
        f"OVER (ORDER BY type, value) AS identity_id FROM (SELECT DISTINCT type, value "
        f"FROM ({values}))",
        [first],
    )


def _line_insert(now: str) -> str:
    return insert_sql(table_of(OrderLine), _STORE_COLUMNS, constants={"imported_at": now})


def _scalar(duck: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = duck.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _insert(connection: sa.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:  # an empty executemany is an error in the driver
        connection.exec_driver_sql(sql, rows)


def _fetch_into(
    duck: duckdb.DuckDBPyConnection,
    target: str,
    connection: sa.Connection,
    *,
    probes: str,
    probe_columns: tuple[str, ...],
    store_sql: str,
    found: Mapping[str, str] | None = None,
) -> None:
    """Look the batch's probe rows up in the store and bring the matches into DuckDB as
    `target` (the probe columns, then `found`), one statement each way.

    DuckDB gathers the rows `probes` selects (distinct; their columns of one type) into one
    list, sorted so that the store walks its index in order, and hands it over as JSON;
    `store_sql` reads it from `json_each(?) k` (`{0}`, `{1}`… stand for a probe row's columns)
    and selects `k.key AS probe` (the row's place in the list) and the `found` columns (name:
    DuckDB type), which the store answers as one JSON array of arrays. Neither side makes a
    Python object per row: filling a temp table by executemany and reading the matches back
    row by row cost ~1.7 µs a probe before the join itself (all look-ups of a 1M-member brand's
    import: 21.7 s then, ~19 s now, the order-id look-up 4.2 s then, 2.1 s now)."""
    columns = ", ".join(probe_columns)
    single = len(probe_columns) == 1
    element = columns if single else f"[{columns}]"
    listed = f"{target}_probes"
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE {listed} AS "
        f"SELECT coalesce(list({element} ORDER BY {columns}), []) AS probes FROM ({probes})"
    )
    text = _scalar_text(duck, f"SELECT to_json(probes)::VARCHAR FROM {listed}")
    fields = ["probe", *(found or {})]
    refs = (
        ["k.value"]
        if single
        else [f"json_extract(k.value, '$[{i}]')" for i in range(len(probe_columns))]
    )
    answer = connection.exec_driver_sql(
        f"SELECT json_group_array(json_array({', '.join(fields)})) "
        f"FROM ({store_sql.format(*refs)})",
        (text,),
    ).scalar_one()
    probe = "e" if single else "e[{}]"
    selected = [probe.format(i + 1) for i in range(len(probe_columns))]
    selected += [f"r[{i + 2}]::{kind}" for i, kind in enumerate((found or {}).values())]
    names = [*probe_columns, *(found or {})]
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS "
        f"WITH answer AS (SELECT unnest(from_json(?::JSON, '[[\"VARCHAR\"]]')) AS r), "
        f"numbered AS (SELECT generate_subscripts(probes, 1) - 1 AS probe, unnest(probes) AS e "
        f"FROM {listed}) SELECT "
        + ", ".join(f"{value} AS {name}" for value, name in zip(selected, names, strict=True))
        + " FROM answer JOIN numbered ON numbered.probe = r[1]::BIGINT",
        [answer],
    )


def _scalar_text(duck: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    row = duck.execute(sql).fetchone()
    return None if row is None or row[0] is None else str(row[0])


# Store look-ups for `_fetch_into`: CROSS JOIN keeps the probes outside, the index inside.
_KNOWN = """
SELECT k.key AS probe, i.id, i.member_id, i.polluted FROM json_each(?) k
CROSS JOIN identities i ON i.type = {0} AND i.value = {1} AND i.released_at IS NULL
"""
_STORED_LINES = """
SELECT k.key AS probe, o.line_no, o.row_hash, o.member_id FROM json_each(?) k
CROSS JOIN order_lines o ON o.order_id = {0}
"""
# The (value, member_no) pairs the pollution guard already counts.
_PAIRS = """
SELECT k.key AS probe FROM json_each(?) k
CROSS JOIN identity_member_nos p ON p.identity_id = {0} AND p.member_no_identity_id = {1}
"""
_LINE_KEYS = """
CREATE OR REPLACE TEMP TABLE line_keys AS
SELECT idx, 'member_no' AS type, member_no AS value FROM prepared
WHERE plain AND member_no IS NOT NULL
UNION ALL SELECT idx, 'phone', phone FROM prepared WHERE plain AND phone IS NOT NULL
UNION ALL SELECT idx, 'unionid', unionid FROM prepared WHERE plain AND unionid IS NOT NULL
"""
# Per plain line: its values' identity ids (its evidence), whether all are known, and the
# members their clean values belong to.
_LINE_IDS = """
CREATE OR REPLACE TEMP TABLE line_ids AS
SELECT k.idx,
    bool_and(i.id IS NOT NULL) AS all_known,
    bool_or(i.id IS NOT NULL) AS any_known,
    count(DISTINCT i.member_id) FILTER (WHERE NOT i.polluted) AS owners,
    min(i.member_id) FILTER (WHERE NOT i.polluted) AS member_id,
    max(i.id) FILTER (WHERE k.type = 'member_no') AS member_no_identity_id,
    max(i.id) FILTER (WHERE k.type = 'phone') AS phone_identity_id,
    max(i.id) FILTER (WHERE k.type = 'unionid') AS unionid_identity_id,
    coalesce(bool_or(k.type = 'phone' AND NOT i.polluted), false) AS clean_phone,
    coalesce(bool_or(k.type = 'unionid' AND NOT i.polluted), false) AS clean_unionid
FROM line_keys k LEFT JOIN known i USING (type, value) GROUP BY k.idx
"""
_PAIR_PROBES = """
SELECT phone_identity_id AS identity_id, member_no_identity_id FROM line_ids
WHERE phone_identity_id IS NOT NULL AND member_no_identity_id IS NOT NULL
UNION
SELECT unionid_identity_id, member_no_identity_id FROM line_ids
WHERE unionid_identity_id IS NOT NULL AND member_no_identity_id IS NOT NULL
"""
# Which orders the lane settles: every line plain and unrepeated in the batch; a stored line is
# a duplicate (or a conflict); every new line known, one owner, no new (clean value, member_no)
# pair, and the same owner as its order's other lines, stored ones included.
_DECIDE = """
CREATE OR REPLACE TEMP TABLE lines AS
WITH repeated AS (
    SELECT line_key FROM prepared GROUP BY line_key HAVING count(*) > 1
)
SELECT p.idx, p.plain, p.order_id, p.row_hash, p.warnings, o.member_id,
    o.member_no_identity_id, o.phone_identity_id, o.unionid_identity_id, s.row_hash AS stored_hash,
    coalesce(
        o.all_known AND o.owners = 1
        AND (p.member_no IS NULL OR (
            (NOT o.clean_phone OR ph.identity_id IS NOT NULL)
            AND (NOT o.clean_unionid OR un.identity_id IS NOT NULL)
        )), false
    ) AS settled,
    p.line_key IN (SELECT line_key FROM repeated) AS repeated
FROM prepared p
LEFT JOIN line_ids o USING (idx)
LEFT JOIN pairs ph
    ON ph.identity_id = o.phone_identity_id AND ph.member_no_identity_id = o.member_no_identity_id
LEFT JOIN pairs un
    ON un.identity_id = o.unionid_identity_id
    AND un.member_no_identity_id = o.member_no_identity_id
LEFT JOIN stored_lines s ON s.order_id = p.order_id AND s.line_no = p.line_no;

CREATE OR REPLACE TEMP TABLE fast AS
WITH stored_owner AS (
    SELECT order_id, min(member_id) AS member_id, count(DISTINCT member_id) AS owners
    FROM stored_lines GROUP BY order_id
), orders AS (
    SELECT l.order_id FROM lines l LEFT JOIN stored_owner so USING (order_id)
    GROUP BY l.order_id
    HAVING bool_and(l.plain AND NOT l.repeated AND (l.stored_hash IS NOT NULL OR l.settled))
        AND count(DISTINCT l.member_id) FILTER (WHERE l.stored_hash IS NULL) <= 1
        AND coalesce(max(so.owners), 0) <= 1
        AND (max(so.member_id) IS NULL
             OR max(l.member_id) FILTER (WHERE l.stored_hash IS NULL) IS NULL
             OR max(so.member_id) = max(l.member_id) FILTER (WHERE l.stored_hash IS NULL))
)
SELECT l.* FROM lines l JOIN orders USING (order_id);
"""
PAIR_INSERT = insert_sql(
    table_of(IdentityMemberNo), ("identity_id", "member_no_identity_id"), skip_conflicts=True
)
_NEW_LINES = """
SELECT p.order_id, p.line_no, f.member_id, p.member_no, p.phone, p.unionid, p.store_code,
    p.channel, p.paid_at_utc, p.amount_value, p.status, p.category, p.sku, p.row_hash,
    f.member_no_identity_id, f.phone_identity_id, f.unionid_identity_id
FROM fast f JOIN prepared p USING (idx) WHERE f.stored_hash IS NULL ORDER BY idx
"""
# Pairs the stored lines bring that the guard does not count yet (only polluted values can).
_NEW_PAIRS = """
SELECT DISTINCT n.identity_id, n.member_no_identity_id FROM (
    SELECT phone_identity_id AS identity_id, member_no_identity_id FROM fast
    WHERE stored_hash IS NULL AND phone_identity_id IS NOT NULL
    UNION ALL
    SELECT unionid_identity_id, member_no_identity_id FROM fast
    WHERE stored_hash IS NULL AND unionid_identity_id IS NOT NULL
) n
WHERE n.member_no_identity_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM pairs p
    WHERE p.identity_id = n.identity_id AND p.member_no_identity_id = n.member_no_identity_id)
ORDER BY 1, 2
"""
_LOOSE_KEYS = loose_keys_sql(("order_id", "member_no", "phone", "unionid"))
# Lines of components the lane can create a new member for (see `_store_new_people`).
_FRESH = """
CREATE OR REPLACE TEMP TABLE fresh AS
WITH line_ok AS (
    SELECT l.idx, c.lab,
        coalesce(l.plain AND NOT l.repeated AND l.stored_hash IS NULL
            AND l.order_id NOT IN (SELECT order_id FROM stored_lines)
            AND NOT o.any_known AND l.idx NOT IN (SELECT idx FROM fast), false) AS ok
    FROM lines l JOIN labels c USING (idx) LEFT JOIN line_ids o USING (idx)
), polluted AS (
    {polluted}
), fresh_components AS (
    SELECT lab FROM line_ok GROUP BY lab
    HAVING bool_and(ok) AND lab NOT IN (SELECT lab FROM polluted)
)
SELECT idx, lab AS component FROM line_ok WHERE lab IN (SELECT lab FROM fresh_components)
"""
_SEEDS = """
SELECT NULL, 'U', NULL, paid_at_utc, store_code, channel FROM (
    SELECT f.component, p.paid_at_utc, p.store_code, p.channel,
        row_number() OVER (PARTITION BY f.component ORDER BY p.paid_at_utc, p.idx) AS nth
    FROM fresh f JOIN prepared p USING (idx))
WHERE nth = 1 ORDER BY component
"""
_FRESH_IDENTITIES = """
SELECT k.type, k.value, m.member_id
FROM line_keys k JOIN fresh f USING (idx) JOIN fresh_members m USING (component)
"""
_FRESH_LINES = """
WITH evidence AS (
    SELECT k.idx,
        max(i.identity_id) FILTER (WHERE k.type = 'member_no') AS member_no_identity_id,
        max(i.identity_id) FILTER (WHERE k.type = 'phone') AS phone_identity_id,
        max(i.identity_id) FILTER (WHERE k.type = 'unionid') AS unionid_identity_id
    FROM line_keys k JOIN fresh USING (idx) JOIN fresh_ids i USING (type, value)
    GROUP BY k.idx
)
SELECT p.order_id, p.line_no, m.member_id, p.member_no, p.phone, p.unionid, p.store_code,
    p.channel, p.paid_at_utc, p.amount_value, p.status, p.category, p.sku, p.row_hash,
    e.member_no_identity_id, e.phone_identity_id, e.unionid_identity_id
FROM fresh f JOIN prepared p USING (idx) JOIN fresh_members m USING (component)
JOIN evidence e USING (idx) ORDER BY idx
"""
_FRESH_PAIRS = """
SELECT DISTINCT v.identity_id, n.identity_id FROM line_keys k
JOIN fresh USING (idx) JOIN fresh_ids v USING (type, value)
JOIN line_keys kn ON kn.idx = k.idx AND kn.type = 'member_no'
JOIN fresh_ids n ON n.type = 'member_no' AND n.value = kn.value
WHERE k.type <> 'member_no' ORDER BY 1, 2
"""
