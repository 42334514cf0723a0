"""`siyu coupon …`: create templates from YAML, issue to a member file, show a wallet, expire."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from siyu.bootstrap import bootstrap
from siyu.cli.main import _register_commands, app
from siyu.config import Settings
from tests.integration.loyalty.coupon_fixtures import members

TEMPLATE = """\
code: NEW_CASH_10
name: 新人无门槛10元
kind: cash
value_fen: 1000
valid_days: 7
budget_total: 2
"""
NOW = "2026-06-18T10:00:00+08:00"


def run(data_dir: Path, *args: str) -> object:
    _register_commands()
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])


def test_issue_to_a_member_file_then_show_the_wallet(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "t.yaml").write_text(TEMPLATE, encoding="utf-8")
    created = run(data, "coupon", "template-create", str(tmp_path / "t.yaml"), "--now", NOW)
    assert created.exit_code == 0, created.output  # type: ignore[attr-defined]
    siyu = bootstrap(Settings(data_dir=data))
    ids = members(siyu.session_factory, "Wang Fang", "Li Na", "Zhang Wei")
    siyu.close()
    (tmp_path / "ids.csv").write_text("member_id\n" + "\n".join(map(str, ids)), encoding="utf-8")

    issued = run(
        data,
        "coupon",
        "issue",
        "NEW_CASH_10",
        "--members",
        str(tmp_path / "ids.csv"),
        "--now",
        NOW,
        "--json",
    )
    assert issued.exit_code == 0, issued.output  # type: ignore[attr-defined]
    report = json.loads(issued.stdout)  # type: ignore[attr-defined]
    assert (report["issued"], report["skipped"], report["budget_exhausted"]) == (2, 1, True)

    wallet = run(data, "coupon", "wallet", f"id:{ids[0]}", "--now", NOW, "--json")
    coupons = json.loads(wallet.stdout)["coupons"]  # type: ignore[attr-defined]
    assert [(c["template_code"], c["state"]) for c in coupons] == [("NEW_CASH_10", "issued")]

    expired = run(data, "coupon", "expire", "--now", "2026-06-26T10:00:00+08:00", "--json")
    assert json.loads(expired.stdout)["coupons_expired"] == 2  # type: ignore[attr-defined]


def test_a_bad_template_file_names_the_field_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(TEMPLATE.replace("value_fen: 1000", "value_fen: 0"))
    result = run(tmp_path / "data", "coupon", "template-create", str(tmp_path / "t.yaml"))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "value_fen must be > 0" in result.output  # type: ignore[attr-defined]


def test_pause_and_resume_a_template_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "t.yaml").write_text(TEMPLATE, encoding="utf-8")
    run(data, "coupon", "template-create", str(tmp_path / "t.yaml"), "--now", NOW)
    paused = run(data, "coupon", "pause", "NEW_CASH_10", "--json")
    assert json.loads(paused.output) == {"code": "NEW_CASH_10", "status": "paused"}  # type: ignore[attr-defined]
    resumed = run(data, "coupon", "resume", "NEW_CASH_10")
    assert resumed.output.strip() == "template NEW_CASH_10 is active"  # type: ignore[attr-defined]
    missing = run(data, "coupon", "pause", "NO_SUCH")
    assert missing.exit_code != 0  # type: ignore[attr-defined]
    assert "template_not_found" in missing.output  # type: ignore[attr-defined]
