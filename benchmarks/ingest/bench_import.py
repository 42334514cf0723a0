"""Import of N members + ~5N order lines (from `siyu generate`) into the embedded default
(SQLite) with `siyu import`'s batch path vs a naive row-by-row SQLAlchemy ORM insert of the
same rows, in one run (issue #2: ≥ 20× faster, ≥ 100k order lines/s, at 1M members).

    .venv/bin/python benchmarks/ingest/bench_import.py [--members 20000] [--baseline-rows N]

The baseline parses every row with the row path's validators; ours validates plain order
lines in DuckDB with the same rules (tests hold the two to identical results). Ours
(`ingest.service.import_file`) additionally resolves OneID per batch (identities,
observations, merges, pollution guard) and de-duplicates; the baseline is
what a first importer looks like: per member row `session.add(Member)`, flush,
`session.add(MemberRecord)`, flush; per order line a query for the member by member_no (a
new Member when unknown), `session.add(OrderLine)`, flush; commit every 1,000 rows. With
--baseline-rows the baseline only takes that many rows of each file (its rate is per row).
Each side runs in a forked child on its own fresh data dir; peak RSS is that child's
ru_maxrss. Wall-clock and CPU seconds are both printed: on a shared machine the CPU-second
rates are the steadier comparison. The warehouse sync after an import is not timed (it is
`siyu import`'s next step).

Orders and members take the columnar lanes (ADR 0006, `ingest.columnar`,
`ingest.member_lane`): each 200k-row batch is validated, hashed and resolved in DuckDB, new
people included; what OneID has to decide (bridges between known members, pollution, changed
rows, messy fields) goes through the row-by-row path in the same transaction. Events are
still row by row.

Measured 2026-11-24 08:44 UTC, fresh 2-core / 23 GB machine, nothing else running (load
average 1.1), `--members 1000000 --baseline-rows 20000`:

    brand: 1,000,000 members, 4,800,386 order lines (siyu generate, seed 7)
                                 rows  wall s   rows/s   CPU s rows/CPU s peak RSS MiB
    siyu import members           999,715   171.8    5,819   169.9      5,883        1,930
    siyu import orders           4,799,473   119.9   40,016   139.7     34,355        1,930
    naive ORM row by row members   19,991     7.5    2,678     7.4      2,686          401
    naive ORM row by row orders    19,992     7.7    2,587     7.7      2,590          401
    ratio members: 2.2× faster wall-clock, 2.2× per CPU second (target ≥ 20×)
    ratio orders: 15.5× faster wall-clock, 13.3× per CPU second (target ≥ 20×)

With DuckDB's memory capped at 1 GB (commit after this run) orders took 113.6-114.6 s
(41.9-42.3k lines/s), peak RSS 1.78 GB. The row-by-row path alone did ~8k lines per CPU
second (5,041 lines/s at 200k members on 2026-11-23), so the lane is ~5× faster at 1M.

Measured again 2026-11-24 11:36 UTC, same machine, nothing else running, with the first
warehouse sync after each import timed too (not in the ratio; it is `siyu import`'s next step):

    siyu import members           999,715   149.3    6,695   147.7      6,770        1,727
    siyu import orders           4,799,473   120.3   39,906   142.3     33,739        1,727
    naive ORM row by row members   19,991     7.6    2,617     7.6      2,626          359
    naive ORM row by row orders    19,992     7.9    2,523     7.9      2,526          359
    siyu sync after members         957,684     5.1  187,417     5.7    167,263        1,727
    siyu sync after orders       4,799,473    42.9  111,964    48.0    100,000        1,727
    ratio members: 2.6×; orders: 15.8×; members + orders: 8.5× (270 s vs 2,284 s)

The sync now copies rows out of the store as CSV (`siyu.store_copy`) and rewrites only the
members that differ; `siyu import orders` of these 4.8M lines into the 1M-member store took
264 s end to end (import, first sync, rule tags, profiles) before that work and 185 s after.

Where an order batch's time goes at 1M (200k lines, 6 batches profiled): SQLite inserts ~2.2 s
(order lines 1.05, their ~370k identity observations 1.15), DuckDB work and moving rows into
Python tuples ~2.5 s, commit 0.5 s, the row path for the ~3.5% slow lines (mostly orders of
people with no member row, who become members) 0.45 s. THE TARGETS ARE NOT MET: ≥ 100k
lines/s would leave 10 µs per line for everything, and SQLite alone needs ~5.5 µs to insert
an order line with its indexes and ~6 µs for its two observations (measured with pre-built
tuples and no siyu code; DuckDB's SQLite writer is no faster). ADR 0006 describes the change
that would get there (order-line evidence kept in the line's own columns, not in observation
rows). Members need a lane of their own (2.2× the naive ORM today).

Measured 2026-11-24 15:05 UTC, same machine, nothing else running, after order lines got
their evidence in columns (no observation rows), members their lane, both lanes the new
people, and imports stopped checking foreign keys (ADR 0006):

    siyu import members           999,715    48.4   20,642    55.2     18,099        1,945
    siyu import orders           4,799,473    78.5   61,111   100.2     47,902        1,945
    naive ORM row by row members   19,991     7.6    2,635     7.6      2,647          377
    naive ORM row by row orders    19,992     8.0    2,501     7.9      2,517          377
    siyu sync after members         957,684     5.2  184,143     6.0    159,403        1,945
    siyu sync after orders       4,799,473    39.3  122,039    44.3    108,338        1,945
    ratio members: 7.8×; orders: 24.4×; members + orders: 18.1× (127 s vs 2,298 s)

STILL NOT MET: 61k of the ≥ 100k order lines/s, 18.1× of the ≥ 20× for the whole brand.

Measured 2026-11-24 17:20 UTC, same machine, nothing else running, after the lanes' store
look-ups became one JSON array each way and per-batch constants moved into the statements;
this run also times the bare write of the same lines (`floor`: nothing validated or decided):

    siyu import members           999,715    51.2   19,518    58.4     17,110        1,782
    siyu import orders           4,799,473    81.4   58,988   103.7     46,262        1,782
    naive ORM row by row members   19,991     7.4    2,689     7.4      2,697          422
    naive ORM row by row orders    19,992     8.9    2,236     8.9      2,239          422
    bare write of the lines      4,800,072    56.0   85,655    53.1     90,471        2,114
    ratio members: 7.3×; orders: 26.4×; members + orders: 19.0× (133 s vs 2,519 s)

(An earlier run at 17:12: 20,808 rows/s, 63,718 lines/s, 18.3×, 123 s.) With
`--baseline-rows 200000` (17:40) the naive ORM slows as its store grows (2,356 members/s and
2,215 lines/s), and the same import (56.2 s, 78.8 s; 60,936 lines/s) is 7.6×, 27.5× and 19.2×
for the whole brand (135 s vs 2,591 s); the bare write 85,144 lines/s. The bare write itself
stays under 100k lines/s, so no import that keeps order lines in the embedded store and writes
them from Python can meet that target here; ADR 0006 ("Why 100k lines/s is out of reach").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from siyu.bootstrap import bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.generate import GenerateRequest, generate
from siyu.identity.models import Member, MemberRecord
from siyu.ingest import service as ingest_service
from siyu.ingest.validation import RowRejected, validate_member, validate_order
from siyu.orders.models import OrderLine
from siyu.warehouse import sync

NOW = datetime(2026, 6, 30, 4, tzinfo=UTC)


def measured(work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """Run `work` in a forked child: (its JSON result, peak RSS in MiB)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        payload = json.dumps(work()).encode()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = json.loads(pipe.read() or b"{}")
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"child failed with status {status}")
    return result, usage.ru_maxrss / 1024


