"""Actions other domains provide to journeys (coupons, points, staff tasks), found by module name.

How a domain adds an action kind (no edit of the journeys package needed):
1. Write a class with `kind`, `validate(params)` and `execute(ctx, params) -> str` (the
   `actions.JourneyAction` protocol). `execute` writes only through `ctx.db_session`, never
   commits, and keys any effect by `ctx.idempotency_key` (UNIQUE on your side), so a step that
   is retried after a crash cannot issue a second coupon.
2. Expose it from a module listed in `PROVIDER_MODULES` below, as a function
   `journey_actions() -> list[JourneyAction]` (no arguments; compose what you need inside).
   The names are reserved now: `siyu.loyalty.journey_actions` (issue_coupon, grant_points) and
   `siyu.staff.journey_actions` (create_staff_task). Another domain appends one line here.
3. A journey that uses the kind is then accepted by `apply` (its `validate` runs there) and run
   by the worker; until the module exists, applying it fails with "unknown action …,
   available: …" rather than pretending to work.

A provider module that exists but fails to import (half-landed work of another domain) is
logged at ERROR with its traceback and skipped, so journeys that do not use its kinds keep
running; a journey that does use them is refused as "unknown action", never run half-wired.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from siyu.journeys.actions import ActionRegistry, JourneyAction

log = logging.getLogger(__name__)

PROVIDER_MODULES: tuple[str, ...] = (
    "siyu.loyalty.journey_actions",  # issue_coupon, grant_points (loyalty issue)
    "siyu.staff.journey_actions",  # create_staff_task (staff tasks / WeCom issue)
    "siyu.channels.wecom.journey_actions",  # wecom_send: staff-confirmed 1:1/group/moments
)


class ActionProvider(Protocol):
    def journey_actions(self) -> Iterable[JourneyAction]: ...


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package itself is absent
        return False


def provided_actions(modules: Iterable[str] = PROVIDER_MODULES) -> list[JourneyAction]:
    """Every action the installed provider modules expose, in module order."""
    found: list[JourneyAction] = []
    for name in modules:
        if not _installed(name):
            continue
        try:
            module: ActionProvider = importlib.import_module(name)  # type: ignore[assignment]
        except ImportError:
            log.exception("journey action provider %s does not import: its actions are off", name)
            continue
        found.extend(module.journey_actions())
    return found


def register_available(registry: ActionRegistry) -> None:
    """Register the actions of whichever provider modules are installed."""
    for action in provided_actions():
        registry.register(action)
