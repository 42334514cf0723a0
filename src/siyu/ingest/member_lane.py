"""The columnar lane of a member import: new people, validated, hashed and stored set-based
in DuckDB and one executemany per table, instead of one Python object per row.

As for orders (`ingest.columnar`, ADR 0006), the row-by-row path stays the definition and this
lane only takes the rows whose outcome it can prove:

- A row is *plain* when every field is already canonical (no surrounding whitespace, a phone of
  digits and separators, a known gender, a `YYYY-MM-DD` birthday, an ISO instant with
  seconds): its values and content hash are computed in SQL and equal what `validate_member`
  gives. An invalid phone is dropped with a warning, as there.
- Rows of a batch are grouped into *components*: rows sharing a value, in any spelling that
  could normalise to it (a phone's last 11 digits; a value with whitespace around it), are one
  component. A component is *fresh* when OneID has nothing to decide but "these rows are one
  new person": every row is plain, no record key is stored or repeated in the batch, no value
  exists (current) in the store, and no value is seen with more member_nos than the pollution
  limit. Each fresh component is one new member, seeded as the row path seeds it (the row
  registered first, else the first row); the lane writes the member, its member records, its
  identity values, their observations and their (value, member_no) pairs.
- A plain row whose record key is stored with the same content hash is a duplicate.
- Every other row goes to the row path, in the same transaction, right after.

Decided here: members the lane creates get their ids before the members the row path creates
for the rest of the batch, and the lane's identity values are numbered in (type, value) order
among themselves; which ids new rows get within one batch is the only difference between the
lanes (ids are surrogates: the survivor of a later merge is still the member created first,
in batch order per lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity.models import (
    IdentityObservation,
    MemberRecord,
)
from siyu.identity.oneid import table_of
from siyu.ingest.bulk import insert_sql
from siyu.ingest.columnar import (
    _EDGE_SPACE,
    _PHONE_BARE,
    _PHONE_CHARS,
    LOOSE_PHONE,
    PAIR_INSERT,
    PHONE_CHECKS,
    PHONE_DIGITS,
    ColumnarBatch,
    FileLane,
    _fetch_into,
    _insert,
    _scalar,
    components,
    insert_new_identities,
    insert_new_members,
    instant_sql,
    loose,
    loose_keys_sql,
    polluted_components_sql,
)
from siyu.ingest.validation import MEMBER_FIELDS, MEMBER_IDENTITIES
from siyu.ingest.writer import BatchResult

_TEXT_FIELDS = (
    "member_no", "unionid", "openid", "external_userid", "name", "store_code", "channel",
    "gender", "birthday", "registered_at",
)  # fmt: skip
_OTHER_IDENTITIES = tuple(k for k in MEMBER_IDENTITIES if k != "phone")


class MemberLane(FileLane):
    """A members file loaded once into a private DuckDB, handed out batch by batch."""

    fields = MEMBER_FIELDS
    instant_field = "registered_at"

    def prepare_sql(self) -> str:
        return _PREPARE


_REGISTERED = instant_sql("registered_at")
_KEY_PARTS = ", ".join(
    ["member_no", "'phone:' || phone_number"] + [f"'{k}:' || {k}" for k in _OTHER_IDENTITIES[1:]]
)
# Canonical values of rows [?, ?): `plain` says the SQL below reproduces validate_member.
_PREPARE = rf"""
CREATE OR REPLACE TABLE prepared_next AS
WITH raw AS (
    SELECT s.*, {_PHONE_BARE}, {_REGISTERED.zone} FROM source s WHERE idx >= ? AND idx < ?
), normal AS (
    SELECT r.*, {PHONE_DIGITS}, {_REGISTERED.parts}
    FROM raw r {_REGISTERED.join}
), checked AS (
    SELECT n.*,
        {PHONE_CHECKS},
        NOT regexp_matches(
            concat_ws(chr(1), {", ".join(_TEXT_FIELDS)}), '{_EDGE_SPACE}'
        )
        AND regexp_matches(coalesce(phone, ''), '{_PHONE_CHARS}')
        AND (registered_at IS NULL OR ({_REGISTERED.canonical}))
        AND (birthday IS NULL OR (
            regexp_matches(birthday, '^\d{{4}}-\d{{2}}-\d{{2}}$') AND birthday[1:4] <> '0000'
            AND try_strptime(birthday, '%Y-%m-%d') IS NOT NULL))
        AND coalesce(gender, 'U') IN ('F', 'M', 'U')
        AND NOT odd_quotes
        AS canonical
    FROM normal n
), valued AS (
    SELECT c.*,
        canonical AND coalesce(member_no, phone_number, {", ".join(_OTHER_IDENTITIES[1:])})
            IS NOT NULL AS plain,
        coalesce({_KEY_PARTS}) AS record_key,
        {_REGISTERED.text} AS registered_at_text,
        coalesce(gender, 'U') AS gender_value
    FROM checked c
)
SELECT idx, plain, record_key, member_no, phone_number AS phone, unionid, openid,
    external_userid, name, store_code, channel, gender_value AS gender, birthday,
    {_REGISTERED.utc} AS registered_at_utc, phone_warning::INTEGER AS warnings,
    md5(concat_ws(chr(31),
        'birthday' || chr(30) || coalesce(birthday, 'None'),
        'channel' || chr(30) || coalesce(channel, 'None'),
        'external_userid' || chr(30) || coalesce(external_userid, 'None'),
        'gender' || chr(30) || gender_value,
        'member_no' || chr(30) || coalesce(member_no, 'None'),
        'name' || chr(30) || coalesce(name, 'None'),
        'openid' || chr(30) || coalesce(openid, 'None'),
        'phone' || chr(30) || coalesce(phone_number, 'None'),
        'registered_at' || chr(30) || coalesce(registered_at_text, 'None'),
        'store_code' || chr(30) || coalesce(store_code, 'None'),
        'unionid' || chr(30) || coalesce(unionid, 'None')
    )) AS row_hash,
    {loose("member_no")} AS loose_member_no,
    {LOOSE_PHONE} AS loose_phone,
    {", ".join(f"{loose(k)} AS loose_{k}" for k in _OTHER_IDENTITIES[1:])}
