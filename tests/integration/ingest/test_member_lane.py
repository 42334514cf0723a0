"""The member lane (`ingest.member_lane`) against the row-by-row path it must reproduce: every
test imports the same members file into two fresh SQLite stores, through the lane on one and
row by row on the other, and expects the same counts, rejected-rows file and store contents.

Member and identity ids are surrogates the two lanes may hand out in another order within a
batch (the module's decision), so stores are compared with every member named by its member
records' keys and every identity by its (type, value); a spy on `member_lane.store_batch`
checks the lane did the work it should."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from siyu.bootstrap import Siyu
from siyu.clock import FixedClock
from siyu.generate import GenerateRequest, generate
from siyu.ingest import member_lane, service
from tests.integration.ingest.files import write_rows
from tests.integration.ingest.test_columnar_lane import Outcome, Rows, _dump, _siyu

WANG = {
    "member_no": "M001",
    "phone": "13800138000",
    "unionid": "oU-wang",
    "name": "Wang Fang",
    "gender": "F",
    "birthday": "1990-05-04",
    "registered_at": "2025-01-02T10:00:00",
    "store_code": "SH001",
    "channel": "pos",
}
LI = {"member_no": "M002", "phone": "13900139000", "name": "Li Lei", "channel": "miniprogram"}
ZHAO = {"member_no": "M003", "openid": "o6_zhao", "external_userid": "wm-zhao", "gender": "M"}


@dataclass
class LaneWork:
    stored: int = 0
    duplicates: int = 0
    slow: int = 0


class Twins:
    """Two fresh stores fed the same members files: through the lane, and row by row."""

    def __init__(self, lane: Siyu, rows: Siyu, folder: Path) -> None:
        self.sides = {"lane": lane, "rows": rows}
        self.folder = folder
        self.work = LaneWork()

    def members(self, rows: Rows, *, name: str = "members.csv", limit: int = 20) -> Outcome:
        outcomes = {}
        self.work = LaneWork()
        for side, siyu in self.sides.items():
            path = self.folder / side / name
            path.parent.mkdir(exist_ok=True)
            write_rows(path, rows)
            result = service.import_file(
                session_factory=siyu.session_factory, kind="members", path=path,
                now=siyu.clock.now(), tz=siyu.settings.tz, max_member_nos=limit,
                columnar=side == "lane",
            )  # fmt: skip
            outcomes[side] = Outcome.of(result)
        assert outcomes["lane"] == outcomes["rows"]
        return outcomes["lane"]

    def assert_same_stores(self) -> None:
        lane, rows = (_dump(siyu) for siyu in self.sides.values())
        for table in rows:
            assert lane[table] == rows[table], f"{table} differs"


@pytest.fixture
def twins(
    tmp_path: Path, sqlite_template: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Twins]:
    lane = _siyu(tmp_path / "lane-store", sqlite_template, clock)
    rows = _siyu(tmp_path / "rows-store", sqlite_template, clock)
    pair = Twins(lane, rows, tmp_path / "files")
    pair.folder.mkdir()
    real = member_lane.store_batch

    def spy(
        session: Session, lane_: member_lane.MemberLane, start: int, stop: int, **kw: Any
    ) -> Any:
        batch = real(session, lane_, start, stop, **kw)
        pair.work.stored += batch.result.accepted
        pair.work.duplicates += batch.result.duplicates
        pair.work.slow += len(batch.slow)
        return batch

    monkeypatch.setattr(member_lane, "store_batch", spy)
    yield pair
    lane.close()
    rows.close()


def test_a_generated_brand_gives_the_same_members_and_the_lane_creates_most(
    twins: Twins, tmp_path: Path
) -> None:
    generate(tmp_path / "brand", GenerateRequest(members=1_500))
    rows = list(_read(tmp_path / "brand" / "members.csv"))

    outcome = twins.members(rows)

    assert outcome.counts["accepted"] > 1_400
    assert twins.work.stored > outcome.counts["accepted"] * 3 // 4
    twins.assert_same_stores()


def test_new_people_with_distinct_values_are_created_by_the_lane(twins: Twins) -> None:
    outcome = twins.members([WANG, LI, ZHAO])

    assert (outcome.members_created, twins.work.stored, twins.work.slow) == (3, 3, 0)
    twins.assert_same_stores()


def test_reimporting_the_file_counts_every_row_a_duplicate(twins: Twins) -> None:
    twins.members([WANG, LI])

    outcome = twins.members([WANG, LI])

    assert (outcome.counts["duplicates"], twins.work.duplicates, twins.work.slow) == (2, 2, 0)
    twins.assert_same_stores()


def test_new_rows_sharing_a_phone_in_any_spelling_become_one_member_in_the_lane(
    twins: Twins,
) -> None:
    pos = {"member_no": "M010", "phone": "13800138000", "registered_at": "2025-03-01T10:00:00"}
    mini = {"member_no": "M011", "phone": "+86 138-0013-8000", "unionid": "oU-11", "name": "Xu",
            "registered_at": "2024-12-01T10:00:00"}  # fmt: skip

    outcome = twins.members([pos, LI, mini])

    assert (outcome.members_created, twins.work.stored, twins.work.slow) == (2, 3, 0)
    twins.assert_same_stores()


def test_new_rows_sharing_a_value_with_a_messy_row_all_go_to_the_row_path(twins: Twins) -> None:
    pos = {"member_no": "M010", "phone": "13800138000"}
    mini = {"member_no": "M011", "phone": "13800138000", "unionid": "oU-11", "name": "Xu "}

    outcome = twins.members([pos, LI, mini, {"member_no": "M012", "unionid": "oU-11"}])

    assert (outcome.members_created, twins.work.stored, twins.work.slow) == (2, 1, 3)
    twins.assert_same_stores()


def test_new_rows_sharing_a_phone_past_the_pollution_limit_go_to_the_row_path(
    twins: Twins,
) -> None:
    rows = [{"member_no": f"M02{n}", "phone": "13000000000"} for n in range(4)]

    outcome = twins.members([*rows, LI], limit=3)

    assert (outcome.members_created, twins.work.stored, twins.work.slow) == (5, 1, 4)
    twins.assert_same_stores()


def test_a_row_whose_value_is_already_stored_joins_its_member_on_the_row_path(
    twins: Twins,
) -> None:
    twins.members([WANG])

    outcome = twins.members([{"member_no": "M020", "unionid": "oU-wang"}, LI])

    assert (outcome.members_created, twins.work.stored, twins.work.slow) == (1, 1, 1)
    twins.assert_same_stores()


def test_a_changed_row_updates_its_member_as_on_the_row_path(twins: Twins) -> None:
    twins.members([WANG, LI])

    twins.members([{**WANG, "phone": "13700137000", "name": "Wang F."}, LI])

    assert (twins.work.duplicates, twins.work.slow) == (1, 1)
    twins.assert_same_stores()


def test_an_invalid_phone_on_a_new_person_is_a_warning_on_both_lanes(twins: Twins) -> None:
    outcome = twins.members([{**LI, "phone": "12345"}])

    assert (outcome.counts["warnings"], twins.work.stored) == (1, 1)
    twins.assert_same_stores()


def test_messy_and_rejected_rows_take_the_row_path_and_keep_their_reasons(twins: Twins) -> None:
    rows = [WANG, {**LI, "gender": "female"}, {"name": "nobody"}, {**ZHAO, "name": " Zhao "}]

    outcome = twins.members(rows)

    assert [reason for _, reason in outcome.rejections] == [
        "gender: 'female' is not one of F, M, U",
        "no valid identity",
    ]
    assert (twins.work.stored, twins.work.slow) == (1, 3)
    twins.assert_same_stores()


def test_a_limit_of_zero_leaves_rows_with_a_member_no_and_another_value_to_the_row_path(
    twins: Twins,
) -> None:
    twins.members([WANG, LI, {"phone": "13700137000", "name": "Guest"}], limit=0)

    assert (twins.work.stored, twins.work.slow) == (1, 2)
    twins.assert_same_stores()


def _read(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)
