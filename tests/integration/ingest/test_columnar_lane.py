"""The columnar lane of an order import (`ingest.columnar`) against the row-by-row path it must
reproduce: every test imports the same files into two fresh SQLite stores — orders through the
lane on one (`columnar=True`, the default) and row by row on the other (`columnar=False`) — and
expects the same store contents, counts and rejected-rows file. Where the lane is meant to do
the work itself, the test also checks that it did (a spy on `columnar.store_batch`), so a lane
that silently handed everything to the row path could not pass."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session

from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.generate import GenerateRequest, generate
from siyu.identity import service as identity_service
from siyu.ingest import columnar, service
from tests.integration.ingest.files import write_rows

Rows = list[dict[str, Any]]
# What a file is made from: rows (written by `files.write_rows`), the file's exact text, an
# existing file to copy, or a function writing it.
Source = Rows | str | Path | Callable[[Path], None]
Store = dict[str, list[tuple[Any, ...]]]

COLUMNS = (
    "order_id", "line_no", "member_no", "phone", "unionid", "store_code", "channel", "paid_at",
    "amount", "status", "category", "sku",
)  # fmt: skip

# Demo Tea's two members: every identity an order below carries is on their member rows, so
# the lane can settle their orders itself.
MEMBERS: Rows = [
    {
        "member_no": "M001",
        "phone": "13800138000",
        "unionid": "oU1",
        "name": "Wang Fang",
        "gender": "F",
        "registered_at": "2025-01-02T10:00:00",
        "store_code": "SH001",
        "channel": "pos",
    },
    {
        "member_no": "M002",
        "phone": "13900139000",
        "unionid": "",
        "name": "Li Lei",
        "gender": "M",
        "registered_at": "2025-03-01T09:00:00",
        "store_code": "BJ002",
        "channel": "miniprogram",
    },
]


def _line(order_id: str, line_no: str = "1", **values: str) -> dict[str, str]:
    """An order line of Wang Fang's (M001) unless `values` say otherwise."""
    line = {
        "order_id": order_id,
        "line_no": line_no,
        "member_no": "M001",
        "phone": "13800138000",
        "unionid": "oU1",
        "store_code": "SH001",
        "channel": "pos",
        "paid_at": "2026-06-01T12:00:00",
        "amount": "39.00",
        "status": "paid",
        "category": "tea",
        "sku": "T1",
    }
    return {**line, **values}


def _lis(order_id: str, line_no: str = "1", **values: str) -> dict[str, str]:
    """An order line of Li Lei's (M002), known by his phone only."""
    return _line(
        order_id, line_no, **{"member_no": "", "phone": "13900139000", "unionid": "", **values}
    )


ORDERS: Rows = [
    _line("O1", "1"),
    _line("O1", "2", amount="10.50", category="snack", sku="S1"),
    _lis("O2", store_code="BJ002", channel="miniprogram", amount="20", status="refunded"),
    _line("O3", amount="-1"),  # rejected on both paths
]


@dataclass(frozen=True)
class Outcome:
    """What one import reports: counts, OneID work, rejections and the rejected-rows file."""

    counts: dict[str, Any]
    members_created: int
    merges: int
    rejections: list[tuple[int, str]]
    rejected_file: str | None

    @classmethod
    def of(cls, result: service.ImportResult) -> Outcome:
        path = result.rejected_file
        return cls(
            counts={**result.as_json(), "rejected_file": path is not None},
            members_created=result.members_created,
            merges=result.merges,
            rejections=[(r.line, r.reason) for r in result.rejections],
            rejected_file=Path(path).read_text(encoding="utf-8") if path else None,
        )


@dataclass
class LaneWork:
    """What `columnar.store_batch` did itself during one import (the rest is `slow`)."""

    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    slow: int = 0


@dataclass(frozen=True)
class Imported:
    """The same orders file imported through the lane and row by row."""

    lane: Outcome
    rows: Outcome
    work: LaneWork


