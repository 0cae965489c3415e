"""A shared location answers the intake's city question with the nearest known city."""

from __future__ import annotations

import pytest
from transcript import INTAKE_AR, Transcript

from flows.cities import CITIES, COORDINATES, NEAREST_CITY_KM, distance_km, nearest_city
from flows.types import Location

# The lines of INTAKE_AR up to (not including) the answer to the city question.
BEFORE_CITY = INTAKE_AR[: INTAKE_AR.index("جده")]
AFTER_CITY = INTAKE_AR[INTAKE_AR.index("جده") + 1 :]


def at_city_question() -> Transcript:
    transcript = Transcript()
    for line in BEFORE_CITY:
        transcript.send(line)
    assert transcript.step == ("intake", "city")
    return transcript


def draft_city(transcript: Transcript) -> object:
    return transcript.state.data["intake_draft"].get("city")


@pytest.mark.parametrize(
    ("where", "latitude", "longitude", "city"),
    [
        ("jeddah_corniche", 21.5433, 39.1728, "جدة"),
        ("north_riyadh_25km_out", 24.93, 46.70, "الرياض"),
        ("makkah_haram", 21.4225, 39.8262, "مكة المكرمة"),
        ("khobar_not_dammam", 26.28, 50.21, "الخبر"),
        ("abha_not_khamis", 18.22, 42.50, "أبها"),
        ("tabuk_outskirts", 28.60, 36.80, "تبوك"),
    ],
)
def test_a_location_near_a_known_city_answers_with_its_canonical_name(
    where: str, latitude: float, longitude: float, city: str
) -> None:
    transcript = at_city_question()
    reply = transcript.send(location=Location(latitude, longitude))
    assert draft_city(transcript) == city
    assert transcript.step == ("intake", "need")
    assert reply.startswith("(٥/٨)")


def test_a_far_location_asks_for_the_name_without_counting_a_bad_answer() -> None:
    transcript = at_city_question()
    empty_quarter = Location(20.0, 50.5)
    reply = transcript.send(location=empty_quarter)
    assert "اكتب اسم مدينتك" in reply
    assert transcript.step == ("intake", "city")
    assert draft_city(transcript) is None
    for _ in range(3):  # a location is an honest answer: no staff offer however often
        reply = transcript.send(location=empty_quarter)
    assert "موظف" not in reply
    transcript.send("الرياض")
    assert draft_city(transcript) == "الرياض"
    assert transcript.step == ("intake", "need")


def test_a_far_location_in_english() -> None:
    transcript = at_city_question()
    transcript.send("English")
    reply = transcript.send(location=Location(23.0, 42.0))
    assert "Please type the name of your city" in reply
    assert transcript.step == ("intake", "city")


def test_an_intake_answered_with_a_location_is_signed_with_the_city() -> None:
    transcript = at_city_question()
    transcript.send(location=Location(21.55, 39.20))
    for line in AFTER_CITY:
        reply = transcript.send(line)
    assert "REQ-000001" in reply
    [saved] = transcript.saved
    assert saved.answers["city"] == "جدة"


def test_a_typed_city_still_works_when_no_location_is_sent() -> None:
    transcript = at_city_question()
    transcript.send("جده")
    assert draft_city(transcript) == "جدة"


def test_a_location_outside_the_city_question_is_not_an_error() -> None:
    transcript = Transcript()
    reply = transcript.send(location=Location(24.7, 46.7))
    assert reply  # the menu answers; nothing breaks
    assert transcript.step[0] == "menu"


def test_every_known_city_has_coordinates_in_saudi_arabia() -> None:
    assert set(COORDINATES) <= set(CITIES)
    for name, (latitude, longitude) in COORDINATES.items():
        assert 16 <= latitude <= 33 and 34 <= longitude <= 56, name
        assert nearest_city(latitude, longitude) == name


def test_distance_and_radius() -> None:
    riyadh, jeddah = COORDINATES["الرياض"], COORDINATES["جدة"]
    assert 840 < distance_km(riyadh, jeddah) < 870  # about 850 km by air
    assert distance_km(riyadh, riyadh) == 0
    assert nearest_city(24.7136 + 0.5, 46.6753) == "الرياض"  # ~55 km north of the centre
    assert nearest_city(24.7136 + 0.6, 46.6753) is None  # ~67 km: beyond NEAREST_CITY_KM
    assert NEAREST_CITY_KM == 60
