"""`siyu import stores|staff`: the brand's directory, upserted by code and staff_no."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.ingest import directory
from siyu.staff.models import Staff, Store
from tests.integration.ingest.files import write_rows

STORES = [
    {
        "store_code": "SH001",
        "name": "Demo Tea Jing'an",
        "city": "Shanghai",
        "region": "East",
        "kind": "direct",
    },
    {
        "store_code": "BJ001",
        "name": "Demo Tea Sanlitun",
        "city": "Beijing",
        "region": "North",
        "kind": "kiosk",
    },
]
STAFF = [
    {
        "staff_no": "xiaoli",
        "name": "Xiao Li",
        "role": "guide",
        "store_code": "SH001",
        "region": "East",
    },
    {
        "staff_no": "laowang",
        "name": "Lao Wang",
        "role": "guide",
        "store_code": "GZ009",
        "region": "South",
    },
]


def test_stores_then_staff_import_with_reasons(siyu: Siyu, tmp_path: Path) -> None:
    now = siyu.clock.now()
    stores = directory.import_stores(
        session_factory=siyu.session_factory,
        path=write_rows(tmp_path / "stores.csv", STORES),
        now=now,
    )
    staff = directory.import_staff(
        session_factory=siyu.session_factory,
        path=write_rows(tmp_path / "staff.csv", STAFF),
        now=now,
    )

    assert (stores.accepted, [r.reason for r in stores.rejections]) == (
        1,
        ["kind: 'kiosk' is not one of direct, franchise, online"],
    )
    assert (staff.accepted, [r.reason for r in staff.rejections]) == (
        1,
        ["store_code: no store 'GZ009' (import stores first)"],
    )
    with siyu.session_factory() as session:
        guide = session.scalars(sa.select(Staff)).one()
        store = session.get(Store, guide.store_id)
    assert (guide.name, store.code if store else None) == ("Xiao Li", "SH001")


def test_reimporting_stores_counts_duplicates_and_applies_changes(
    siyu: Siyu, tmp_path: Path
) -> None:
    now = siyu.clock.now()
    path = write_rows(tmp_path / "stores.csv", STORES[:1])
    directory.import_stores(session_factory=siyu.session_factory, path=path, now=now)

    same = directory.import_stores(session_factory=siyu.session_factory, path=path, now=now)
    renamed = [{**STORES[0], "name": "Demo Tea Jing'an Flagship"}]
    changed = directory.import_stores(
        session_factory=siyu.session_factory, path=write_rows(tmp_path / "s2.csv", renamed), now=now
    )

    assert (same.duplicates, changed.accepted) == (1, 1)
    with siyu.session_factory() as session:
        assert session.scalars(sa.select(Store.name)).all() == ["Demo Tea Jing'an Flagship"]


def test_pos_role_names_store_manager_and_ba_read_as_manager_and_guide(
    siyu: Siyu, tmp_path: Path
) -> None:
    now = siyu.clock.now()
    directory.import_stores(
        session_factory=siyu.session_factory,
        path=write_rows(tmp_path / "stores.csv", STORES[:1]),
        now=now,
    )
    rows = [
        {**STAFF[0], "staff_no": "laozhang", "name": "Lao Zhang", "role": "store_manager"},
        {**STAFF[0], "role": "BA"},
    ]

    result = directory.import_staff(
        session_factory=siyu.session_factory, path=write_rows(tmp_path / "staff.csv", rows), now=now
    )

    assert (result.accepted, result.rejected) == (2, 0)
    with siyu.session_factory() as session:
        roles = {no: role for no, role in session.execute(sa.select(Staff.staff_no, Staff.role))}
    assert roles == {"laozhang": "manager", "xiaoli": "guide"}