class Twins:
    """Two fresh stores fed the same files: orders through the lane, and row by row."""

    def __init__(self, lane: Siyu, rows: Siyu, folder: Path) -> None:
        self.sides = {"lane": lane, "rows": rows}
        self.folder = folder
        self.work = LaneWork()

    def members(
        self,
        source: Source,
        *,
        name: str = "members.csv",
        tz: tzinfo | None = None,
        max_member_nos: int = 20,
    ) -> None:
        for side, siyu in self.sides.items():
            service.import_file(
                session_factory=siyu.session_factory,
                kind="members",
                path=self._write(side, name, source),
                now=siyu.clock.now(),
                tz=tz or siyu.settings.tz,
                max_member_nos=max_member_nos,
            )

    def orders(
        self,
        source: Source,
        *,
        name: str = "orders.csv",
        tz: tzinfo | None = None,
        batch_size: int = 50_000,
        max_member_nos: int = 20,
    ) -> Imported:
        outcomes: dict[str, Outcome] = {}
        self.work = LaneWork()
        for side, siyu in self.sides.items():
            result = service.import_file(
                session_factory=siyu.session_factory,
                kind="orders",
                path=self._write(side, name, source),
                now=siyu.clock.now(),
                tz=tz or siyu.settings.tz,
                batch_size=batch_size,
                max_member_nos=max_member_nos,
                columnar=side == "lane",
            )
            outcomes[side] = Outcome.of(result)
        return Imported(outcomes["lane"], outcomes["rows"], self.work)

    def stores(self) -> tuple[Store, Store]:
        return _dump(self.sides["lane"]), _dump(self.sides["rows"])

    def _write(self, side: str, name: str, source: Source) -> Path:
        folder = self.folder / side
        folder.mkdir(exist_ok=True)
        path = folder / name
        if isinstance(source, list):
            write_rows(path, source)
        elif isinstance(source, str):
            path.write_bytes(source.encode("utf-8"))
        elif isinstance(source, Path):
            shutil.copy(source, path)
        else:
            source(path)
        return path


def _dump(siyu: Siyu) -> Store:
    """Every row an import can touch, with member and identity ids replaced by names: a member
    by the keys of its records (member rows, then order lines), a merged-away member by its
    merge. The lanes hand out ids for new members and values in another order within a batch
    (the lane creates its members first), which is all the ids may differ by."""
    with siyu.session_factory() as session:
        run = session.connection().exec_driver_sql
        keys: dict[int, list[str]] = {}
        for member_id, key in run(
            "SELECT member_id, 'member:' || record_key FROM member_records UNION ALL "
            "SELECT member_id, 'order:' || order_id || ':' || line_no FROM order_lines"
        ):
            keys.setdefault(member_id, []).append(key)
        name: dict[int | None, Any] = {m: "+".join(sorted(k)) for m, k in keys.items()}
        for merged_id, survivor, via_type, via_value in run(
            "SELECT merged_id, survivor_id, via_type, via_value FROM member_merges"
        ):
            name.setdefault(merged_id, f"merged into {survivor} via {via_type}:{via_value}")
        name[None] = None
        value: dict[int | None, Any] = {
            i: (t, v) for i, t, v in run("SELECT id, type, value FROM identities")
        }
        value[None] = None
        tables = {
            "members": [
                (name[row[0]], name[row[1]], *row[2:])
                for row in run(
                    "SELECT id, merged_into_id, name, gender, birthday, registered_at, "
                    "store_code, channel, erased_at, created_at, updated_at FROM members"
                )
            ],
            "member_records": [
                (name[row[0]], *row[1:])
                for row in run(
                    "SELECT member_id, record_key, member_no, phone, unionid, openid, "
                    "external_userid, name, gender, birthday, registered_at, store_code, "
                    "channel, row_hash, updated_at FROM member_records"
                )
            ],
            "order_lines": [
                (name[row[0]], *row[1:-3], *(value[i] for i in row[-3:]))
                for row in run(
                    "SELECT member_id, order_id, line_no, member_no, phone, unionid, "
                    "store_code, channel, paid_at, amount, status, category, sku, row_hash, "
                    "imported_at, member_no_identity_id, phone_identity_id, "
                    "unionid_identity_id FROM order_lines"
                )
            ],
            "identities": [
                (*value[row[0]], name[row[1]], *row[2:])
                for row in run(
                    "SELECT id, member_id, polluted, first_seen_at, released_at FROM identities"
                )
            ],
            "observations": [
                (*value[i], kind, key, at)
                for i, kind, key, at in run(
                    "SELECT identity_id, record_kind, record_key, observed_at "
                    "FROM identity_observations"
                )
            ],
            "pairs": [
                (*value[i], value[n])
                for i, n in run(
                    "SELECT identity_id, member_no_identity_id FROM identity_member_nos"
                )
            ],
            "merges": [
                (name[survivor], name[merged], *rest)
                for survivor, merged, *rest in run(
                    "SELECT survivor_id, merged_id, via_type, via_value, reason, detail, "
                    "merged_at FROM member_merges"
                )
            ],
        }
    return {table: sorted(rows, key=repr) for table, rows in tables.items()}


