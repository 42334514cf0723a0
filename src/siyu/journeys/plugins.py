"""Actions other domains provide, registered when their modules exist.

loyalty (issue_coupon / grant_points) and staff tasks (create_guide_task) are being built in
parallel; until a module lands, its action kinds are simply absent and applying a journey
that uses them fails with "unknown action …, available: …" rather than pretending to work.
"""

from __future__ import annotations

import importlib

from siyu.journeys.actions import ActionRegistry


def _module(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def register_available(registry: ActionRegistry) -> None:
    """Register the adapters for whichever of loyalty / staff tasks is installed."""
    loyalty = _module("siyu.loyalty.service")
    staff_tasks = _module("siyu.staff.tasks")
    del loyalty, staff_tasks  # adapters are added here as those modules land
