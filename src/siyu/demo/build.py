"""Stages of the demo build, in order; each returns one line saying what it left behind.

The build is deterministic for a seed and an as-of instant, and writes `demo.json` into the data
folder when it finishes, so `siyu demo` can serve an existing demo without rebuilding it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from siyu.bootstrap import Siyu

DEMO_ADMIN = ("admin", "siyu-demo")
# (username, password, role): a supervisor and a guide, bound to staff of the generated roster.
DEMO_USERS = (("supervisor", "siyu-demo", "supervisor"), ("guide", "siyu-demo", "guide"))
MARKER = "demo.json"


@dataclass
class DemoContext:
    siyu: Siyu
    input_dir: Path
    members: int
    seed: int
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.siyu.clock.now()


@dataclass(frozen=True)
class DemoStage:
    name: str
    run: Callable[[DemoContext], str]


def marker_path(siyu: Siyu) -> Path:
    return siyu.settings.data_dir / MARKER


def read_marker(siyu: Siyu) -> dict[str, Any] | None:
    path = marker_path(siyu)
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def build_demo(
    siyu: Siyu,
    *,
    input_dir: Path,
    members: int,
    seed: int,
    stages: tuple[DemoStage, ...] | None = None,
    on_stage: Callable[[str, str], None] = lambda name, line: None,
) -> dict[str, Any]:
    """Run every stage, then record what was built in `demo.json`."""
    from siyu.demo.stages import STAGES

    context = DemoContext(siyu=siyu, input_dir=input_dir, members=members, seed=seed)
    lines: dict[str, str] = {}
    for stage in stages or STAGES:
        lines[stage.name] = stage.run(context)
        on_stage(stage.name, lines[stage.name])
    summary = {
        "built_at": context.now.isoformat(),
        "members": members,
        "seed": seed,
        "stages": lines,
        "facts": context.facts,
    }
    marker_path(siyu).write_text(json.dumps(summary, ensure_ascii=False, indent=2), "utf-8")
    return summary