def assert_same_stores(twins: Twins) -> None:
    lane, rows = twins.stores()
    for table in rows:
        assert lane[table] == rows[table], f"{table} differs"


def _siyu(folder: Path, template: Path, clock: FixedClock) -> Siyu:
    folder.mkdir(parents=True)
    shutil.copy(template, folder / "siyu.db")
    settings = Settings(
        environment="test",
        data_dir=folder / "siyu-data",
        database_url=f"sqlite:///{folder / 'siyu.db'}",
        warehouse_url=f"duckdb:///{folder / 'warehouse.duckdb'}",
    )
    return bootstrap(settings, clock=clock, migrate=False)


@pytest.fixture
def twins(
    tmp_path: Path, sqlite_template: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Twins]:
    """The lane needs SQLite, so both sides are SQLite (whatever `database_url` says)."""
    lane = _siyu(tmp_path / "lane-store", sqlite_template, clock)
    rows = _siyu(tmp_path / "rows-store", sqlite_template, clock)
    pair = Twins(lane, rows, tmp_path / "files")
    pair.folder.mkdir()
    real = columnar.store_batch

    def spy(
        session: Session, lane_: columnar.OrderLane, start: int, stop: int, **kw: Any
    ) -> columnar.ColumnarBatch:
        batch = real(session, lane_, start, stop, **kw)
        pair.work.batches += 1
        pair.work.stored += batch.result.accepted
        pair.work.duplicates += batch.result.duplicates
        pair.work.rejected += len(batch.result.rejected)
        pair.work.slow += len(batch.slow)
        return batch

    monkeypatch.setattr(columnar, "store_batch", spy)
    yield pair
    lane.close()
    rows.close()


def _parquet(rows: Rows, *, empty: str | None = None) -> Callable[[Path], None]:
    """Rows as a Parquet file whose columns are all strings; empty cells become `empty`."""

    def write(path: Path) -> None:
        columns = list(dict.fromkeys(name for row in rows for name in row))
        table = pa.table(
            {c: pa.array([r.get(c) or empty for r in rows], type=pa.string()) for c in columns}
        )
        pq.write_table(table, path)

    return write


