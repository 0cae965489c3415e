"""Dates as beneficiaries read them: Hijri (Umm al-Qura) beside Gregorian, in local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import get_month_names
from hijridate import Gregorian

from flows.catalogue import text
from flows.types import Language

# Saudi Arabia has kept UTC+3 without daylight saving; used if the zone database lacks a name.
_RIYADH = timezone(timedelta(hours=3))


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _RIYADH


@lru_cache(maxsize=2)
def _month_names(language: Language) -> dict[int, str]:
    return dict(get_month_names("wide", locale=language))


def local_date(moment: datetime, zone: str) -> date:
    """The calendar day ``moment`` falls on in ``zone`` (naive times are taken as UTC)."""
    return aware(moment).astimezone(_zone(zone)).date()


def local_time(moment: datetime, zone: str) -> datetime:
    """``moment`` in ``zone`` (naive times are taken as UTC)."""
    return aware(moment).astimezone(_zone(zone))


def format_date(moment: datetime, language: Language, zone: str) -> str:
    """E.g. "٢٥ جمادى الآخرة ١٤٤٨هـ / ٥ ديسمبر ٢٠٢٦م" or "25 Jumada al-Akhirah 1448 AH / 5 ..."."""
    day = local_date(moment, zone)
    gregorian = {"day": day.day, "month": _month_names(language)[day.month], "year": day.year}
    try:
        hijri = Gregorian(day.year, day.month, day.day).to_hijri()
    except (OverflowError, ValueError):  # outside the Umm al-Qura tables (1924-2077)
        return text(language, "date.gregorian", **gregorian)
    return text(
        language,
        "date.both",
        hijri_day=hijri.day,
        hijri_month=hijri.month_name(language),
        hijri_year=hijri.year,
        **gregorian,
    )


def period(language: Language, days: int) -> str:
    """How long the decision takes, in words: "أسبوعين" for 14 days, "٢٠ يوماً" for 20."""
    if days == 14:
        return text(language, "period.two_weeks")
    if days == 7:
        return text(language, "period.one_week")
    if days == 1:
        return text(language, "period.one_day")
    if days == 2:
        return text(language, "period.two_days")
    # Arabic counts 3-10 with a plural noun and 11 upwards with a singular accusative one.
    return text(language, "period.few_days" if 3 <= days <= 10 else "period.many_days", days=days)


def aware(moment: datetime) -> datetime:
    """``moment`` with a timezone (naive times are taken as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_moment(stored: str | None) -> datetime | None:
    """A time stored in state data as ISO 8601, or None when missing or malformed."""
    if not stored:
        return None
    try:
        return aware(datetime.fromisoformat(stored))
    except ValueError:
        return None
