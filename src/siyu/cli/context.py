"""Per-invocation state of the CLI: settings from global options, a lazily bootstrapped Siyu."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from siyu.bootstrap import Siyu, bootstrap
from siyu.clock import Clock, FixedClock
from siyu.config import Settings

stderr = Console(stderr=True)


@dataclass
class CliState:
    data_dir: Path | None = None
    _siyu: Siyu | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self.data_dir is not None:
            return Settings(data_dir=self.data_dir)
        return Settings()

    def siyu(self, *, clock: Clock | None = None) -> Siyu:
        if self._siyu is None:
            self._siyu = bootstrap(self.settings(), clock=clock)
        return self._siyu

    def close(self) -> None:
        if self._siyu is not None:
            self._siyu.close()


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def parse_instant(value: str | None, *, timezone: str = "Asia/Shanghai") -> datetime | None:
    """Parse `--now`: ISO 8601; without an offset it is business time (DESIGN §4.2)."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--now: {value!r} is not an ISO 8601 instant (e.g. 2026-06-18T10:00:00+08:00)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC)


def clock_at(value: str | None, *, timezone: str = "Asia/Shanghai") -> Clock | None:
    instant = parse_instant(value, timezone=timezone)
    return None if instant is None else FixedClock(instant)


def fail(message: str, *, code: int = 2) -> None:
    """Print a clear error to stderr and exit non-zero."""
    stderr.print(f"[bold red]error:[/] {message}")
    sys.exit(code)