# ---------------------------------------------------------------------------------------------
# A generated brand


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo Tea with 1,500 members (`siyu generate`, seed 7): ~7,700 order lines."""
    folder = tmp_path_factory.mktemp("brand")
    generate(folder, GenerateRequest(members=1_500))
    return folder


def test_a_generated_brand_gives_the_same_store_counts_and_rejected_file(
    twins: Twins, brand: Path
) -> None:
    twins.members(brand / "members.csv")

    imported = twins.orders(brand / "orders.csv")

    assert imported.lane == imported.rows
    assert imported.lane.counts["accepted"] > 7_000
    assert imported.work.stored > imported.lane.counts["accepted"] // 2  # the lane did most
    assert_same_stores(twins)


def test_a_generated_brand_as_all_text_parquet_gives_the_same_result_as_its_csv(
    twins: Twins, brand: Path
) -> None:
    with (brand / "orders.csv").open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    twins.members(brand / "members.csv")

    imported = twins.orders(_parquet(lines), name="orders.parquet")

    assert imported.lane == imported.rows
    assert imported.work.stored > imported.lane.counts["accepted"] // 2
    assert_same_stores(twins)


def test_a_generated_brand_in_many_small_batches_gives_the_same_result(
    twins: Twins, brand: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "COLUMNAR_BATCH", 1_000)  # see `small_lane_batches`
    twins.members(brand / "members.csv")

    imported = twins.orders(brand / "orders.csv", batch_size=1_000)

    assert imported.lane == imported.rows
    assert imported.work.batches > 5
    assert_same_stores(twins)


# ---------------------------------------------------------------------------------------------
# Duplicates, conflicts, merges, new members, batches


def test_orders_of_known_members_are_stored_by_the_lane_as_the_row_path_stores_them(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(ORDERS)

    assert imported.lane == imported.rows
    assert imported.lane.counts == {
        "accepted": 3,
        "rejected": 1,
        "duplicates": 0,
        "warnings": 0,
        "rejected_file": True,
    }
    assert imported.work.stored == 3
    assert_same_stores(twins)


# Values the lane's store look-ups carry through JSON both ways: quotes, a backslash, CJK, an
# emoji (a surrogate pair in JSON's escapes), a line separator.
ODD = ['M"1', "M\\2", "会员三", "M😀4", "M\u20285"]


def test_values_and_order_ids_json_must_escape_are_looked_up_by_the_lane_as_stored(
    twins: Twins,
) -> None:
    members = [{**MEMBERS[0], "member_no": no, "phone": "", "unionid": f"u{no}"} for no in ODD]
    twins.members(members)
    twins.members(members)  # the member lane finds every record: nothing is created twice
    orders = [_line(f"单{no}", member_no=no, phone="", unionid=f"u{no}") for no in ODD]

    first = twins.orders(orders)
    again = twins.orders(orders)

    assert first.lane == first.rows
    assert first.work.stored == len(ODD)  # every value found: settled on the lane
    assert again.work.duplicates == len(ODD)  # every order id found: stored before
    assert_same_stores(twins)


def test_reimporting_an_orders_file_counts_every_line_a_duplicate_and_changes_nothing(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)
    twins.orders(ORDERS)
    before, _ = twins.stores()

    again = twins.orders(ORDERS)

    assert again.lane == again.rows
    assert (again.lane.counts["accepted"], again.lane.counts["duplicates"]) == (0, 3)
    assert again.work.duplicates == 3
    assert twins.stores()[0] == before
    assert_same_stores(twins)


def test_a_line_reimported_with_another_amount_is_rejected_as_the_row_path_rejects_it(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)
    twins.orders(ORDERS[:2])

    changed = twins.orders([ORDERS[0] | {"amount": "45.00"}, ORDERS[1]], name="orders-2.csv")

    assert changed.lane == changed.rows
    assert changed.lane.rejections == [
        (2, "order line O1:1 was already imported with different values")
    ]
    assert (changed.work.rejected, changed.work.duplicates) == (1, 1)
    assert_same_stores(twins)


def test_a_line_key_repeated_with_other_values_in_one_file_is_rejected_as_the_row_path_does(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders([_line("O1"), _line("O1", amount="45.00"), _line("O1")])

    assert imported.lane == imported.rows
    assert imported.lane.rejections == [(3, "order line O1:1 differs from line 2")]
    assert imported.lane.counts["duplicates"] == 1
    assert_same_stores(twins)


def test_an_order_bridging_two_members_merges_them_as_the_row_path_does(twins: Twins) -> None:
    twins.members(MEMBERS)

    # Line 1 is Wang Fang's member number, line 2 Li Lei's phone: one order, one person.
    imported = twins.orders([_line("O7", "1", phone="", unionid=""), _lis("O7", "2")])

    assert imported.lane == imported.rows
    assert imported.lane.merges == 1
    assert imported.work.stored == 0  # OneID has something to decide: the row path decides
    assert_same_stores(twins)


def test_an_order_of_a_merged_member_goes_to_the_survivor_as_on_the_row_path(
    twins: Twins,
) -> None:
    # Wang Fang's POS account and her mini-program account share her phone: one member.
    mini = {**MEMBERS[0], "member_no": "M003", "unionid": "oU3", "channel": "miniprogram"}
    twins.members([*MEMBERS, mini])

    imported = twins.orders([_line("O1", member_no="M003", unionid="oU3"), _line("O2", unionid="")])

    assert imported.lane == imported.rows
    assert imported.work.stored == 2
    assert_same_stores(twins)


def test_an_order_carrying_a_polluted_phone_is_stored_as_the_row_path_stores_it(
    twins: Twins,
) -> None:
    # A store's counter phone typed in for three members: with at most 2 member_nos per value
    # it is polluted and joins nobody.
    counter = [{**MEMBERS[0], "member_no": f"M10{n}", "unionid": f"oU10{n}"} for n in range(1, 4)]
    twins.members([*MEMBERS, *counter], max_member_nos=2)

    imported = twins.orders(
        [
            _line("O1", member_no="M101", unionid=""),  # polluted phone, known member_no
            _line("O2", member_no="", unionid=""),  # nothing but the polluted phone
            _line("O3", member_no="M102", unionid="oU103"),  # a bridge through a unionid
        ],
        max_member_nos=2,
    )

    assert imported.lane == imported.rows
    assert imported.work.stored >= 1
    assert_same_stores(twins)


def test_an_order_matching_no_member_creates_one_in_the_lane_as_the_row_path_does(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(
        [
            _line("O8", member_no="M404", phone="13700137000", unionid="", channel="douyin"),
            _line("O9"),
        ]
    )

    assert imported.lane == imported.rows
    assert imported.lane.members_created == 1
    assert (imported.work.stored, imported.work.slow) == (2, 0)  # O8 creates the member
    member = identity_service.explain_member(
        session_factory=twins.sides["lane"].session_factory, identity="M404"
    ).member
    assert (member["registered_at"], member["channel"]) == ("2026-06-01T04:00:00+00:00", "douyin")
    assert_same_stores(twins)


def test_orders_of_one_new_person_sharing_a_phone_in_any_spelling_make_one_member(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    guest = {"member_no": "M404", "phone": "13700137000", "unionid": ""}
    later, earlier = "2026-06-02T10:00:00", "2026-05-30T09:00:00"
    imported = twins.orders(
        [
            _line("O8", **guest, paid_at=later),
            _line("O8", "2", **guest, paid_at=later),
            _line("O10", member_no="", phone="+86 137-0013-7000", unionid="oU-4", paid_at=earlier),
            _line("O9"),
        ]
    )

    assert imported.lane == imported.rows
    assert (imported.lane.members_created, imported.work.stored) == (1, 4)
    assert_same_stores(twins)


def test_a_new_persons_order_sharing_a_value_with_a_messy_line_goes_to_the_row_path(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(
        [
            _line("O8", member_no="M404", phone="13700137000", unionid=""),
            _line("O10", member_no="M404 ", phone="", unionid=""),
            _line("O9"),
        ]
    )

    assert imported.lane == imported.rows
    assert (imported.lane.members_created, imported.work.stored, imported.work.slow) == (1, 1, 2)
    assert_same_stores(twins)


def test_new_orders_sharing_a_phone_past_the_pollution_limit_go_to_the_row_path(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)
    lines = [
        _line(f"O2{n}", member_no=f"M40{n}", phone="13000000000", unionid="") for n in range(4)
    ]

    imported = twins.orders([*lines, _line("O9")], max_member_nos=3)

    assert imported.lane == imported.rows
    assert (imported.lane.members_created, imported.work.slow) == (4, 4)
    assert_same_stores(twins)


@pytest.fixture
def small_lane_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """`import_file` gives the lane batches of at least `service.COLUMNAR_BATCH` (200,000)
    lines whatever `batch_size` says; lowered here so a four-line file spans two batches."""
    monkeypatch.setattr(service, "COLUMNAR_BATCH", 2)
    return 2


def test_an_order_continued_in_the_next_batch_by_the_same_member_stays_on_the_lane(
    twins: Twins, small_lane_batches: int
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(
        [_line("O1"), _line("O2", "1"), _line("O2", "2", sku="S1"), _lis("O3")],
        batch_size=small_lane_batches,
    )

    assert imported.lane == imported.rows
    assert (imported.work.batches, imported.work.stored) == (2, 4)
    assert_same_stores(twins)


def test_an_order_continued_in_the_next_batch_by_another_member_merges_as_the_row_path_does(
    twins: Twins, small_lane_batches: int
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(
        [_line("O1"), _line("O2", "1"), _lis("O2", "2", sku="S1"), _lis("O3")],
        batch_size=small_lane_batches,
    )

    assert imported.lane == imported.rows
    assert imported.lane.merges == 1
    assert imported.work.batches == 2
    assert_same_stores(twins)


def test_the_lane_ignores_a_batch_size_below_its_own(twins: Twins) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(ORDERS, batch_size=1)

    assert imported.lane == imported.rows
    assert imported.work.batches == 1
    assert_same_stores(twins)


def test_a_line_key_repeated_with_other_values_is_rejected_whichever_batch_it_falls_in(
    twins: Twins, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The defaults scaled down: row-path batches of 2 lines, lane batches of 4. The reason's
    # wording follows the batch boundaries on both paths (documented in ingest.columnar):
    # "differs from line N" within a batch, "already imported" across batches.
    monkeypatch.setattr(service, "COLUMNAR_BATCH", 4)
    twins.members(MEMBERS)

    imported = twins.orders(
        [_line("O1"), _line("O2"), _line("O1", amount="45.00"), _line("O3")], batch_size=2
    )

    assert imported.lane.counts == imported.rows.counts
    assert imported.lane.rejections == [(4, "order line O1:1 differs from line 2")]
    assert imported.rows.rejections == [
        (4, "order line O1:1 was already imported with different values")
    ]
    assert_same_stores(twins)


# ---------------------------------------------------------------------------------------------
# Time: naive instants in the business time zone, daylight saving time


@pytest.mark.parametrize(
    ("zone", "paid_at", "by_lane"),
    [
        pytest.param("Asia/Shanghai", "2026-06-01T12:00:00", True, id="Shanghai"),
        pytest.param("Asia/Shanghai", "2026-06-01 12:00:00", True, id="Shanghai, space"),
        pytest.param("America/New_York", "2026-07-04T12:00:00", True, id="New York summer"),
        pytest.param("America/New_York", "2026-01-15T12:00:00", True, id="New York winter"),
        pytest.param("America/New_York", "2026-03-08T01:59:59", True, id="before spring gap"),
        pytest.param("America/New_York", "2026-03-08T02:30:00", True, id="in spring gap"),
        pytest.param("America/New_York", "2026-03-08T03:00:00", True, id="after spring gap"),
        pytest.param("America/New_York", "2026-11-01T00:59:59", True, id="before repeated hour"),
        pytest.param("America/New_York", "2026-11-01T01:30:00", True, id="in repeated hour"),
        pytest.param("America/New_York", "2026-11-01T02:00:00", True, id="after repeated hour"),
        pytest.param("Australia/Lord_Howe", "2026-10-04T02:15:00", False, id="half-hour gap"),
        pytest.param("Asia/Shanghai", "1899-12-31T12:00:00", False, id="local mean time"),
    ],
)
def test_a_naive_paid_at_is_read_in_the_business_time_zone_as_the_row_path_reads_it(
    twins: Twins, zone: str, paid_at: str, by_lane: bool
) -> None:
    tz = ZoneInfo(zone)
    twins.members(MEMBERS, tz=tz)

    imported = twins.orders([_line("O1", paid_at=paid_at)], tz=tz)

    assert imported.lane == imported.rows
    assert imported.work.stored == int(by_lane)
    assert_same_stores(twins)  # paid_at and row_hash included


# ---------------------------------------------------------------------------------------------
# Files the lane cannot take, and CSV quirks: the same result either way


def _cells(order_id: str, **cells: str) -> str:
    """One CSV line written by hand: `_line`'s values, `cells` exactly as given (no quoting)."""
    return ",".join({**_line(order_id), **cells}.values()) + "\r\n"


