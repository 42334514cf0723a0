"""When a wait ends and when a schedule fires, in the business time zone (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from siyu.journeys.definition import ScheduleTrigger, WaitUntilStep


def wait_until(step: WaitUntilStep, *, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant strictly after `after` matching the step's date/weekday and time of day."""
    local = after.astimezone(tz)
    if step.on_date is not None:
        candidate = datetime.combine(step.on_date, step.time, tzinfo=tz)
        # A fixed date already past fires at once rather than never (a late-enrolled member).
        return max(candidate, after).astimezone(UTC)
    day = local.date()
    for offset in range(8):
        current = day + timedelta(days=offset)
        candidate = datetime.combine(current, step.time, tzinfo=tz)
        if candidate <= local:
            continue
        if step.weekday is not None and current.weekday() != step.weekday.number:
            continue
        return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a weekday repeats within 8 days")


def schedule_slots(
    trigger: ScheduleTrigger, *, since: datetime | None, until: datetime
) -> list[datetime]:
    """Slots of a recurring schedule in (since, until], oldest first (at most 400 at once)."""
    slots: list[datetime] = []
    tz = trigger.start.tzinfo
    start_local = trigger.start
    index = 0
    while len(slots) < 400:
        slot = _nth_slot(trigger.every, start_local, index, tz)
        if slot is None or slot > until:
            break
        if since is None or slot > since:
            slots.append(slot.astimezone(UTC))
        index += 1
    return slots


def _nth_slot(every: str, start: datetime, index: int, tz: object) -> datetime | None:
    if every == "once":
        return start if index == 0 else None
    if every == "day":
        return start + timedelta(days=index)
    if every == "week":
        return start + timedelta(weeks=index)
    month = start.month - 1 + index
    year, month = start.year + month // 12, month % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, _days_in(year, month)))


def _days_in(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def anniversary_matches(value: date, *, on: date, offset_days: int) -> bool:
    """Whether a yearly date falls `offset_days` before `on` (29 Feb counts on 28 Feb)."""
    target = on - timedelta(days=offset_days)
    month, day = value.month, value.day
    if (month, day) == (2, 29) and _days_in(target.year, 2) == 28:
        day = 28
    return (target.month, target.day) == (month, day)


def business_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def at_business_time(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