FROM valued
"""


@dataclass
class _Written:
    rows: int = 0
    members: int = 0
    warnings: int = 0


def store_batch(
    session: Session,
    lane: MemberLane,
    start: int,
    stop: int,
    *,
    now: datetime,
    max_member_nos: int,
) -> ColumnarBatch:
    """Store the fresh members of rows [start, stop), prepared and taken before; count the
    duplicates; return the rest for the row path (same transaction, right after)."""
    duck = lane.duck
    connection = session.connection()
    duck.execute(_ROW_KEYS)
    _fetch_into(
        duck,
        "known",
        connection,
        probes="SELECT DISTINCT type, value FROM row_keys",
        probe_columns=("type", "value"),
        store_sql=_KNOWN,
    )
    _fetch_into(
        duck,
        "stored_records",
        connection,
        probes="SELECT DISTINCT record_key FROM prepared WHERE plain",
        probe_columns=("record_key",),
        store_sql=_STORED_RECORDS,
        found={"row_hash": "VARCHAR"},
    )
    duck.execute(f"CREATE OR REPLACE TEMP TABLE loose_keys AS {_LOOSE_KEYS}")
    components(duck)
    duck.execute(_DECIDE.format(polluted=polluted_components_sql("row_keys", max_member_nos)))
    result = BatchResult()
    result.duplicates = _scalar(duck, "SELECT count(*) FROM decided WHERE duplicate")
    written = _write_fresh(connection, duck, lane.now_text)
    result.accepted = written.rows
    result.members_created = written.members
    result.warnings = written.warnings
    slow = lane.source_rows("p.idx IN (SELECT idx FROM decided WHERE NOT fresh AND NOT duplicate)")
    return ColumnarBatch(rows=stop - start, result=result, slow=slow)


def _write_fresh(connection: sa.Connection, duck: duckdb.DuckDBPyConnection, now: str) -> _Written:
    # One member per fresh component, seeded as `oneid._earliest_seed` seeds it: the row
    # registered first, else the first row.
    fresh = duck.execute(
        """SELECT name, gender, birthday, registered_at_utc, store_code, channel FROM (
            SELECT d.*, row_number() OVER (PARTITION BY component
                ORDER BY registered_at_utc NULLS LAST, idx) AS nth
            FROM decided d WHERE fresh)
        WHERE nth = 1 ORDER BY component"""
    ).fetchall()
    if not fresh:
        return _Written()
    first_member = insert_new_members(connection, fresh, now=now)
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE born AS SELECT d.*, ? - 1 + dense_rank() OVER "
        "(ORDER BY component) AS member_id FROM decided d WHERE fresh",
        [first_member],
    )
    records = duck.execute(_RECORDS).fetchall()
    record_insert = insert_sql(
        table_of(MemberRecord), _RECORD_COLUMNS, constants={"updated_at": now}
    )
    _insert(connection, record_insert, records)
    insert_new_identities(connection, duck, _NEW_IDENTITIES, "born_values", now=now)
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE born_ids AS SELECT k.idx, k.type, i.identity_id "
        "FROM row_keys k JOIN born_values i USING (type, value) "
        "WHERE k.idx IN (SELECT idx FROM born)"
    )
    observations = duck.execute(_OBSERVATIONS).fetchall()
    observation_insert = insert_sql(
        table_of(IdentityObservation),
        ("identity_id", "record_key"),
        constants={"record_kind": "member", "observed_at": now},
    )
    _insert(connection, observation_insert, observations)
    _insert(connection, PAIR_INSERT, duck.execute(_PAIRS).fetchall())
    warnings = _scalar(duck, "SELECT coalesce(sum(warnings), 0) FROM born")
    rows = _scalar(duck, "SELECT count(*) FROM born")
    return _Written(rows=rows, members=len(fresh), warnings=warnings)


_ROW_KEYS = "CREATE OR REPLACE TEMP TABLE row_keys AS " + " UNION ALL ".join(
    f"SELECT idx, '{kind}' AS type, {kind} AS value FROM prepared "
    f"WHERE plain AND {kind} IS NOT NULL"
    for kind in MEMBER_IDENTITIES
)
_KNOWN = """
SELECT k.key AS probe FROM json_each(?) k
CROSS JOIN identities i ON i.type = {0} AND i.value = {1} AND i.released_at IS NULL
"""
_STORED_RECORDS = """
SELECT k.key AS probe, r.row_hash FROM json_each(?) k
CROSS JOIN member_records r ON r.record_key = {0}
"""
_LOOSE_KEYS = loose_keys_sql(MEMBER_IDENTITIES)
# Fresh: a row of a component whose rows are all plain, with keys neither repeated in the batch
# nor stored, values none of which the store knows, and no value seen with more member_nos
# than the limit (it would be polluted: the row path decides who joins then).
_DECIDE = """
CREATE OR REPLACE TEMP TABLE decided AS
WITH repeated AS (
    SELECT record_key FROM prepared WHERE plain GROUP BY record_key HAVING count(*) > 1
), known_rows AS (
    SELECT DISTINCT k.idx FROM row_keys k JOIN known USING (type, value)
), row_ok AS (
    SELECT p.idx, l.lab,
        coalesce(p.plain AND r.record_key IS NULL AND s.record_key IS NULL
            AND p.idx NOT IN (SELECT idx FROM known_rows), false) AS ok
    FROM prepared p JOIN labels l USING (idx)
    LEFT JOIN repeated r USING (record_key)
    LEFT JOIN stored_records s USING (record_key)
), polluted AS (
    {polluted}
), components AS (
    SELECT lab, bool_and(ok) AND lab NOT IN (SELECT lab FROM polluted) AS ok
    FROM row_ok GROUP BY lab
)
SELECT p.*, o.lab AS component, c.ok AS fresh,
    coalesce(p.plain AND r.record_key IS NULL AND s.row_hash = p.row_hash, false) AS duplicate
FROM prepared p
JOIN row_ok o USING (idx)
JOIN components c USING (lab)
LEFT JOIN repeated r USING (record_key)
LEFT JOIN stored_records s USING (record_key)
"""
_RECORD_COLUMNS = (
    "record_key", "member_id", "member_no", "phone", "unionid", "openid", "external_userid",
    "name", "gender", "birthday", "registered_at", "store_code", "channel", "row_hash",
)  # fmt: skip
_RECORDS = """
SELECT record_key, member_id, member_no, phone, unionid, openid, external_userid, name, gender,
    birthday, registered_at_utc, store_code, channel, row_hash
FROM born ORDER BY idx
"""
_NEW_IDENTITIES = "SELECT k.type, k.value, b.member_id FROM row_keys k JOIN born b USING (idx)"
_OBSERVATIONS = """
SELECT i.identity_id, b.record_key FROM born_ids i JOIN born b USING (idx)
ORDER BY i.identity_id
"""
_PAIRS = """
SELECT DISTINCT v.identity_id, n.identity_id FROM born_ids v
JOIN born_ids n ON n.idx = v.idx AND n.type = 'member_no'
WHERE v.type <> 'member_no' ORDER BY 1, 2
"""