HEADER = ",".join(COLUMNS) + "\r\n"
WANG = _cells("O1")
NEGATIVE = _cells("O3", amount="-1")  # rejected on both paths


def _amount_as_float(path: Path) -> None:
    table = pa.table(
        {
            **{c: pa.array([v], type=pa.string()) for c, v in _line("O1").items()},
            "amount": pa.array([39.0], type=pa.float64()),
        }
    )
    pq.write_table(table, path)


def _ndjson(path: Path) -> None:
    rows = [_line("O1"), _line("O3", amount="-1")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "source"),
    [
        pytest.param("orders.csv", HEADER + WANG + "\r\n" + NEGATIVE, id="a blank line"),
        pytest.param("orders.csv", HEADER + _cells("O1", sku='"T\n1"'), id="a line break"),
        pytest.param(
            "orders.csv", HEADER + WANG + _cells("O2", sku="T1,extra"), id="too many columns"
        ),
        pytest.param(
            "orders.csv", HEADER.replace("sku", "category") + WANG, id="a repeated column"
        ),
        pytest.param("orders.ndjson", _ndjson, id="NDJSON"),
        pytest.param("orders.parquet", _amount_as_float, id="Parquet with a float column"),
    ],
)
def test_a_file_the_lane_cannot_take_is_imported_row_by_row_with_the_same_result(
    twins: Twins, name: str, source: Source
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(source, name=name)

    assert imported.lane == imported.rows
    assert imported.work.batches == 0
    assert_same_stores(twins)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("", id="an empty file"),
        pytest.param(HEADER, id="only a header"),
        pytest.param(
            HEADER.replace("\r\n", ",note\r\n")
            + WANG.replace("\r\n", ",VIP\r\n")
            + NEGATIVE.replace("\r\n", ",call back\r\n"),
            id="an extra column",
        ),
        pytest.param(
            ",".join(reversed(COLUMNS))
            + "\r\n"
            + ",".join(reversed(WANG.rstrip().split(",")))
            + "\r\n"
            + ",".join(reversed(NEGATIVE.rstrip().split(",")))
            + "\r\n",
            id="columns in another order",
        ),
        pytest.param(HEADER + WANG + NEGATIVE, id="CRLF line ends"),
        pytest.param((HEADER + WANG + NEGATIVE).replace("\r\n", "\n"), id="LF line ends"),
        pytest.param("\ufeff" + HEADER + WANG + NEGATIVE, id="a byte order mark"),
        pytest.param((HEADER + WANG + NEGATIVE).rstrip("\r\n"), id="no final line break"),
        pytest.param(HEADER + _cells("O1", sku="") + NEGATIVE, id="an empty last cell"),
        pytest.param(
            HEADER + "O1,1,M001,13800138000,oU1,SH001,pos,2026-06-01T12:00:00,39.00\r\n" + NEGATIVE,
            id="a short row",
        ),
        pytest.param(HEADER + WANG + ",,,,,,,,,,,\r\n" + NEGATIVE, id="a row of commas"),
        pytest.param(HEADER + _cells("O1", sku='"T""1"') + NEGATIVE, id="a doubled quote"),
        pytest.param(HEADER + _cells("O1", sku='T"1') + NEGATIVE, id="a stray quote"),
        pytest.param(HEADER + _cells("O1", sku='"T1"x') + NEGATIVE, id="text after quotes"),
        pytest.param(HEADER + _cells("O1", unionid='""') + NEGATIVE, id="a quoted empty cell"),
        pytest.param(HEADER + _cells("O1", sku='"T\r1"') + NEGATIVE, id="a quoted CR"),
        pytest.param(HEADER + _cells("O1", sku="T1 ") + NEGATIVE, id="a trailing space"),
        pytest.param(HEADER + _cells("O1", sku='"T1" ') + NEGATIVE, id="a space after quotes"),
    ],
)
def test_csv_quirks_give_the_same_result_as_the_row_path(twins: Twins, source: str) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(source)

    assert imported.lane == imported.rows
    assert_same_stores(twins)