def fresh_siyu(folder: Path) -> Any:
    shutil.rmtree(folder, ignore_errors=True)
    return bootstrap(Settings(data_dir=folder), clock=FixedClock(NOW))


def ours(brand: Path, folder: Path) -> dict[str, Any]:
    siyu = fresh_siyu(folder)
    result: dict[str, Any] = {}
    for kind in ("members", "orders"):
        started, cpu = time.perf_counter(), _cpu()
        outcome = ingest_service.import_file(
            session_factory=siyu.session_factory,
            kind=kind,
            path=brand / f"{kind}.csv",
            now=NOW,
            tz=siyu.settings.tz,
            batch_size=siyu.settings.import_batch_size,
        )
        result[kind] = _timed(outcome.accepted, started, cpu)
        # Not in the ratio (the baseline has no warehouse): the first sync of what was just
        # imported, which `siyu import` runs next (then rule tags and profiles).
        started, cpu = time.perf_counter(), _cpu()
        synced = sync.sync_all(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
        )
        rows = synced.members if kind == "members" else synced.order_lines
        result[f"sync after {kind}"] = _timed(rows, started, cpu)
    siyu.close()
    return result


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(rows: int, started: float, cpu: float) -> dict[str, float]:
    return {"rows": rows, "seconds": time.perf_counter() - started, "cpu": _cpu() - cpu}


