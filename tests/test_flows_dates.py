"""Dates in both calendars, in the organisation's timezone, and the decision period in words."""

from datetime import UTC, datetime

import pytest

from flows.dates import format_date, period


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("ar", "٢٥ جمادى الآخرة ١٤٤٨هـ / ٥ ديسمبر ٢٠٢٦م"),
        ("en", "25 Jumada al-Akhirah 1448 AH / 5 December 2026"),
    ],
)
def test_hijri_beside_gregorian(language: str, expected: str) -> None:
    moment = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert format_date(moment, language, "Asia/Riyadh") == expected  # type: ignore[arg-type]


def test_the_day_is_the_local_one() -> None:
    late_evening_utc = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)  # 01:00 on the 5th in Riyadh
    assert format_date(late_evening_utc, "en", "Asia/Riyadh").endswith("5 December 2026")
    assert format_date(late_evening_utc, "en", "UTC").endswith("4 December 2026")


def test_outside_the_umm_al_qura_tables_only_gregorian() -> None:
    assert format_date(datetime(2090, 1, 1, tzinfo=UTC), "en", "UTC") == "1 January 2090"


def test_unknown_timezone_falls_back_to_riyadh_time() -> None:
    late_evening_utc = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    assert format_date(late_evening_utc, "en", "Mars/Olympus").endswith("5 December 2026")


@pytest.mark.parametrize(
    ("days", "ar", "en"),
    [
        (14, "أسبوعين", "two weeks"),
        (7, "أسبوع", "one week"),
        (1, "يوم واحد", "one day"),
        (2, "يومين", "two days"),
        (5, "٥ أيام", "5 days"),
        (20, "٢٠ يوماً", "20 days"),
    ],
)
def test_period_in_words(days: int, ar: str, en: str) -> None:
    assert period("ar", days) == ar
    assert period("en", days) == en
