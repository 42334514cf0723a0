"""Bulk row inserts for the import hot path, below SQLAlchemy's per-row statement machinery.

An import writes hundreds of thousands of rows per transaction. Through Core's executemany
SQLAlchemy builds a parameter dict per row and runs every bind processor through its compiled
statement (about a third of an order import's time at 100k lines). On SQLite we instead hand the
driver one positional INSERT and a list of tuples, converted with the *same* bind processors
the column types define (UTCDateTime → UTC text, Numeric → float/str, JSON → text), so the stored
values are byte-for-byte what Core would have written. Other dialects keep Core's executemany
(psycopg's pipeline already batches it).

Decided here: every row must carry the same keys (the first row's keys name the columns); a
missing key is NULL, never a column default, so callers pass complete rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa


def insert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """INSERT `rows` into `table` in one executemany; `skip_conflicts` = ON CONFLICT DO NOTHING."""
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(_core_insert(table, dialect.name, skip_conflicts), list(rows))
        return
    names = list(rows[0])
    connection.exec_driver_sql(
        insert_sql(table, names, skip_conflicts=skip_conflicts),
        _tuples(table, names, rows, dialect),
    )


def insert_returning_ids(
    connection: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """INSERT `rows` and return their new ids in row order.

    Core's `RETURNING … sort_by_parameter_order` cannot batch on SQLite and sends one
    statement per row (70k statements for 20k members). SQLite allocates an INTEGER PRIMARY
    KEY as max(id) + 1 per row and our transaction holds the only write lock from its first
    write until commit, so one executemany yields consecutive ids ending at
    last_insert_rowid(); the count over that range is checked rather than trusted."""
    if not rows:
        return []
    if connection.dialect.name != "sqlite":
        statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(row_id) for (row_id,) in connection.execute(statement, list(rows))]
    insert_rows(connection, table, rows)
    return _ids_just_inserted(connection, table, len(rows))


def insert_tuples_returning_ids(
    connection: sa.Connection,
    table: sa.Table,
    names: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    constants: Mapping[str, str | int] | None = None,
) -> list[int]:
    """`insert_returning_ids` for rows already in SQLite's storage form (the columnar lanes)."""
    if not rows:
        return []
    connection.exec_driver_sql(insert_sql(table, names, constants=constants), list(rows))
    return _ids_just_inserted(connection, table, len(rows))


def _ids_just_inserted(connection: sa.Connection, table: sa.Table, count: int) -> list[int]:
    last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    first = last - count + 1
    stored = connection.execute(
        sa.select(sa.func.count()).where(table.c.id.between(first, last))
    ).scalar_one()
    if stored != count:  # pragma: no cover - would mean another writer interleaved
        raise RuntimeError(f"{table.name}: ids {first}..{last} are not this batch's rows")
    return list(range(first, last + 1))


def _core_insert(table: sa.Table, dialect_name: str, skip_conflicts: bool) -> Any:
    if not skip_conflicts:
        return sa.insert(table)
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"skip_conflicts on {dialect_name}")  # pragma: no cover


def insert_sql(
    table: sa.Table,
    names: Sequence[str],
    *,
    skip_conflicts: bool = False,
    constants: Mapping[str, str | int] | None = None,
) -> str:
    """A positional (qmark) INSERT of `names` into `table`, for rows already in storage form.

    `constants` are columns with one value for every row (a batch's `now`), written into the
    statement: a bulk lane then neither fetches nor binds them once per row, which is a tenth
    of the cost of an order line."""
    fixed = dict(constants or {})
    columns = ", ".join(f'"{name}"' for name in (*names, *fixed))
    marks = ", ".join(["?" for _ in names] + [_literal(value) for value in fixed.values()])
    suffix = " ON CONFLICT DO NOTHING" if skip_conflicts else ""
    return f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks}){suffix}'


def _literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(int(value))
    return "'" + value.replace("'", "''") + "'"


def _tuples(
    table: sa.Table, names: list[str], rows: Sequence[dict[str, Any]], dialect: sa.Dialect
) -> list[tuple[Any, ...]]:
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(names):
        column_type = table.c[name].type
        processor = column_type._cached_bind_processor(dialect)
        if processor is not None:
            datetimes = isinstance(getattr(column_type, "impl", column_type), sa.DateTime)
            processors.append((index, _memoized(processor) if datetimes else processor))
    if not processors:
        return [tuple(row.get(name) for name in names) for row in rows]
    converted: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row.get(name) for name in names]
        for index, convert in processors:
            values[index] = convert(values[index])
        converted.append(tuple(values))
    return converted


def _memoized(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Instants repeat a lot (every row's imported_at, a basket's paid_at): format each once."""
    done: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        try:
            return done[value]
        except KeyError:
            done[value] = converted = processor(value)
            return converted

    return process