def _rows(path: Path, limit: int | None) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if limit is not None and index >= limit:
                return
            yield row


def naive(brand: Path, folder: Path, limit: int | None) -> dict[str, Any]:
    siyu = fresh_siyu(folder)
    tz = siyu.settings.tz
    result: dict[str, Any] = {}
    with siyu.session_factory() as session:
        started, cpu, count = time.perf_counter(), _cpu(), 0
        for row in _rows(brand / "members.csv", limit):
            try:
                valid = validate_member(row, tz=tz)
            except RowRejected:
                continue
            values = valid.values
            member = Member(
                name=values["name"], gender=values["gender"], birthday=values["birthday"],
                registered_at=values["registered_at"], store_code=values["store_code"],
                channel=values["channel"], created_at=NOW, updated_at=NOW,
            )  # fmt: skip
            session.add(member)
            session.flush()
            record_values = {k: v for k, v in values.items() if hasattr(MemberRecord, k)}
            session.add(
                MemberRecord(
                    **record_values, record_key=valid.record.key, member_id=member.id,
                    row_hash=valid.row_hash, updated_at=NOW,
                )
            )  # fmt: skip
            session.flush()
            count += 1
            if count % 1000 == 0:
                session.commit()
        session.commit()
        result["members"] = _timed(count, started, cpu)
        started, cpu, count = time.perf_counter(), _cpu(), 0
        for row in _rows(brand / "orders.csv", limit):
            try:
                valid = validate_order(row, tz=tz)
            except RowRejected:
                continue
            values = valid.values
            member_id = None
            if values.get("member_no"):
                member_id = session.scalar(
                    sa.select(MemberRecord.member_id).where(
                        MemberRecord.member_no == values["member_no"]
                    )
                )
            if member_id is None:
                member = Member(created_at=NOW, updated_at=NOW, registered_at=values["paid_at"])
                session.add(member)
                session.flush()
                member_id = member.id
            line_values = {k: v for k, v in values.items() if hasattr(OrderLine, k)}
            session.add(
                OrderLine(
                    **line_values, member_id=member_id, row_hash=valid.row_hash, imported_at=NOW
                )
            )
            session.flush()
            count += 1
            if count % 1000 == 0:
                session.commit()
        session.commit()
        result["orders"] = _timed(count, started, cpu)
    siyu.close()
    return result


