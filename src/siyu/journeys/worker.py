"""One pass of the worker: other domains' hooks (expiries…), events, scheduled triggers,
segment refreshes and entry/exit triggers, due steps, then deliveries. `siyu worker --once
--now INSTANT` runs exactly this, so a simulation covers months by calling it once per
simulated hour or day.

Other domains add periodic work by appending "module:function" to `WORKER_HOOKS`; the function
is called as `fn(session_factory=…, now=…)` and returns how many things it did. A hook whose
module is not installed is skipped, so domains can land in any order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from siyu.delivery.dispatcher import dispatch_due
from siyu.delivery.interface import Channel
from siyu.journeys.engine import run_due_steps
from siyu.journeys.reactions import process_events
from siyu.journeys.runtime import JourneyRuntime
from siyu.journeys.triggers import run_scheduled_triggers, run_segment_triggers, watched_segments

WORKER_HOOKS: tuple[str, ...] = (
    "siyu.loyalty.expiry:run_due_expiries",
    "siyu.loyalty.service:run_coupon_housekeeping",  # reservation timeouts, coupon expiry
    "siyu.loyalty.points_jobs:run_points_jobs",  # order points, lot expiry, tier periods
    "siyu.channels.wecom.worker:run_wecom_pass",  # callback inbox, staff-send results/reminders
    "siyu.staff.jobs:expire_overdue_tasks",  # guide tasks past due (issue #8)
    "siyu.staff.jobs:attribute_new_members",  # owner guide/store of new members (issue #8)
    "siyu.segments.jobs:refresh_scheduled_segments",  # saved segments due by schedule (#4)
)


@dataclass
class WorkerReport:
    hooks: dict[str, int] = field(default_factory=dict)
    events: int = 0
    enrolled: int = 0
    steps: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hooks": self.hooks,
            "events": self.events,
            "enrolled": self.enrolled,
            "steps": self.steps,
            "deliveries": self.deliveries,
        }


def _hook(path: str) -> Callable[..., int] | None:
    module_name, _, function = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, function, None)
    return found if callable(found) else None


def run_once(
    *,
    runtime: JourneyRuntime,
    channels: Mapping[str, Channel],
    now: datetime,
    batch_size: int = 500,
    hooks: tuple[str, ...] = WORKER_HOOKS,
) -> WorkerReport:
    report = WorkerReport()
    for path in hooks:
        hook = _hook(path)
        if hook is not None:
            report.hooks[path] = int(hook(session_factory=runtime.session_factory, now=now) or 0)
    report.events = process_events(runtime=runtime, now=now)
    report.enrolled = run_scheduled_triggers(runtime=runtime, now=now)
    if runtime.refresh_segments is not None:
        segments = watched_segments(runtime=runtime)
        if segments:
            runtime.refresh_segments(segments, now)
    report.enrolled += run_segment_triggers(runtime=runtime, now=now)
    report.steps = run_due_steps(runtime=runtime, now=now, batch_size=batch_size)
    dispatched = dispatch_due(
        session_factory=runtime.session_factory,
        channels=channels,
        now=now,
        tz=runtime.tz,
        batch_size=batch_size,
    )
    report.deliveries = dispatched.counts
    return report
