"""`siyu generate` writes the brand, prints a summary or the manifest, refuses bad options."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from siyu.cli.main import _register_commands, app


def run(*args: str) -> object:
    _register_commands()
    return CliRunner().invoke(app, list(args))


def test_generate_json_prints_the_manifest_it_wrote(tmp_path: Path) -> None:
    # When a user generates a 300-member brand as JSON
    result = run("generate", "--members", "300", "--seed", "11", "--out", str(tmp_path), "--json")

    # Then stdout is the manifest, identical to manifest.json
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert printed["counts"]["members"] == 300
    assert printed["seed"] == 11


def test_generate_parquet_with_a_custom_period_and_store_count(tmp_path: Path) -> None:
    result = run(
        "generate",
        "--members",
        "200",
        "--out",
        str(tmp_path),
        "--format",
        "parquet",
        "--start",
        "2025-01-01",
        "--end",
        "2025-12-31",
        "--stores",
        "4",
    )

    assert result.exit_code == 0, result.output
    assert "200 members" in result.stdout
    assert (tmp_path / "members.parquet").exists() and (tmp_path / "orders.parquet").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["physical_stores"] == 4
    assert (manifest["start"], manifest["end"]) == ("2025-01-01", "2025-12-31")


def test_an_unknown_format_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    result = run("generate", "--members", "10", "--out", str(tmp_path / "x"), "--format", "xlsx")

    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_a_malformed_start_date_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    result = run(
        "generate", "--members", "10", "--out", str(tmp_path / "x"), "--start", "2025-13-01"
    )

    assert result.exit_code == 2
