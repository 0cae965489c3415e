"""The charity's working hours: read from the configuration, told to a beneficiary waiting
for a person ("Sunday–Thursday, 8am–4pm"), and when the next one starts if it is closed now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from babel.dates import get_day_names

from flows.catalogue import text
from flows.dates import local_time
from flows.text import localize_digits
from flows.types import Language

DEFAULT_WORKING_HOURS: Final = "sun-thu 08:00-16:00"
# Python's weekday numbers (Monday 0) by the names the configuration uses.
DAYS: Final = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_SPAN = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True, slots=True)
class Span:
    """Some days of the week (``first`` to ``last``, across the week's end if need be),
    from ``start`` to ``end`` each of them."""

    first: int
    last: int
    start: time
    end: time

    def days(self) -> list[int]:
        count = (self.last - self.first) % 7 + 1
        return [(self.first + n) % 7 for n in range(count)]


def parse_working_hours(spec: str) -> tuple[Span, ...]:
    """``"sun-thu 08:00-16:00"``, several spans separated by commas
    (``"sun-thu 08:00-16:00, sat 09:00-12:00"``).

    Raises:
        ValueError: with a sentence saying what is expected.
    """
    spans = []
    for part in spec.lower().split(","):
        match = _SPAN.match(part)
        if match is None or match["first"] not in DAYS or (match["last"] or "sun") not in DAYS:
            raise ValueError(
                'expected days and hours such as "sun-thu 08:00-16:00" '
                "(days: sun mon tue wed thu fri sat; spans separated by commas)"
            )
        try:
            start, end = (
                time.fromisoformat(match["start"].zfill(5)),
                time.fromisoformat(match["end"].zfill(5)),
            )
        except ValueError:
            raise ValueError(f"{part.strip()!r}: hours are HH:MM, 00:00 to 23:59") from None
        if end <= start:
            raise ValueError(f"{part.strip()!r}: the end must come after the start")
        first = DAYS[match["first"]]
        spans.append(Span(first, DAYS[match["last"]] if match["last"] else first, start, end))
    return tuple(spans)


def _day(language: Language, weekday: int) -> str:
    return str(get_day_names("wide", locale=language)[weekday])


def _clock(language: Language, moment: time) -> str:
    hour = moment.hour % 12 or 12
    digits = f"{hour}:{moment.minute:02d}" if moment.minute else str(hour)
    half = text(language, "hours.am" if moment.hour < 12 else "hours.pm")
    return localize_digits(digits, language) + half


def describe(spec: str, language: Language) -> str:
    """The hours as a sentence part: "الأحد–الخميس، ٨ص–٤م" or "Sunday–Thursday, 8am–4pm"."""
    parts = []
    for span in parse_working_hours(spec):
        days = _day(language, span.first)
        if span.last != span.first:
            days += "–" + _day(language, span.last)
        hours = _clock(language, span.start) + "–" + _clock(language, span.end)
        parts.append(text(language, "hours.span", days=days, hours=hours))
    return text(language, "hours.separator").join(parts)


def next_opening(spec: str, now: datetime, zone: str) -> datetime | None:
    """None while a span is open at ``now``; else the local start of the next one."""
    local = local_time(now, zone)
    spans = parse_working_hours(spec)
    for span in spans:
        if local.weekday() in span.days() and span.start <= local.time() < span.end:
            return None
    starts = [
        datetime.combine(local.date() + timedelta(days=ahead), span.start, local.tzinfo)
        for ahead in range(8)
        for span in spans
        if (local.weekday() + ahead) % 7 in span.days()
    ]
    later = [start for start in starts if start > local]
    return min(later) if later else None


def when_open(spec: str, now: datetime, zone: str, language: Language) -> str | None:
    """None while open; else when it opens, "الأحد ٨ص" / "Sunday 8am"."""
    opening = next_opening(spec, now, zone)
    if opening is None:
        return None
    return text(
        language,
        "hours.at",
        day=_day(language, opening.weekday()),
        time=_clock(language, opening.time()),
    )
