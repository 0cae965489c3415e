"""Interview slots from the [appointments] configuration (flows.slots), and its checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.config import ConfigError, Settings, load_settings
from flows import slots
from flows.types import AppointmentRules, OpeningHours

SAUDI_WEEK = frozenset({6, 0, 1, 2, 3})  # Sunday to Thursday
RULES = AppointmentRules(
    hours=(
        OpeningHours("الرياض", SAUDI_WEEK, time(8), time(10), capacity=2),
        OpeningHours("جدة", frozenset({6}), time(16), time(17)),
    ),
    slot_minutes=30,
    days_ahead=7,
    closed_dates=(date(2026, 12, 8),),
)
ZONE = "Asia/Riyadh"
# Sunday 6 December 2026, 07:00 in Riyadh (UTC+3).
NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def test_slots_of_a_day_in_local_time() -> None:
    found = slots.slots_on(RULES, "الرياض", date(2026, 12, 6), ZONE)
    local = [slots.local_start(s.starts_at, ZONE).strftime("%H:%M") for s in found]
    assert local == ["08:00", "08:30", "09:00", "09:30"]
    assert found[0].starts_at == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    assert {s.capacity for s in found} == {2}


def test_saudi_week_friday_and_saturday_have_none() -> None:
    assert slots.slots_on(RULES, "الرياض", date(2026, 12, 11), ZONE) == ()  # Friday
    assert slots.slots_on(RULES, "الرياض", date(2026, 12, 12), ZONE) == ()  # Saturday
    assert slots.slots_on(RULES, "جدة", date(2026, 12, 7), ZONE) == ()  # Monday


def test_closed_dates_and_holidays_offer_no_slot() -> None:
    assert slots.slots_on(RULES, "الرياض", date(2026, 12, 8), ZONE) == ()
    holiday = date(2026, 12, 9)
    assert slots.slots_on(RULES, "الرياض", holiday, ZONE, holidays=(holiday,)) == ()
    days = slots.free_days(RULES, "الرياض", NOW, ZONE, {}, holidays=(holiday,))
    assert date(2026, 12, 8) not in days and holiday not in days
    assert days[0] == date(2026, 12, 6)


def test_taken_places_and_lead_time() -> None:
    first = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    taken = {("الرياض", first): 2, ("الرياض", first + timedelta(minutes=30)): 1}
    now = NOW - timedelta(hours=1)
    free = slots.free_on(RULES, "الرياض", date(2026, 12, 6), now, ZONE, taken)
    assert [s.starts_at for s in free][:2] == [
        first + timedelta(minutes=30),
        first + timedelta(hours=1),
    ]
    # At 07:45 local the 08:00 and 08:30 slots start within the hour: not offered.
    later = slots.free_on(RULES, "الرياض", date(2026, 12, 6), NOW + timedelta(minutes=45), ZONE, {})
    assert [slots.local_start(s.starts_at, ZONE).strftime("%H:%M") for s in later] == [
        "09:00",
        "09:30",
    ]


def test_window_ends_after_days_ahead() -> None:
    days = slots.free_days(RULES, "الرياض", NOW, ZONE, {})
    assert max(days) <= date(2026, 12, 13)
    assert slots.free_on(RULES, "الرياض", date(2026, 12, 20), NOW, ZONE, {}) == ()


def test_slot_at_refuses_times_outside_the_hours() -> None:
    inside = datetime(2026, 12, 6, 6, 30, tzinfo=UTC)  # 09:30 local
    assert slots.slot_at(RULES, "الرياض", inside, ZONE) is not None
    assert slots.slot_at(RULES, "الرياض", inside + timedelta(hours=1), ZONE) is None  # 10:30
    assert slots.slot_at(RULES, "الرياض", inside + timedelta(minutes=10), ZONE) is None
    assert slots.slot_at(RULES, "مكة", inside, ZONE) is None
    assert slots.branches(RULES) == ("الرياض", "جدة")


def test_configuration_builds_the_rules() -> None:
    settings = Settings(
        appointments={
            "slot_minutes": 20,
            "reminders": ["2h", "24h"],
            "closed_dates": ["2026-12-10"],
            "hours": [{"branch": "الرياض", "from": "08:00", "to": "12:00", "capacity": 3}],
        }
    )
    rules = settings.flow_settings().appointments
    assert rules.slot_minutes == 20
    assert rules.reminders == (timedelta(hours=24), timedelta(hours=2))
    assert rules.closed_dates == (date(2026, 12, 10),)
    assert rules.hours == (OpeningHours("الرياض", SAUDI_WEEK, time(8), time(12), 3),)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('branch = "a"\nfrom = "10:00"\nto = "09:00"\n', "'to' must come after 'from'"),
        ('branch = "a"\nfrom = "08:00"\nto = "08:10"\n', "shorter than one slot"),
        ('branch = "a"\nfrom = "08:00"\nto = "10:00"\ndays = ["fri", "jum"]\n', "days.1"),
        ('branch = "a"\nfrom = "08:00"\nto = "10:00"\ncapacity = 0\n', "capacity"),
        ('branch = "a"\nfrom = "08:00"\nto = "10:00"\nseats = 2\n', "seats: unknown key"),
        ('from = "08:00"\nto = "10:00"\n', "branch"),
    ],
)
def test_bad_hours_are_refused_with_a_clear_line(tmp_path, toml: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    config.write_text(f"[[appointments.hours]]\n{toml}", encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_settings(config)


def test_overlapping_hours_of_one_branch_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    one = '[[appointments.hours]]\nbranch = "a"\nfrom = "08:00"\nto = "10:00"\n'
    two = '[[appointments.hours]]\nbranch = "a"\nfrom = "09:00"\nto = "11:00"\ndays = ["sun"]\n'
    config.write_text(one + two, encoding="utf-8")
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(config)
