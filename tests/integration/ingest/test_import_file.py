"""Importing files (DESIGN §4.2/§4.6) on SQLite and PostgreSQL: counts, rejected-rows file,
idempotent re-import, member updates, and the three formats giving the same result."""

from __future__ import annotations

import csv
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.identity import service as identity_service
from siyu.identity.models import Member, MemberRecord
from siyu.ingest import service
from siyu.ingest.errors import IngestError
from siyu.ingest.models import DeadLetter, ImportRun
from siyu.orders.models import OrderLine
from tests.integration.ingest.files import MEMBERS, ORDERS, write_rows


def _import(siyu: Siyu, kind: str, path: Path, **kwargs: Any) -> service.ImportResult:
    return service.import_file(
        session_factory=siyu.session_factory,
        kind=kind,
        path=path,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        **kwargs,
    )


def _scalar(siyu: Siyu, statement: Any) -> Any:
    with siyu.session_factory() as session:
        return session.scalar(statement)


def test_member_import_counts_accepted_rejected_and_warnings(siyu: Siyu, tmp_path: Path) -> None:
    result = _import(siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS))

    assert result.as_json() == {
        "accepted": 3,
        "rejected": 2,
        "duplicates": 0,
        "warnings": 1,
        "rejected_file": str(tmp_path / "members.csv.rejected.csv"),
    }


def test_rejected_file_keeps_original_columns_plus_line_and_reason(
    siyu: Siyu, tmp_path: Path
) -> None:
    _import(siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS))

    with (tmp_path / "members.csv.rejected.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["member_no"], r["line"], r["reason"]) for r in rows] == [
        ("M004", "5", "gender: 'X' is not one of F, M, U"),
        ("", "6", "no valid identity (phone 'bad' is not a valid mobile number)"),
    ]
    assert list(rows[0])[:2] == ["member_no", "phone"]


def test_reimporting_the_same_files_changes_nothing(siyu: Siyu, tmp_path: Path) -> None:
    members = write_rows(tmp_path / "members.csv", MEMBERS)
    orders = write_rows(tmp_path / "orders.csv", ORDERS)
    _import(siyu, "members", members)
    _import(siyu, "orders", orders)
    before = identity_service.count_members(session_factory=siyu.session_factory)

    again = _import(siyu, "members", members)
    again_orders = _import(siyu, "orders", orders)

    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 2)
    assert (again_orders.accepted, again_orders.duplicates, again_orders.rejected) == (0, 3, 1)
    assert identity_service.count_members(session_factory=siyu.session_factory) == before
    assert _scalar(siyu, sa.select(sa.func.count()).select_from(OrderLine)) == 3


def test_wang_fangs_pos_and_miniprogram_accounts_are_one_member(siyu: Siyu, tmp_path: Path) -> None:
    _import(siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS))
    _import(siyu, "orders", write_rows(tmp_path / "orders.csv", ORDERS))

    # M001 and M002 share the phone; the mini-program order comes in by unionid only.
    wang = identity_service.find_member_by_identity(
        session_factory=siyu.session_factory, identity="M001"
    )
    assert (
        identity_service.find_member_by_identity(
            session_factory=siyu.session_factory, identity="oU1"
        )
        == wang
    )
    owners = _scalar(siyu, sa.select(sa.func.count(sa.distinct(OrderLine.member_id))))
    assert owners == 1
    assert identity_service.count_members(session_factory=siyu.session_factory) == 2


def test_a_changed_member_row_updates_the_member(siyu: Siyu, tmp_path: Path) -> None:
    _import(siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS[:1]))

    changed = [{**MEMBERS[0], "name": "Wang Fang (VIP)", "store_code": "SH002"}]
    result = _import(siyu, "members", write_rows(tmp_path / "members2.csv", changed))

    assert (result.accepted, result.duplicates) == (1, 0)
    assert _scalar(siyu, sa.select(Member.name)) == "Wang Fang (VIP)"
    assert _scalar(siyu, sa.select(Member.store_code)) == "SH002"
    assert _scalar(siyu, sa.select(sa.func.count()).select_from(MemberRecord)) == 1


def test_an_order_line_reimported_with_other_values_is_rejected(siyu: Siyu, tmp_path: Path) -> None:
    _import(siyu, "orders", write_rows(tmp_path / "orders.csv", ORDERS[:1]))

    changed = [{**ORDERS[0], "amount": "45.00"}]
    result = _import(siyu, "orders", write_rows(tmp_path / "orders2.csv", changed))

    assert result.rejected == 1
    assert (
        result.rejections[0].reason == "order line O1:1 was already imported with different values"
    )
    assert _scalar(siyu, sa.select(OrderLine.amount)) == 39


