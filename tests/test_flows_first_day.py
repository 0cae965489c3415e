"""The beneficiary's first day: cities on the full list, did-you-mean and confirmation,
names and descriptions that mean something, working hours when a person is asked for."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from transcript import AGREE, Transcript

from bot.config import ConfigError, Settings, load_settings
from flows.cities import ALL_CITIES, CITIES, city_key, city_label, known_city, suggest_city
from flows.hours import describe, next_opening, parse_working_hours
from flows.types import FlowSettings

NAME = "نورة عبدالله سعد القحطاني"


def at_city(transcript: Transcript) -> None:
    for line in ("1", AGREE, NAME, "1000000008", "0551234567"):
        transcript.send(line)
    assert transcript.step == ("intake", "city")


def test_the_list_holds_every_region_and_its_governorates() -> None:
    assert len(ALL_CITIES) >= 140
    assert len({city.region for city in ALL_CITIES}) == 13
    assert all(city.ar and city.en for city in ALL_CITIES)
    # No spelling leads to two places.
    keys = Counter(
        key
        for canonical, spellings in CITIES.items()
        for key in {city_key(s) for s in (canonical, *spellings)}
    )
    assert [key for key, times in keys.items() if times > 1] == []
    for governorate in ("الدرعية", "النماص", "العلا", "رفحاء", "فرسان", "دومة الجندل"):
        assert known_city(governorate) == governorate
    assert known_city("AlUla") == "العلا" and known_city("محافظة رجال المع") == "رجال ألمع"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("الرياظ", "الرياض"), ("خمس مشيط", "خميس مشيط"), ("Buraidha", "بريدة"), ("tabook", "تبوك")],
)
def test_near_misses_are_suggested(typed: str, meant: str) -> None:
    assert known_city(typed) is None
    assert suggest_city(typed) == meant


def test_a_near_miss_is_asked_about_and_yes_keeps_the_known_city() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    at_city(transcript)
    reply = transcript.send("الرياظ")
    assert 'هل المقصود "الرياض"؟' in reply
    assert transcript.step == ("intake", "city")
    assert "(٥/٨)" in transcript.send("نعم")
    assert transcript.state.data["intake_draft"]["city"] == "الرياض"


def test_an_unknown_name_is_kept_only_once_confirmed() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    at_city(transcript)
    assert 'لم نجد "هجرة الصفاء"' in transcript.send("هجرة الصفاء")
    assert "ما مدينة السكن" in transcript.send("لا")  # asked again, nothing kept
    assert (
        "intake_draft" not in transcript.state.data
        or "city" not in (transcript.state.data["intake_draft"])
    )
    assert 'لم نجد "هجرة الصفا"' in transcript.send("هجرة الصفا")
    assert "(٥/٨)" in transcript.send("نعم")
    assert transcript.state.data["intake_draft"]["city"] == "هجرة الصفا"


def test_another_name_after_the_question_is_a_new_answer() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    at_city(transcript)
    transcript.send("الرياظ")
    assert "(٥/٨)" in transcript.send("جدة")
    assert transcript.state.data["intake_draft"]["city"] == "جدة"


def test_english_readers_see_the_city_in_english() -> None:
    assert city_label("المدينة المنورة", "en") == "Madinah"
    assert city_label("المدينة المنورة", "ar") == "المدينة المنورة"
    assert city_label("هجرة الصفا", "en") == "هجرة الصفا"  # not on the list: as typed
    assert suggest_city("Dammam") is not None  # English spellings are on the list too


def test_two_part_names_are_refused_and_the_four_part_name_is_asked_for() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    transcript.send("1")
    assert "الرباعي" in transcript.send(AGREE)
    assert "ثلاثة أجزاء على الأقل" in transcript.send("نورة عبدالله")
    assert "(٢/٨)" in transcript.send("نورة عبدالله القحطاني")


def test_a_description_of_emoji_only_is_refused() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    at_city(transcript)
    transcript.send("الرياض")
    transcript.send("1")
    assert "بكلمات" in transcript.send("🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏")
    assert transcript.step == ("intake", "description")


def test_the_declaration_and_the_checksum_are_worded_for_anyone() -> None:
    transcript = Transcript()
    transcript.send("مرحبا")
    transcript.send("1")
    transcript.send(AGREE)
    transcript.send(NAME)
    refused = transcript.send("1000000009")
    assert "خانة التحقق" not in refused and "مكتوباً خطأً" in refused
    english = Transcript()
    english.send("English")
    english.send("1")
    english.send("yes")
    english.send("Noura Abdullah Alqahtani")
    refused = english.send("1000000009")
    assert "check digit" not in refused and "may be mistyped" in refused


FRIDAY_NOON = datetime(2026, 12, 4, 9, tzinfo=UTC)  # 12:00 in Riyadh, a Friday
SUNDAY_TEN = datetime(2026, 12, 6, 7, tzinfo=UTC)  # 10:00 in Riyadh, a Sunday


def test_a_handoff_tells_the_configured_hours_and_when_they_open() -> None:
    settings = FlowSettings(organization_name="جمعية البر", working_hours="sat-wed 09:00-17:30")
    closed = Transcript(settings, now=FRIDAY_NOON)
    closed.send("مرحبا")
    reply = closed.send("4")
    assert "السبت–الأربعاء، ٩ص–٥:٣٠م" in reply
    assert "خارج أوقات العمل" in reply and "السبت ٩ص" in reply
    open_now = Transcript(settings, now=SUNDAY_TEN)
    open_now.send("English")
    reply = open_now.send("4")
    assert "Saturday–Wednesday, 9am–5:30pm" in reply and "outside working hours" not in reply


def test_working_hours_are_read_and_checked() -> None:
    assert describe("sun-thu 08:00-16:00, sat 10:00-12:00", "en") == (
        "Sunday–Thursday, 8am–4pm; Saturday, 10am–12pm"
    )
    assert next_opening("sun-thu 08:00-16:00", SUNDAY_TEN, "Asia/Riyadh") is None
    opening = next_opening("sun-thu 08:00-16:00", FRIDAY_NOON, "Asia/Riyadh")
    assert opening is not None and (opening.weekday(), opening.hour) == (6, 8)
    for bad in ("weekdays 8-4", "sun-thu 16:00-08:00", "xyz 08:00-10:00", "sun 25:00-26:00"):
        with pytest.raises(ValueError):
            parse_working_hours(bad)
    assert Settings(organization={"working_hours": "sat 10:00-12:00"}).flow_settings().working_hours


def test_a_wrong_working_hours_key_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[organization]\nworking_hours = "always"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"organization\.working_hours: expected days and hours"):
        load_settings(config)
