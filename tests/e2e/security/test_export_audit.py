"""Every file of member data that leaves siyu is audited: segment exports (API/console/CLI)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from tests.factories.people import seed_people


def test_a_segment_export_writes_a_data_export_audit_row(sqlite_siyu: Siyu) -> None:
    seed_people(sqlite_siyu.session_factory)
    with TestClient(create_app(sqlite_siyu)) as api:
        definition = {"all": [{"attr": "store_code", "op": "eq", "value": "SH001"}]}
        assert api.post(
            "/api/segments", json={"name": "sh001", "definition": definition}
        ).is_success
        exported = api.get("/api/segments/sh001/export", params={"format": "csv"})
    assert exported.status_code == 200
    with sqlite_siyu.session_factory() as session:
        row = session.execute(
            sa.text("SELECT actor, action, entity_type, entity_id FROM audit_log ORDER BY id DESC")
        ).first()
    assert tuple(row or ()) == ("api", "data.export", "segment", "sh001")
