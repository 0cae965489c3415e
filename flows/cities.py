"""The main Saudi cities with the spellings people type, matched to one canonical Arabic name."""

from __future__ import annotations

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
