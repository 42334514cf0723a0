"""Set-based writes of many rows in the caller's transaction: one statement per batch.

The journey engine writes a batch's step runs, next timers, outbox rows and enrollment updates
through here. On PostgreSQL each call is ONE statement whose parameters are one array per
column (`INSERT … SELECT … FROM unnest(...)`, `UPDATE … FROM unnest(...)`): the SQL text is
the same for every batch size, so the server prepares it once per connection, and there is a
single round trip however many rows. Elsewhere (SQLite: one local writer, no round trips) it is
a plain `executemany`.

Rows are dicts of column values; a column missing from a row is written as NULL (the engine's
rows name every column they need). Enum members are written by value, JSON columns serialised.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def insert_rows(*, db_session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (none → no statement)."""
    if not rows:
        return
    names = _names(rows)
    if not _on_postgresql(db_session):
        db_session.execute(sa.insert(table), [dict(row) for row in rows])
        return
    columns = ", ".join(names)
    selected = ", ".join(_cast(table, name, f"v.{name}") for name in names)
    sql = (
        f"INSERT INTO {table.name} ({columns}) SELECT {selected} "
        f"FROM {_unnest(table, names)} AS v({columns})"
    )
    db_session.execute(sa.text(sql), _arrays(table, names, rows))


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
    sets = ", ".join(f"{name} = {_cast(table, name, f'v.{name}')}" for name in assigned)
    sql = (
        f"UPDATE {table.name} AS t SET {sets} "
        f"FROM {_unnest(table, names)} AS v({', '.join(names)}) WHERE t.{key} = v.{key}"
    )
    db_session.execute(sa.text(sql), _arrays(table, names, rows))


def _on_postgresql(db_session: Session) -> bool:
    return db_session.get_bind().dialect.name == "postgresql"


def _names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _is_json(table: sa.Table, name: str) -> bool:
    return isinstance(table.c[name].type, sa.JSON)


def _array_type(table: sa.Table, name: str) -> str:
    if _is_json(table, name):
        return "text[]"  # cast to json per value in the SELECT list
    return f"{table.c[name].type.compile(dialect=_PG)}[]"


def _cast(table: sa.Table, name: str, expression: str) -> str:
    return f"CAST({expression} AS JSON)" if _is_json(table, name) else expression


def _unnest(table: sa.Table, names: list[str]) -> str:
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table, name)})" for name in names)
    return f"unnest({arrays})"


def _arrays(
    table: sa.Table, names: list[str], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    arrays: dict[str, list[Any]] = {}
    for name in names:
        is_json = _is_json(table, name)
        arrays[name] = [_value(row.get(name), is_json) for row in rows]
    return arrays


def _value(value: Any, is_json: bool) -> Any:
    if is_json:
        return None if value is None else json.dumps(value)
    if isinstance(value, enum.Enum):
        return value.value  # psycopg would dump an Enum by its name
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} refused: attach a timezone")
    return value
