"""`siyu import …`, `siyu members …` and `siyu identity …` as a user runs them: JSON on stdout
(DESIGN §4.6), rejected-rows files, merges explained, polluted values listed, rule tags and the
warehouse brought up to date after an import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from siyu.cli.main import _register_commands, app
from tests.integration.ingest.files import write_rows

NOW = "2026-06-18T10:00:00+08:00"


def run(data_dir: Path, *args: str) -> Any:
    _register_commands()
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    return result


def cli_json(data_dir: Path, *args: str) -> Any:
    return json.loads(run(data_dir, *args, "--json").stdout)


@pytest.fixture
def data(tmp_path: Path, sqlite_template: Path) -> Path:
    """An embedded data dir whose SQLite store is already migrated (migrating per test is slow)."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "siyu.db")
    return folder


@pytest.fixture
def brand(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / "brand"
    _register_commands()
    result = CliRunner().invoke(
        app, ["generate", "--members", "200", "--seed", "11", "--out", str(folder), "--json"]
    )
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def test_a_generated_brand_imports_with_exact_counts_and_rejected_files(
    data: Path, brand: tuple[Path, dict[str, Any]]
) -> None:
    # Given Demo Tea written by `siyu generate` (with a few malformed rows per file)
    folder, manifest = brand
    cli_json(data, "import", "stores", str(folder / "stores.csv"))
    staff = cli_json(data, "import", "staff", str(folder / "staff.csv"))
    assert (staff["accepted"], staff["rejected"]) == (manifest["files"]["staff.csv"], 0)

    # When members, orders and events are imported
    files = (("members", "members.csv"), ("orders", "orders.csv"), ("events", "events.ndjson"))
    for kind, name in files:
        result = cli_json(data, "import", kind, str(folder / name), "--now", NOW, "--no-sync")

        # Then every row is accepted except exactly the malformed ones, listed beside the input
        bad = sum(manifest["malformed"][kind].values())
        assert result == {
            "accepted": manifest["files"][name] - bad,
            "rejected": bad,
            "duplicates": 0,
            "warnings": result["warnings"],
            "rejected_file": str(folder / f"{name}.rejected.csv"),
        }
        lines = (folder / f"{name}.rejected.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == bad + 1 and lines[0].endswith(",line,reason")


def test_reimporting_a_file_counts_every_row_as_a_duplicate(tmp_path: Path, data: Path) -> None:
    orders = write_rows(tmp_path / "orders.csv", [_line("O1", "1"), _line("O1", "2")])
    cli_json(data, "import", "orders", str(orders), "--no-sync")

    again = cli_json(data, "import", "orders", str(orders), "--no-sync")

    assert again == {
        "accepted": 0,
        "rejected": 0,
        "duplicates": 2,
        "warnings": 0,
        "rejected_file": None,
    }
    assert cli_json(data, "members", "count") == {"count": 1}


def test_members_show_explains_which_identity_joined_which_records(
    tmp_path: Path, data: Path
) -> None:
    # Given Wang Fang's POS account (phone) and mini-program account (unionid)
    members = write_rows(
        tmp_path / "members.csv",
        [
            {"member_no": "M001", "phone": "138-0013-8000", "name": "Wang Fang"},
            {"member_no": "M002", "unionid": "oU-wang", "name": "Wang Fang"},
        ],
    )
    cli_json(data, "import", "members", str(members), "--no-sync")

    # When an order carries both the phone and the unionid
    bridge = {**_line("O1", "1"), "member_no": "", "phone": "13800138000", "unionid": "oU-wang"}
    cli_json(data, "import", "orders", str(write_rows(tmp_path / "o.csv", [bridge])), "--no-sync")

    # Then both accounts are one member, and `members show` says why
    assert cli_json(data, "members", "count") == {"count": 1}
    shown = cli_json(data, "members", "show", "oU-wang")
    assert [(m["merged_id"], m["survivor_id"], m["via"]) for m in shown["merges"]] == [
        (2, 1, "unionid:oU-wang")
    ]
    records = {i["type"]: i["records"] for i in shown["identities"]}
    assert records["unionid"] == ["member:M002", "order:O1:1"]
    assert records["phone"] == ["member:M001", "order:O1:1"]
    text = run(data, "members", "show", "+86 138 0013 8000").stdout
    assert "member 2 merged into 1 via unionid:oU-wang on order:O1:1" in text


def test_a_placeholder_phone_is_listed_as_polluted_and_merges_nobody(
    tmp_path: Path, data: Path
) -> None:
    # Given 21 member_nos that a store registered with its counter phone (limit is 20)
    rows = [{"member_no": f"M{n:03}", "phone": "13800000000"} for n in range(21)]
    cli_json(data, "import", "members", str(write_rows(tmp_path / "m.csv", rows)), "--no-sync")

    assert cli_json(data, "identity", "polluted") == [
        {"type": "phone", "value": "13800000000", "member_nos": 21}
    ]
    assert cli_json(data, "members", "count") == {"count": 21}
    rebuilt = cli_json(data, "identity", "rebuild")
    assert rebuilt == {"records": 21, "merges": 0, "splits": 0, "polluted": 1}


def test_an_import_recomputes_rule_tags_and_syncs_the_warehouse(tmp_path: Path, data: Path) -> None:
    # Given a rule tag "value:buyer" for members with an order in the last 90 days
    run(data, "tags", "group-create", "value")
    rule = json.dumps(
        {"event": "order_paid", "within_days": 90, "count": {"op": "gte", "value": 1}}
    )
    run(data, "tags", "define", "value:buyer", "--rule", rule)

    # When Wang Fang's order is imported
    orders = write_rows(tmp_path / "orders.csv", [_line("O1", "1")])
    result = run(data, "import", "orders", str(orders), "--now", NOW, "--json")

    # Then stdout is only the JSON result, and the tag and the warehouse are current
    assert json.loads(result.stdout)["accepted"] == 1
    listed = cli_json(data, "tags", "list")
    assert {t["tag"]: t["members"] for t in listed} == {"value:buyer": 1}
    report = cli_json(data, "report", "repurchase", "--as-of", "2026-06-18")
    assert report["buyers"] == 1


def _line(order_id: str, line_no: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "line_no": line_no,
        "member_no": "M001",
        "paid_at": "2026-06-01T12:00:00",
        "amount": "39.00",
        "status": "paid",
        "category": "tea",
        "sku": "T1",
        "store_code": "SH001",
    }
