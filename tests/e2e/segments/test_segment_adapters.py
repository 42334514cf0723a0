"""`siyu segment …`, /api/segments and the console segment pages over Demo Tea.

Demo Tea: Wang Fang (F, two paid orders in the last 365 days) and Zhang Wei (M, no order). The
warehouse is filled by the real sync (the adapters sync before evaluating).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pa_parquet
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.bootstrap import Siyu, bootstrap
from siyu.cli.main import _register_commands, app
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from tests.e2e.console.helpers import csrf_from, login
from tests.factories.brand import PASSWORD, add_member, hq_user, seed_demo_tea

NOW = FixedClock(datetime(2026, 6, 18, 2, 0, tzinfo=UTC))
REPEAT_BUYERS = {"event": "order_paid", "within_days": 365, "count": {"op": "gte", "value": 2}}
MEN = {"attr": "gender", "op": "eq", "value": "M"}


def _demo_tea(siyu: Siyu) -> int:
    wang_fang = seed_demo_tea(siyu.session_factory)
    with transaction(siyu.session_factory) as db:
        add_member(db, name="Zhang Wei", identities={"phone": "13900001111"}, gender="M")
    return wang_fang.member_id


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    siyu = bootstrap(settings, clock=NOW)
    _demo_tea(siyu)
    siyu.close()
    return settings.data_dir


def cli(data_dir: Path, *args: str, code: int = 0) -> Any:
    _register_commands()
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result.output


NOW_ARG = ("--now", "2026-06-18T10:00:00+08:00")


def test_cli_counts_and_samples_a_segment_with_masked_names(data_dir: Path) -> None:
    counted = cli(data_dir, "segment", "count", "--json", json.dumps(REPEAT_BUYERS), *NOW_ARG)
    sampled = cli(data_dir, "segment", "sample", "--json", json.dumps(REPEAT_BUYERS), *NOW_ARG)
    assert counted == {"count": 1}
    assert [(m["name"], m["gender"]) for m in sampled["sample"]] == [("W********", "F")]


def test_cli_reads_the_definition_from_a_file(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "men.json"
    path.write_text(json.dumps(MEN), encoding="utf-8")
    assert cli(data_dir, "segment", "count", "--json", f"@{path}") == {"count": 1}


def test_cli_names_the_json_path_of_an_invalid_definition(data_dir: Path) -> None:
    bad = {"all": [{"attr": "gender", "op": "has", "value": "F"}]}
    output = cli(data_dir, "segment", "count", "--json", json.dumps(bad), code=2)
    assert "$.all[0].op" in output


def test_cli_saves_refreshes_diffs_lists_and_exports(data_dir: Path, tmp_path: Path) -> None:
    saved = cli(data_dir, "segment", "save", "repeat", "--json", json.dumps(REPEAT_BUYERS),
                "--description", "bought twice in a year", "--schedule", "hourly")  # fmt: skip
    refreshed = cli(data_dir, "segment", "refresh", "repeat", *NOW_ARG)
    changes = cli(data_dir, "segment", "diff", "repeat")
    listed = cli(data_dir, "segment", "list", "--json")
    shown = cli(data_dir, "segment", "show", "repeat", "--json")
    out = tmp_path / "repeat.parquet"
    exported = cli(data_dir, "segment", "export", "--segment", "repeat", "--out", str(out),
                   "--format", "parquet", *NOW_ARG)  # fmt: skip
    assert saved["schedule"] == "hourly"
    assert [(r["refreshed"], r["count"], r["entered"]) for r in refreshed] == [(True, 1, 1)]
    assert len(changes["entered"]) == 1 and changes["exited"] == []
    assert [(s["name"], s["last_count"]) for s in listed] == [("repeat", 1)]
    assert [p["member_count"] for p in shown["history"]] == [1]
    assert exported["rows"] == 1
    assert pa_parquet.read_table(out).column("member_id").to_pylist() == changes["entered"]


def test_cli_refuses_an_unknown_segment(data_dir: Path) -> None:
    assert "segment_not_found" in cli(data_dir, "segment", "diff", "nobody", code=2)


# --- API ----------------------------------------------------------------------------------------


@pytest.fixture
def api(sqlite_siyu: Siyu) -> Iterator[TestClient]:
    _demo_tea(sqlite_siyu)
    with TestClient(create_app(sqlite_siyu)) as client:
        yield client


def test_api_previews_a_count_and_a_masked_sample(api: TestClient) -> None:
    answer = api.post("/api/segments/preview", params={"sync": True},
                      json={"definition": REPEAT_BUYERS})  # fmt: skip
    again = api.get("/api/segments/preview", params={"definition": json.dumps(REPEAT_BUYERS)})
    assert answer.status_code == 200
    assert answer.json()["count"] == 1
    assert answer.json()["sample"][0]["name"] == "W********"
    assert again.json()["count"] == 1


def test_api_preview_says_it_was_answered_from_the_bitmap_index(api: TestClient) -> None:
    # Given a synced warehouse (the sync keeps the member bitmap index)
    api.post("/api/segments/preview", params={"sync": True}, json={"definition": MEN})
    # When an attribute segment and a behaviour segment are previewed
    men = api.post("/api/segments/preview", json={"definition": MEN}).json()
    buyers = api.post("/api/segments/preview", json={"definition": REPEAT_BUYERS}).json()
    # Then the first came from bitmaps, the second from SQL, with the same kind of answer
    assert (men["count"], men["answered_by"]) == (1, "bitmap index")
    assert (buyers["count"], buyers["answered_by"]) == (1, "SQL")


def test_api_answers_422_with_the_problems_of_a_bad_definition(api: TestClient) -> None:
    answer = api.post("/api/segments/preview", json={"definition": {"all": [{"tag": ""}]}})
    assert answer.status_code == 422
    assert answer.json()["detail"]["problems"][0].startswith("$.all[0].tag")


def test_api_creates_refreshes_diffs_and_exports_a_segment(api: TestClient) -> None:
    created = api.post("/api/segments", json={"name": "men", "definition": MEN})
    duplicate = api.post("/api/segments", json={"name": "men", "definition": MEN})
    refreshed = api.post("/api/segments/men/refresh")
    changes = api.get("/api/segments/men/diff")
    detail = api.get("/api/segments/men")
    exported = api.get("/api/segments/men/export", params={"format": "csv"})
    assert created.status_code == 201 and duplicate.status_code == 409
    assert refreshed.json()["member_count"] == 1 and refreshed.json()["entered"] == 1
    assert len(changes.json()["entered"]) == 1
    assert [p["member_count"] for p in detail.json()["history"]] == [1]
    lines = io.StringIO(exported.text).read().splitlines()
    assert lines[0].startswith('"member_id","gender"') and len(lines) == 2


def test_api_updates_and_deletes_a_segment(api: TestClient) -> None:
    api.post("/api/segments", json={"name": "men", "definition": MEN})
    updated = api.put("/api/segments/men", json={"definition": REPEAT_BUYERS, "schedule": "manual"})
    deleted = api.delete("/api/segments/men")
    assert updated.json()["definition"] == REPEAT_BUYERS and updated.json()["schedule"] == "manual"
    assert deleted.status_code == 204
    assert api.get("/api/segments/men").status_code == 404


# --- console ------------------------------------------------------------------------------------


@pytest.fixture
def console(sqlite_siyu: Siyu) -> Iterator[TestClient]:
    _demo_tea(sqlite_siyu)
    hq_user(sqlite_siyu.session_factory, sqlite_siyu.clock)
    with TestClient(create_app(sqlite_siyu)) as client:
        login(client, "zhang.hq", PASSWORD)
        yield client


def test_console_builder_previews_live_and_saves_a_segment(console: TestClient) -> None:
    builder = console.get("/console/segments/new")
    token = csrf_from(builder.text)
    live = console.post("/console/segments/preview", json={"definition": REPEAT_BUYERS},
                        headers={"X-CSRF-Token": token})  # fmt: skip
    form = {"csrf_token": token, "name": "repeat", "definition": json.dumps(REPEAT_BUYERS),
            "description": "bought twice", "schedule": "daily"}  # fmt: skip
    saved = console.post("/console/segments", data=form, follow_redirects=True)
    assert builder.status_code == 200 and 'id="live-count"' in builder.text
    assert live.json()["count"] == 1
    assert saved.status_code == 200 and "bought twice" in saved.text
    assert "repeat" in console.get("/console/segments").text


def test_console_preview_without_the_csrf_header_is_refused(console: TestClient) -> None:
    answer = console.post("/console/segments/preview", json={"definition": MEN})
    assert answer.status_code == 403


def test_console_shows_the_problems_of_an_invalid_definition(console: TestClient) -> None:
    token = csrf_from(console.get("/console/segments/new").text)
    bad = {"attr": "shoe_size", "op": "eq", "value": 38}
    form = {"csrf_token": token, "name": "odd", "definition": json.dumps(bad)}
    answer = console.post("/console/segments", data=form)
    assert answer.status_code == 422
    assert "$.attr" in answer.text and "unknown attribute" in answer.text


def test_console_detail_shows_the_history_after_a_refresh(console: TestClient) -> None:
    token = csrf_from(console.get("/console/segments/new").text)
    form = {"csrf_token": token, "name": "men", "definition": json.dumps(MEN)}
    console.post("/console/segments", data=form)
    page = console.post("/console/segments/men/refresh", data={"csrf_token": token},
                        follow_redirects=True)  # fmt: skip
    exported = console.get("/console/segments/men/export", params={"format": "csv"})
    assert page.status_code == 200
    assert "Count history" in page.text and "<svg" in page.text
    assert exported.status_code == 200 and exported.text.count("\n") == 2


def test_a_rule_tag_may_refer_to_a_saved_segment_which_then_cannot_be_deleted(
    data_dir: Path,
) -> None:
    cli(data_dir, "segment", "save", "men", "--json", json.dumps(MEN))
    cli(data_dir, "tags", "group-create", "audience")
    cli(data_dir, "tags", "define", "audience:men", "--rule", json.dumps({"segment": "men"}))
    recomputed = cli(data_dir, "tags", "recompute", *NOW_ARG, "--json")
    refused = cli(data_dir, "segment", "delete", "men", code=2)
    assert recomputed["tags"] == [{"tag": "audience:men", "members": 1, "added": 1, "removed": 0}]
    assert "segment_in_use" in refused