def test_an_order_matching_no_member_creates_one_registered_at_its_payment(
    siyu: Siyu, tmp_path: Path
) -> None:
    _import(siyu, "orders", write_rows(tmp_path / "orders.csv", ORDERS[:1]))

    member = identity_service.explain_member(session_factory=siyu.session_factory, identity="M001")
    assert member.member["registered_at"] == "2026-06-01T04:00:00+00:00"
    assert member.member["channel"] == "pos"


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_ndjson_and_parquet_give_the_same_result_as_csv(
    siyu: Siyu, tmp_path: Path, suffix: str
) -> None:
    csv_result = _import(siyu, "members", write_rows(tmp_path / "m.csv", MEMBERS))
    csv_members = identity_service.count_members(session_factory=siyu.session_factory)
    with siyu.session_factory() as session:
        session.execute(sa.text("DELETE FROM identity_observations"))
        session.execute(sa.text("DELETE FROM identity_member_nos"))
        session.execute(sa.text("DELETE FROM identities"))
        session.execute(sa.text("DELETE FROM member_records"))
        session.execute(sa.text("DELETE FROM members"))
        session.commit()

    other = _import(siyu, "members", write_rows(tmp_path / f"m{suffix}", MEMBERS))

    assert {**other.as_json(), "rejected_file": None} == {
        **csv_result.as_json(),
        "rejected_file": None,
    }
    assert [r.reason for r in other.rejections] == [r.reason for r in csv_result.rejections]
    assert identity_service.count_members(session_factory=siyu.session_factory) == csv_members


def test_broken_ndjson_line_is_rejected_with_its_line_number(siyu: Siyu, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(
        '{"event_id": "E1", "type": "page_view", "occurred_at": "2026-06-18T10:00:00",'
        ' "identities": {"phone": "13800138000"}, "properties": {"page": "home"}}\n'
        "{not json\n"
    )

    result = _import(siyu, "events", path)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.rejections[0].line == 2
    assert result.rejections[0].reason.startswith("malformed JSON")


def test_batch_boundaries_do_not_change_the_result(siyu: Siyu, tmp_path: Path) -> None:
    result = _import(siyu, "members", write_rows(tmp_path / "m.csv", MEMBERS), batch_size=1)

    assert (result.accepted, result.rejected, result.warnings) == (3, 2, 1)
    assert identity_service.count_members(session_factory=siyu.session_factory) == 2


def test_each_import_is_recorded_as_an_import_run(siyu: Siyu, tmp_path: Path) -> None:
    _import(siyu, "members", write_rows(tmp_path / "m.csv", MEMBERS))

    with siyu.session_factory() as session:
        run = session.scalars(sa.select(ImportRun)).one()
    assert (run.kind, run.accepted, run.rejected, run.warnings) == ("members", 3, 2, 1)
    assert run.finished_at is not None


def test_unknown_format_is_a_clear_error(siyu: Siyu, tmp_path: Path) -> None:
    path = tmp_path / "members.xlsx"
    path.write_text("x")
    with pytest.raises(IngestError, match="unknown format"):
        _import(siyu, "members", path)


def test_api_rows_are_ingested_and_rejections_become_dead_letters(siyu: Siyu) -> None:
    result = service.ingest_records(
        session_factory=siyu.session_factory,
        kind="orders",
        rows=[ORDERS[0], ORDERS[3]],
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
    )

    assert (result.accepted, result.rejected) == (1, 1)
    with siyu.session_factory() as session:
        letter = session.scalars(sa.select(DeadLetter)).one()
    assert (letter.source, letter.reference, letter.reason) == (
        "api:orders",
        "line 2",
        "amount: '-1' is negative",
    )


def test_an_error_during_an_import_is_raised_as_itself_and_earlier_imports_stay(
    siyu: Siyu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "write_batch", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _import(siyu, "orders", write_rows(tmp_path / "orders.csv", ORDERS))

    assert _scalar(siyu, sa.select(sa.func.count()).select_from(OrderLine)) == 0
    assert _scalar(siyu, sa.select(sa.func.count()).select_from(MemberRecord)) == 3


@pytest.mark.parametrize("fails", [False, True], ids=["after an import", "after a failed one"])
def test_the_store_checks_foreign_keys_again_once_an_import_is_over(
    sqlite_siyu: Siyu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    # The import turns SQLite's foreign-key checks off on its connection while it runs
    if fails:
        monkeypatch.setattr(service, "write_batch", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError) if fails else nullcontext():
        _import(sqlite_siyu, "members", write_rows(tmp_path / "members.csv", MEMBERS))

    with sqlite_siyu.session_factory() as session:
        assert session.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
