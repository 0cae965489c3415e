"""Interview slots from the ``[appointments]`` configuration: pure arithmetic on dates.

Opening hours are local times in ``organization.timezone``; a slot is known by its
branch and its start in UTC. Closed dates and the charity's holidays have no slots.
How many places of a slot are taken comes from the caller (the database); nothing
here reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.dates import aware
from flows.types import AppointmentRules

# A slot starting sooner than this is not offered: nobody could be on time for it.
MIN_LEAD: Final = timedelta(hours=1)

Taken = Mapping[tuple[str, datetime], int]
"""Places taken by (branch, start in UTC)."""


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """One interview time: its start (aware, UTC), branch and number of places."""

    starts_at: datetime
    branch: str
    capacity: int


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Riyadh")


def branches(rules: AppointmentRules) -> tuple[str, ...]:
    """The branches that receive interviews, in the configuration's order."""
    return tuple(dict.fromkeys(hours.branch for hours in rules.hours))


def closed(rules: AppointmentRules, day: date, holidays: tuple[date, ...] = ()) -> bool:
    """Whether ``day`` (local) is a closed date or a holiday."""
    return day in rules.closed_dates or day in holidays


def slots_on(
    rules: AppointmentRules,
    branch: str,
    day: date,
    zone: str,
    holidays: tuple[date, ...] = (),
) -> tuple[Slot, ...]:
    """Every slot of ``branch`` on local ``day``, taken or not, in time order."""
    if closed(rules, day, holidays):
        return ()
    length = timedelta(minutes=rules.slot_minutes)
    local = _zone(zone)
    found: dict[datetime, Slot] = {}
    for hours in rules.hours:
        if hours.branch != branch or day.weekday() not in hours.weekdays:
            continue
        start = datetime.combine(day, hours.start, tzinfo=local)
        end = datetime.combine(day, hours.end, tzinfo=local)
        while start + length <= end:
            at = start.astimezone(UTC)
            found[at] = Slot(at, branch, hours.capacity)
            start += length
    return tuple(sorted(found.values()))


def slot_at(
    rules: AppointmentRules,
    branch: str,
    starts_at: datetime,
    zone: str,
    holidays: tuple[date, ...] = (),
) -> Slot | None:
    """The slot of ``branch`` starting exactly at ``starts_at``, or None (outside the
    hours, a closed day, not on a slot boundary)."""
    moment = aware(starts_at).astimezone(UTC)
    day = moment.astimezone(_zone(zone)).date()
    return next(
        (s for s in slots_on(rules, branch, day, zone, holidays) if s.starts_at == moment), None
    )


def window(rules: AppointmentRules, now: datetime, zone: str) -> tuple[date, ...]:
    """The local days a beneficiary may book: today and the next ``days_ahead``."""
    today = aware(now).astimezone(_zone(zone)).date()
    return tuple(today + timedelta(days=n) for n in range(rules.days_ahead + 1))


def bookable(slot: Slot, now: datetime) -> bool:
    """Whether ``slot`` starts late enough from ``now`` to be offered."""
    return slot.starts_at >= aware(now) + MIN_LEAD


def free_on(
    rules: AppointmentRules,
    branch: str,
    day: date,
    now: datetime,
    zone: str,
    taken: Taken,
    holidays: tuple[date, ...] = (),
) -> tuple[Slot, ...]:
    """The slots of ``branch`` on ``day`` that can still be booked from ``now``."""
    if day not in window(rules, now, zone):
        return ()
    return tuple(
        slot
        for slot in slots_on(rules, branch, day, zone, holidays)
        if bookable(slot, now) and taken.get((branch, slot.starts_at), 0) < slot.capacity
    )


def free_days(
    rules: AppointmentRules,
    branch: str,
    now: datetime,
    zone: str,
    taken: Taken,
    holidays: tuple[date, ...] = (),
) -> tuple[date, ...]:
    """The local days within the window on which ``branch`` has a free slot."""
    return tuple(
        day
        for day in window(rules, now, zone)
        if free_on(rules, branch, day, now, zone, taken, holidays)
    )


def local_start(slot_start: datetime, zone: str) -> datetime:
    """A slot's start in local time (for showing it)."""
    return aware(slot_start).astimezone(_zone(zone))


def local_moment(day: date, hour: int, minute: int, zone: str) -> datetime:
    """A local date and time as an aware UTC moment (the CLI's ``--at``)."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=_zone(zone))
    return local.astimezone(UTC)