def floor(brand: Path, folder: Path) -> dict[str, Any]:
    """The bare write: the orders file's lines put in `order_lines` as they stand, the fastest
    way Python has — DuckDB's rows handed to sqlite3's executemany, 200k lines a transaction,
    the import's cache and no foreign-key checks, `imported_at` in the statement. Nothing is
    validated, resolved, looked up or de-duplicated (every line goes to one member; malformed
    and repeated lines are skipped by INSERT OR IGNORE): no import that keeps its order lines in
    the embedded store, as #2 asks, can write them faster than this from Python."""
    siyu = fresh_siyu(folder)
    with siyu.session_factory() as session:
        member = Member(created_at=NOW, updated_at=NOW)
        session.add(member)
        session.commit()
        member_id = member.id
    duck = duckdb.connect()
    duck.execute("SET enable_progress_bar = false")
    duck.execute(
        "CREATE TABLE lines AS SELECT order_id, TRY_CAST(line_no AS BIGINT) AS line_no, "
        "member_no, phone, unionid, store_code, channel, paid_at, amount, status, category, sku, "
        "md5(concat_ws('|', order_id, line_no, member_no, phone, unionid, paid_at, amount)) "
        "AS row_hash "
        "FROM read_csv(?, all_varchar = true, header = true)",
        [str(brand / "orders.csv")],
    )
    columns = ("order_id", "line_no", "member_id", "member_no", "phone", "unionid",
               "store_code", "channel", "paid_at", "amount", "status", "category", "sku",
               "row_hash")  # fmt: skip
    marks = ", ".join("?" for _ in columns)
    insert = (
        f"INSERT OR IGNORE INTO order_lines ({', '.join(columns)}, imported_at) "
        f"VALUES ({marks}, '2026-06-30 04:00:00.000000')"
    )
    total = duck.execute("SELECT count(*) FROM lines").fetchone()[0]  # type: ignore[index]
    started, cpu = time.perf_counter(), _cpu()
    with siyu.engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA cache_size = -262144")
        driver.execute("PRAGMA foreign_keys = OFF")
        for start in range(0, total, 200_000):
            rows = duck.execute(
                "SELECT order_id, line_no, ?, member_no, phone, unionid, store_code, channel, "
                "paid_at, amount, status, category, sku, row_hash FROM lines "
                "LIMIT 200000 OFFSET ?",
                [member_id, start],
            ).fetchall()
            driver.executemany(insert, rows)
            driver.commit()
        stored = driver.execute("SELECT count(*) FROM order_lines").fetchone()[0]
    result = {"orders": _timed(stored, started, cpu)}
    siyu.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=None, help="rows per file")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/siyu-bench-import"))
    args = parser.parse_args()
    brand = args.scratch / "brand"
    shutil.rmtree(brand, ignore_errors=True)
    manifest = generate(brand, GenerateRequest(members=args.members))
    print(f"brand: {manifest['counts']['members']:,} members, "
          f"{manifest['counts']['order_lines']:,} order lines (siyu generate, seed 7)")  # fmt: skip
    mine, mine_rss = measured(lambda: ours(brand, args.scratch / "ours"))
    base, base_rss = measured(lambda: naive(brand, args.scratch / "naive", args.baseline_rows))
    bare, bare_rss = measured(lambda: floor(brand, args.scratch / "floor"))
    print(f"{'':28} {'rows':>8} {'wall s':>7} {'rows/s':>8} {'CPU s':>7} {'rows/CPU s':>10} "
          f"{'peak RSS MiB':>12}")  # fmt: skip
    sides = (("siyu import", mine, mine_rss), ("naive ORM row by row", base, base_rss))
    for name, result, rss in sides:
        for kind in ("members", "orders"):
            r = result[kind]
            print(f"{name + ' ' + kind:28} {r['rows']:>8,} {r['seconds']:>7.1f} "
                  f"{r['rows'] / r['seconds']:>8,.0f} {r['cpu']:>7.1f} "
                  f"{r['rows'] / r['cpu']:>10,.0f} {rss:>12,.0f}")  # fmt: skip
    r = bare["orders"]
    print(f"{'bare write of the lines':28} {r['rows']:>8,} {r['seconds']:>7.1f} "
          f"{r['rows'] / r['seconds']:>8,.0f} {r['cpu']:>7.1f} "
          f"{r['rows'] / r['cpu']:>10,.0f} {bare_rss:>12,.0f}")  # fmt: skip
    for kind in ("sync after members", "sync after orders"):
        r = mine[kind]
        print(f"{'siyu ' + kind:28} {r['rows']:>8,} {r['seconds']:>7.1f} "
              f"{r['rows'] / r['seconds']:>8,.0f} {r['cpu']:>7.1f} "
              f"{r['rows'] / r['cpu']:>10,.0f} {mine_rss:>12,.0f}")  # fmt: skip
    for kind in ("members", "orders"):
        wall = (mine[kind]["rows"] / mine[kind]["seconds"]) / (
            base[kind]["rows"] / base[kind]["seconds"]
        )
        cpu = (mine[kind]["rows"] / mine[kind]["cpu"]) / (base[kind]["rows"] / base[kind]["cpu"])
        print(f"ratio {kind}: {wall:.1f}× faster wall-clock, {cpu:.1f}× per CPU second "
              f"(target ≥ 20×)")  # fmt: skip
    # Both files together: the time to import the whole brand, against the baseline's rates.
    ours_s = mine["members"]["seconds"] + mine["orders"]["seconds"]
    base_s = sum(
        mine[k]["rows"] / (base[k]["rows"] / base[k]["seconds"]) for k in ("members", "orders")
    )
    print(f"ratio members + orders: {base_s / ours_s:.1f}× faster wall-clock "
          f"({ours_s:,.0f} s vs {base_s:,.0f} s at the baseline's rates)")  # fmt: skip
    lines_per_s = mine["orders"]["rows"] / mine["orders"]["seconds"]
    lines_per_cpu = mine["orders"]["rows"] / mine["orders"]["cpu"]
    load = os.getloadavg()[0]
    print(f"order lines/s: {lines_per_s:,.0f} wall-clock, {lines_per_cpu:,.0f} per CPU second "
          f"(target ≥ 100,000; load average {load:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
    bare_per_s = bare["orders"]["rows"] / bare["orders"]["seconds"]
    print(f"the bare write of the same lines: {bare_per_s:,.0f} lines/s; the import runs at "
          f"{lines_per_s / bare_per_s:.0%} of it")  # fmt: skip
    shutil.rmtree(args.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
