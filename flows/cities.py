"""Saudi cities and governorates with the spellings people type, matched to one Arabic name."""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

from flows.text import fold_arabic

# The kingdom's cities and governorates (محافظات), one row each: the canonical Arabic
# name, the English one, the region, the centre's coordinates where known, and other
# spellings people type, separated by "|". Folding (ة/ه, أ/ا…) and the article are
# handled by ``city_key``, so only genuinely different spellings need listing.
DATA_FILE: Final = "saudi_cities.csv"


@dataclass(frozen=True, slots=True)
class City:
    ar: str
    en: str
    region: str
    centre: tuple[float, float] | None
    spellings: tuple[str, ...]


def _load() -> tuple[City, ...]:
    source = resources.files("flows").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    cities = []
    for row in csv.DictReader(io.StringIO(source)):
        centre = (float(row["latitude"]), float(row["longitude"])) if row["latitude"] else None
        spellings = tuple(s.strip() for s in row["spellings"].split("|") if s.strip())
        cities.append(City(row["ar"], row["en"], row["region"], centre, spellings))
    return tuple(cities)


ALL_CITIES: Final = _load()
# Canonical name -> other spellings (the English name among them).
CITIES: Final[dict[str, tuple[str, ...]]] = {c.ar: (c.en.lower(), *c.spellings) for c in ALL_CITIES}
ENGLISH: Final[dict[str, str]] = {c.ar: c.en for c in ALL_CITIES}
# Approximate centre of the cities whose coordinates we keep, for a shared location.
COORDINATES: Final[dict[str, tuple[float, float]]] = {
    c.ar: c.centre for c in ALL_CITIES if c.centre is not None
}
# A shared location farther than this from every known centre names no city of ours.
NEAREST_CITY_KM: Final = 60.0
_EARTH_RADIUS_KM: Final = 6371.0

_ARTICLE = re.compile(r"^(ال|al |ar |ad |as |at |az |an |el )")
_NOISE = re.compile(r"[\s\-'`’]")
_CITY_WORD = re.compile(r"^(مدينه|محافظه|city of|city)\s+")


def city_key(name: str) -> str:
    """A spelling-insensitive key: folded, without "مدينة"/"city", the article and spaces."""
    folded = _CITY_WORD.sub("", fold_arabic(name).replace("-", " "))
    return _NOISE.sub("", _ARTICLE.sub("", folded))


_INDEX: Final[dict[str, str]] = {
    city_key(spelling): canonical
    for canonical, spellings in CITIES.items()
    for spelling in (canonical, *spellings)
}


def known_city(name: str) -> str | None:
    """The canonical Arabic name of a known city, whatever the spelling, else None."""
    key = city_key(name)
    return _INDEX.get(key) if key else None


# A typed name this close to a known spelling (difflib's ratio) is offered as "did you mean".
SUGGEST_RATIO: Final = 0.75


def suggest_city(name: str) -> str | None:
    """The canonical name of the known city closest to a misspelt ``name``, if any is close."""
    key = city_key(name)
    if len(key) < 3:
        return None
    close = difflib.get_close_matches(key, _INDEX.keys(), n=1, cutoff=SUGGEST_RATIO)
    return _INDEX[close[0]] if close else None


def city_label(name: str, language: str) -> str:
    """A city as a reader of ``language`` knows it: the English name of a known city in
    English, else the name as stored."""
    if language == "en":
        return ENGLISH.get(name, name)
    return name


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + (
        math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest_city(
    latitude: float, longitude: float, within_km: float = NEAREST_CITY_KM
) -> str | None:
    """The canonical name of the known city nearest to a point, if within ``within_km``."""
    point = (latitude, longitude)
    name, centre = min(COORDINATES.items(), key=lambda item: distance_km(point, item[1]))
    return name if distance_km(point, centre) <= within_km else None
