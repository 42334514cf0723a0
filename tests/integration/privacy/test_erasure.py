"""PIPL erasure and export: no personal value left in either store, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.identity import queries
from siyu.identity import service as identity_service
from siyu.identity.models import Identity, IdentityMemberNo, MemberRecord
from siyu.ingest import service as ingest_service
from siyu.ingest.models import DeadLetter, Event
from siyu.orders.models import OrderLine
from siyu.privacy import service
from siyu.privacy.errors import PrivacyError
from siyu.segments.service import preview_segment
from siyu.warehouse.sync import sync_all
from tests.factories.brand import WangFang, add_member, merge_into, seed_demo_tea

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SECRETS = ["13812345678", "Wang Fang", "M0001", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "wf-wecom-ext-77"]


def _seed(siyu: Siyu) -> WangFang:
    persona = seed_demo_tea(siyu.session_factory)
    with transaction(siyu.session_factory) as session:
        session.add(
            MemberRecord(
                record_key="pos:row-17", member_id=persona.member_id, member_no="M0001",
                phone="13812345678", name="Wang Fang", row_hash="h", updated_at=T0,
            )
        )  # fmt: skip
        session.add(
            Event(
                event_id="ev-1", type="mini_program_visit", occurred_at=T0,
                member_id=persona.member_id, identities={"phone": "13812345678"},
                properties={"page": "/tea", "nickname": "Wang Fang"}, received_at=T0,
            )
        )  # fmt: skip
        session.add(
            OrderLine(
                order_id="SO-9", line_no=1, member_id=persona.member_id, phone="13812345678",
                member_no="M0001", store_code="SH001", channel="pos", paid_at=T0,
                amount=12, status="paid", category="tea", sku="x", row_hash="r9", imported_at=T0,
            )
        )  # fmt: skip
        session.add(
            DeadLetter(
                source="orders.csv", reference="line 4", reason="bad amount",
                payload={"phone": "13812345678", "amount": "-1"}, received_at=T0,
            )
        )  # fmt: skip
        old = add_member(
            session, name="Wang Fang", identities={"external_userid": "wf-wecom-ext-77"}
        )
        merge_into(session, merged=old, survivor_id=persona.member_id, via=("phone", "13812345678"))
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    return persona


def _files(siyu: Siyu, tmp_path: Path) -> list[Path]:
    siyu.warehouse.close()
    return [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix in {".db", ".duckdb", ".wal", ".db-wal"}
    ]


def test_erasure_leaves_no_personal_value_in_either_store(
    sqlite_siyu: Siyu, tmp_path: Path
) -> None:
    siyu = sqlite_siyu
    persona = _seed(siyu)
    before = b"".join(p.read_bytes() for p in _files(siyu, tmp_path))
    assert b"13812345678" in before  # the search below would find a value that is there

    counts = service.erase_member(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
        member_id=persona.member_id, viewer=Viewer.system("dpo"),
    )  # fmt: skip

    assert counts["identities"] == 4
    files = _files(siyu, tmp_path)
    assert {p.suffix for p in files} >= {".db", ".duckdb"}
    for path in files:
        data = path.read_bytes()
        for value in SECRETS:
            assert value.encode() not in data, f"{value} still in {path.name}"


def test_erased_member_keeps_orders_for_reports_but_is_not_found(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    persona = _seed(siyu)
    service.erase_member(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
        member_id=persona.member_id, viewer=Viewer.system("dpo"),
    )  # fmt: skip
    assert queries.search_members(session_factory=siyu.session_factory, query="Wang").total == 0
    total = siyu.warehouse.query("SELECT sum(amount) FROM order_lines")[0][0]
    assert float(total) == 135.50  # 78 + 45.50 + 12: aggregates unchanged


def test_export_contains_the_members_rows_and_is_audited(sqlite_siyu: Siyu) -> None:
    siyu = sqlite_siyu
    persona = _seed(siyu)
    data = service.export_member_data(
        session_factory=siyu.session_factory, clock=siyu.clock, member_id=persona.member_id,
        viewer=Viewer.system("dpo"),
    )  # fmt: skip
    assert {"members", "identities", "order_lines", "events", "member_records"} <= set(
        data["tables"]
    )
    assert data["tables"]["members"][0]["name"] == "Wang Fang"
    with siyu.session_factory() as session:
        from sqlalchemy import text

        actions = session.execute(text("SELECT action FROM audit_log")).scalars().all()
    assert "member.export_data" in actions


def test_only_hq_may_erase(sqlite_siyu: Siyu) -> None:
    persona = _seed(sqlite_siyu)
    analyst = Viewer(role=Role.ANALYST, actor="chen.analyst")
    with pytest.raises(PrivacyError):
        service.erase_member(
            session_factory=sqlite_siyu.session_factory, warehouse=None, clock=sqlite_siyu.clock,
            member_id=persona.member_id, viewer=analyst,
        )  # fmt: skip


def test_an_erased_member_leaves_attribute_segments_answered_from_the_index(
    sqlite_siyu: Siyu,
) -> None:
    # Given Wang Fang synced, in the "women" segment the bitmap index answers
    siyu = sqlite_siyu
    persona = _seed(siyu)
    women = {"attr": "gender", "op": "eq", "value": "F"}
    before = preview_segment(warehouse=siyu.warehouse, definition=women, now=T0)
    # When she is erased
    service.erase_member(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
        member_id=persona.member_id, viewer=Viewer.system("dpo"),
    )  # fmt: skip
    # Then her gender is gone from the index too, which stays current
    after = preview_segment(warehouse=siyu.warehouse, definition=women, now=T0)
    assert (before.count, before.answered_by) == (1, "bitmap index")
    assert (after.count, after.answered_by) == (0, "bitmap index")


def test_erasure_forgets_the_erased_values_in_order_line_evidence(sqlite_siyu: Siyu) -> None:
    # Given Wang Fang imported with her phone, and a line of another member carrying it too
    siyu = sqlite_siyu
    wang = {"member_no": "M0001", "phone": "13812345678"}
    line = {"order_id": "SO-1", "paid_at": "2026-03-01T10:00:00", "amount": "12.00"}
    for kind, rows in (
        ("members", [wang]),
        ("orders", [{**line, "member_no": "M0001", "phone": "13812345678"}]),
        ("orders", [{**line, "order_id": "SO-2", "member_no": "M0009", "phone": "13812345678"}]),
    ):
        ingest_service.ingest_records(
            session_factory=siyu.session_factory, kind=kind, rows=rows, now=siyu.clock.now(),
            tz=siyu.settings.tz, max_member_nos=1,
        )  # fmt: skip
    member_id = identity_service.find_member_by_identity(
        session_factory=siyu.session_factory, identity="M0001"
    )

    service.erase_member(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
        member_id=member_id, viewer=Viewer.system("dpo"),
    )  # fmt: skip

    # Then no line names an erased identity and no pair of them is left
    with siyu.session_factory() as session:
        kept = set(session.scalars(sa.select(Identity.id)))
        evidence = session.execute(
            sa.select(OrderLine.member_no_identity_id, OrderLine.phone_identity_id)
        ).all()
        pairs = session.execute(sa.select(IdentityMemberNo.identity_id)).all()
    named = {i for row in evidence for i in row if i is not None}
    assert named <= kept
    assert len(named) == 1  # M0009's own member_no
    assert pairs == []