# ---------------------------------------------------------------------------------------------
# Messy values: the row path decides them, or the lane proves it computes the same

MESSY = [
    ("phone", " 138 0013 8000 "),
    ("phone", "+86 138-0013-8000"),
    ("phone", "0086 13800138000"),
    ("phone", "86 138 0013 8000"),
    ("phone", "(138) 0013-8000"),
    ("phone", "１３８００１３８０００"),
    ("phone", "138\u30000013\u30008000"),
    ("phone", "12345"),
    ("phone", "bad"),
    ("amount", "007.50"),
    ("amount", "12.5"),
    ("amount", "0.00"),
    ("amount", "0"),
    ("amount", "１２.５"),
    ("amount", "1."),
    ("amount", "99999999999999.99"),
    ("line_no", "01"),
    ("line_no", "1.0"),
    ("line_no", "0"),
    ("line_no", "２"),
    ("line_no", ""),
    ("status", ""),
    ("status", "PAID"),
    ("status", "refunded"),
    ("order_id", " O2"),
    ("member_no", "M001 "),
    ("store_code", "\tSH001"),
    ("channel", "pos\u3000"),
    ("category", "\xa0tea"),
    ("sku", " "),
    ("unionid", "\u3000"),
    ("paid_at", " 2026-06-01T12:00:00"),
    ("paid_at", "2026-06-01T12:00:00.5"),
    ("paid_at", "2026-06-01T12:00:00.123"),
    ("paid_at", "2026-06-01T12:00:00.123456"),
    ("paid_at", "2026-06-01T12:00:00.000"),
    ("paid_at", "2026-06-01T04:00:00Z"),
    ("paid_at", "2026-06-01T09:45:00+05:45"),
    ("paid_at", "2026-06-01T12:00:00-00:00"),
    ("paid_at", "2026-06-01T12:00:00+0800"),
    ("paid_at", "2026-06-01 12:00"),
    ("paid_at", "2026-06-01"),
    ("paid_at", "1899-12-31T23:00:00"),
    ("paid_at", "1899-12-31T23:00:00+08:00"),
    ("paid_at", "1900-01-01T00:30:00+08:00"),
    ("paid_at", "2026-02-30T12:00:00"),
]


