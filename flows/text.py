"""Normalisation of what beneficiaries type: digit forms, Arabic letter variants, words."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

from flows.types import Language

_TO_LATIN_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
_TO_ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

# Letter variants people type interchangeably (and Persian keyboards' yeh and kaf).
_LETTER_VARIANTS = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
    | {"ی": "ي", "ک": "ك"}
)
# Harakat, tanween, shadda, sukun, superscript alef, Quranic marks and tatweel.
_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
# Invisible direction and joining marks that copy-pasted Arabic often carries.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_WORD = re.compile(r"[^\W_]+")

# Attached particles (and, so, with, for, the) that may precede a keyword: "بالانتحار", "للموظف".
_PROCLITICS = ("", "و", "ف", "ب", "ل", "ك", "ال", "وال", "فال", "بال", "كال", "لل", "ولل")


def normalize_digits(s: str) -> str:
    """Turn Arabic-Indic (٠-٩) and Persian (۰-۹) digits into Latin ones."""
    return s.translate(_TO_LATIN_DIGITS)


def localize_digits(s: str, language: Language) -> str:
    """Write Latin digits as Arabic-Indic ones for an Arabic reader."""
    return s.translate(_TO_ARABIC_DIGITS) if language == "ar" else s


def visible(s: str) -> str:
    """``s`` without invisible direction marks and without spaces at both ends."""
    return _INVISIBLE.sub("", s).strip()


def strip_edges(s: str) -> str:
    """Drop punctuation, symbols (emoji) and spaces at both ends."""
    start, end = 0, len(s)
    while start < end and unicodedata.category(s[start])[0] in "PSZ":
        start += 1
    while end > start and unicodedata.category(s[end - 1])[0] in "PSZ":
        end -= 1
    return s[start:end]


def fold_arabic(s: str) -> str:
    """Fold text for matching: one form per letter, no diacritics, Latin digits, lowercase.

    Also collapses whitespace and strips punctuation at both ends, so that
    "أهلاً!" and "اهلا" compare equal.
    """
    s = _INVISIBLE.sub("", normalize_digits(s))
    s = _MARKS.sub("", s).translate(_LETTER_VARIANTS).casefold()
    return " ".join(strip_edges(" ".join(s.split())).split())


@functools.lru_cache(maxsize=256)
def words(s: str) -> tuple[str, ...]:
    """The folded words of a message, without punctuation or emoji (kept for the few
    messages of the moment: a turn asks for the same message's words several times)."""
    return tuple(_WORD.findall(fold_arabic(s)))


def phrase(s: str) -> str:
    """The folded words of a message joined by single spaces: the form keyword sets use."""
    return " ".join(words(s))


@functools.lru_cache(maxsize=4096)
def _forms(word: str) -> frozenset[str]:
    # The word with each particle it may carry; asked for the keywords on every message.
    return frozenset(prefix + word for prefix in _PROCLITICS)


def contains_phrase(tokens: Sequence[str], target: Sequence[str]) -> bool:
    """Whether ``target`` words occur in a row in ``tokens`` (first one may carry a particle)."""
    if not target or len(target) > len(tokens):
        return False
    forms = _forms(target[0])
    if len(target) == 1:
        return any(token in forms for token in tokens)
    rest = tuple(target[1:])
    size = len(target)
    return any(
        tokens[i] in forms and tuple(tokens[i + 1 : i + size]) == rest
        for i in range(len(tokens) - size + 1)
    )


def is_whole_phrase(tokens: Sequence[str], target: Sequence[str]) -> bool:
    """Whether the message is exactly ``target`` (the first word may carry a particle)."""
    return len(tokens) == len(target) and contains_phrase(tokens, target)


def any_phrase(tokens: Sequence[str], phrases: Iterable[str], *, whole: bool = False) -> bool:
    """Whether any configured word or phrase occurs in ``tokens`` (or is all of it)."""
    match = is_whole_phrase if whole else contains_phrase
    return any(match(tokens, _phrase_words(p)) for p in phrases)


@functools.lru_cache(maxsize=1024)
def _phrase_words(configured: str) -> tuple[str, ...]:
    # Configured phrases are few and asked about on every message: fold each once.
    return words(configured)
