"""The main Saudi cities with the spellings people type, matched to one canonical Arabic name."""

from __future__ import annotations

import math
import re
from typing import Final

from flows.text import fold_arabic

# Canonical name -> other spellings. Folding (ة/ه, أ/ا…) and the article are handled by
# ``city_key``, so only genuinely different spellings need listing.
CITIES: Final[dict[str, tuple[str, ...]]] = {
    "الرياض": ("riyadh", "riyad", "ar riyadh"),
    "جدة": ("jeddah", "jiddah", "jedda", "jidda"),
    "مكة المكرمة": ("مكة", "makkah", "mecca", "makka", "makkah al mukarramah"),
    "المدينة المنورة": ("المدينة", "madinah", "medina", "madina", "al madinah al munawwarah"),
    "الدمام": ("dammam",),
    "الخبر": ("khobar", "al khobar", "alkhobar"),
    "الظهران": ("dhahran", "dahran"),
    "الأحساء": ("الاحسا", "الهفوف", "المبرز", "al ahsa", "ahsa", "hasa", "hofuf", "hufuf"),
    "القطيف": ("qatif",),
    "الجبيل": ("jubail", "jubayl"),
    "حفر الباطن": ("hafar al batin", "hafr al batin", "hafar albatin"),
    "الخفجي": ("khafji",),
    "الطائف": ("الطايف", "taif", "ta'if"),
    "ينبع": ("yanbu", "yanbu al bahr"),
    "رابغ": ("rabigh",),
    "الليث": ("al lith", "lith"),
    "القنفذة": ("qunfudhah", "al qunfudhah", "qunfudah"),
    "تبوك": ("tabuk", "tabouk"),
    "بريدة": ("buraydah", "buraidah", "buraida"),
    "عنيزة": ("unaizah", "unayzah", "onaiza"),
    "الرس": ("ar rass", "rass", "al rass"),
    "حائل": ("hail", "ha'il", "hayel"),
    "أبها": ("abha",),
    "خميس مشيط": ("khamis mushait", "khamis mushayt", "khamis"),
    "محايل عسير": ("محايل", "muhayil", "muhail"),
    "بيشة": ("bisha", "bishah"),
    "جازان": ("جيزان", "jazan", "jizan", "gizan"),
    "صبيا": ("sabya", "sabia"),
    "نجران": ("najran",),
    "شرورة": ("sharurah", "sharourah"),
    "الباحة": ("al baha", "baha", "albaha"),
    "سكاكا": ("sakaka", "sakakah"),
    "عرعر": ("arar",),
    "طريف": ("turaif", "turayf"),
    "القريات": ("qurayyat", "al qurayyat", "qurayat"),
    "الخرج": ("al kharj", "kharj"),
    "المجمعة": ("majmaah", "al majmaah"),
    "الزلفي": ("zulfi", "az zulfi"),
    "الدوادمي": ("dawadmi", "ad dawadmi"),
    "وادي الدواسر": ("wadi ad dawasir", "wadi al dawasir", "wadi aldawasir"),
}

# Approximate centre of each city (latitude, longitude), for a shared location.
COORDINATES: Final[dict[str, tuple[float, float]]] = {
    "الرياض": (24.7136, 46.6753),
    "جدة": (21.5433, 39.1728),
    "مكة المكرمة": (21.4225, 39.8262),
    "المدينة المنورة": (24.4686, 39.6142),
    "الدمام": (26.4207, 50.0888),
    "الخبر": (26.2794, 50.2083),
    "الظهران": (26.2886, 50.1140),
    "الأحساء": (25.3647, 49.5856),
    "القطيف": (26.5196, 50.0115),
    "الجبيل": (27.0174, 49.6225),
    "حفر الباطن": (28.4328, 45.9708),
    "الخفجي": (28.4391, 48.4913),
    "الطائف": (21.2703, 40.4158),
    "ينبع": (24.0895, 38.0618),
    "رابغ": (22.7986, 39.0349),
    "الليث": (20.1500, 40.2667),
    "القنفذة": (19.1264, 41.0789),
    "تبوك": (28.3835, 36.5662),
    "بريدة": (26.3592, 43.9818),
    "عنيزة": (26.0843, 43.9935),
    "الرس": (25.8694, 43.4973),
    "حائل": (27.5114, 41.7208),
    "أبها": (18.2164, 42.5053),
    "خميس مشيط": (18.3000, 42.7333),
    "محايل عسير": (18.5467, 42.0511),
    "بيشة": (20.0005, 42.6052),
    "جازان": (16.8892, 42.5511),
    "صبيا": (17.1495, 42.6254),
    "نجران": (17.4924, 44.1277),
    "شرورة": (17.4833, 47.1167),
    "الباحة": (20.0129, 41.4677),
    "سكاكا": (29.9697, 40.2064),
    "عرعر": (30.9753, 41.0381),
    "طريف": (31.6725, 38.6637),
    "القريات": (31.3318, 37.3428),
    "الخرج": (24.1556, 47.3120),
    "المجمعة": (25.9039, 45.3456),
    "الزلفي": (26.2994, 44.8154),
    "الدوادمي": (24.5077, 44.3924),
    "وادي الدواسر": (20.4607, 44.7797),
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