def _messy_lines(name: str, value: str) -> Rows:
    """A plain line of Wang Fang's (the lane stores it), then one of another order with one
    messy value."""
    return [_line("O1"), {**_line("O2"), name: value}]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(("name", "value"), MESSY, ids=[f"{n}={v!r}" for n, v in MESSY])
def test_a_messy_value_gives_the_same_result_as_the_row_path(
    twins: Twins, name: str, value: str, suffix: str
) -> None:
    twins.members(MEMBERS)
    lines = _messy_lines(name, value)
    source: Source = lines if suffix == ".csv" else _parquet(lines)

    imported = twins.orders(source, name=f"orders{suffix}")

    assert imported.lane == imported.rows
    assert imported.work.stored >= 1  # the lane took the file and stored the plain line
    assert_same_stores(twins)


# ---------------------------------------------------------------------------------------------
# Known discrepancies (src is not changed here): each test fails until the lane is fixed


@pytest.mark.parametrize("phone", ["-", "()", " - "])
def test_a_phone_of_separators_only_counts_the_same_warning_as_the_row_path(
    twins: Twins, phone: str
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders([_line("O1", phone=phone)])

    assert imported.lane == imported.rows  # lane: warnings 0, row path: warnings 1


@pytest.mark.parametrize("name", ["order_id", "store_code", "channel", "category", "sku"])
def test_an_empty_string_in_a_parquet_file_is_no_value_as_on_the_row_path(
    twins: Twins, name: str
) -> None:
    twins.members(MEMBERS)
    line = {**_line("O1"), name: ""}

    imported = twins.orders(_parquet([line], empty=""), name="orders.parquet")

    assert imported.lane == imported.rows
    assert_same_stores(twins)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "order_id,member_no,paid_at,amount\r\n"
            "O1,M001,2026-06-01T12:00:00,39.00\r\n"
            "O3,M001,2026-06-01T12:00:00,-1\r\n",
            id="a file without the optional columns",
        ),
        pytest.param(HEADER.replace(",", " , ") + WANG + NEGATIVE, id="names padded with spaces"),
    ],
)
def test_the_rejected_file_has_the_columns_the_row_path_gives_it(twins: Twins, source: str) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(source)

    assert imported.lane == imported.rows


def test_a_space_before_an_opening_quote_is_read_as_the_row_path_reads_it(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(HEADER + _cells("O1", sku=' "T1"'))

    assert imported.lane == imported.rows
    assert_same_stores(twins)


def test_a_rejected_line_is_written_to_the_rejected_file_as_the_row_path_reads_it(
    twins: Twins,
) -> None:
    twins.members(MEMBERS)

    imported = twins.orders(HEADER + WANG + _cells("O3", amount="-1", sku='"T1" '))

    assert imported.lane == imported.rows
