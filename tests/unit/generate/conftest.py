"""A generated brand shared by the format tests: generating is deterministic, so once is enough."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from siyu.generate import GenerateRequest, generate


class Brand:
    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        self._rows: dict[str, list[dict[str, str]]] = {}

    def rows(self, name: str) -> list[dict[str, str]]:
        """The file's rows (read once; tests must not mutate them)."""
        if name not in self._rows:
            with (self.directory / name).open(encoding="utf-8", newline="") as handle:
                self._rows[name] = list(csv.DictReader(handle))
        return self._rows[name]

    def events(self) -> list[dict[str, Any]]:
        with (self.directory / "events.ndjson").open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Brand:
    """20,000 members of "Demo Tea" over 2024-01-01 … 2026-06-30, seed 7."""
    directory = tmp_path_factory.mktemp("brand")
    manifest = generate(directory, GenerateRequest(members=20_000, seed=7))
    return Brand(directory, manifest)
