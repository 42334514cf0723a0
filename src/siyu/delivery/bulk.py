"""Set-based writes of many rows in the caller's transaction: one statement per batch.

The journey engine writes a batch's step runs, next timers, outbox rows and enrollment updates
through here. On PostgreSQL each call is ONE statement with ONE parameter, the rows as a JSON
array (`INSERT … SELECT … FROM json_to_recordset(:rows)`, `UPDATE … FROM
json_to_recordset(:rows)`): the SQL text is the same for every batch size, so the server
prepares it once per connection, there is a single round trip however many rows, and the
client serialises with orjson instead of escaping array elements one by one (measured:
per-column arrays through psycopg cost ~4x more client time; the stdlib `json` with a
`default` hook for datetimes ~12x more than orjson). Elsewhere (SQLite:
one local writer, no round trips) it is a plain `executemany`.

Rows are dicts of column values; a column missing from a row is written as NULL (the engine's
rows name every column they need). Enum members are written by value, JSON columns serialised.
Datetimes must be timezone-aware. SQLite's path refuses naive ones (UTCDateTime), and every
engine test runs there; orjson has no cheap way to refuse them, so PostgreSQL's path writes a
naive one as UTC (OPT_NAIVE_UTC) rather than in the server's session time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC


def insert_rows(*, db_session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (none → no statement)."""
    if not rows:
        return
    names = _names(rows)
    if not _on_postgresql(db_session):
        db_session.execute(sa.insert(table), [dict(row) for row in rows])
        return
    columns = ", ".join(names)
    sql = f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {_recordset(table, names)}"
    db_session.execute(sa.text(sql), {"rows": _json(rows)})


def update_rows(
    *, db_session: Session, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """UPDATE the row whose `key` column matches each row's `key`, setting its other values."""
    if not rows:
        return
    names = _names(rows)
    assigned = [name for name in names if name != key]
    if not _on_postgresql(db_session):
        statement = (
            sa.update(table)
            .where(table.c[key] == sa.bindparam(f"_k_{key}"))
            .values({name: sa.bindparam(f"_v_{name}") for name in assigned})
        )
        params = [
            {f"_k_{key}": row[key], **{f"_v_{name}": row.get(name) for name in assigned}}
            for row in rows
        ]
        db_session.execute(statement, params, execution_options={"synchronize_session": False})
        return
    sets = ", ".join(f"{name} = v.{name}" for name in assigned)
    sql = (
        f"UPDATE {table.name} AS t SET {sets} "
        f"FROM {_recordset(table, names)} WHERE t.{key} = v.{key}"
    )
    db_session.execute(sa.text(sql), {"rows": _json(rows)})


def _on_postgresql(db_session: Session) -> bool:
    return db_session.get_bind().dialect.name == "postgresql"


def _names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _recordset(table: sa.Table, names: list[str]) -> str:
    """`json_to_recordset(:rows) AS v(col type, …)` typed like the table's columns."""
    types = ", ".join(f"{name} {table.c[name].type.compile(dialect=_PG)}" for name in names)
    return f"json_to_recordset(CAST(:rows AS JSON)) AS v({types})"


def _json(rows: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps(rows, default=_encode, option=_ORJSON_OPTIONS).decode()


def _encode(value: Any) -> Any:
    """What orjson does not write itself: Decimals; anything else is refused."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written in bulk")
