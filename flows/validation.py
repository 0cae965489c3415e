"""Checks for intake answers: each returns the clean value or the reason it was refused."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from flows.cities import known_city
from flows.text import normalize_digits, strip_edges

NAME_MAX = 100
DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 1000
CITY_MAX = 40
SAUDI_CALLING_CODE = 966

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_.()/]")
# Ten digits, each pair at most one space or dash apart, not inside a longer number.
_ID_IN_TEXT = re.compile(r"(?<![\d+])\d(?:[ \-\u2010-\u2015]?\d){9}(?!\d)")
_PHONE = re.compile(r"\+?\d{6,16}")
_MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why an answer was refused: a catalogue key and its parameters."""

    key: str
    params: Mapping[str, int | str] = field(default_factory=dict)


def _is_letters(s: str, extra: str = " '-") -> bool:
    # Combining marks (harakat) are allowed: some people type their name fully vowelled.
    return all(ch.isalpha() or ch in extra or unicodedata.category(ch)[0] == "M" for ch in s)


NAME_PARTS_MIN = 3  # the four-part name is asked for; three (name, father, family) will do


def check_name(raw: str) -> str | Invalid:
    """A full name: letters only, at least three parts, at most 100 characters."""
    name = " ".join(strip_edges(raw).split())
    if len(name) > NAME_MAX:
        return Invalid("intake.invalid.name_long", {"max": NAME_MAX})
    if not _is_letters(name):
        return Invalid("intake.invalid.name_letters")
    if len(name.split()) < NAME_PARTS_MIN:
        return Invalid("intake.invalid.name_short")
    return name


def luhn_ok(digits: str) -> bool:
    """The Luhn check the Saudi national ID and iqama numbers carry in their last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def check_national_id(raw: str) -> str | Invalid:
    """A national ID (starts with 1) or iqama (starts with 2): 10 digits with a Luhn check digit."""
    digits = _SEPARATORS.sub("", normalize_digits(raw))
    if not digits or not (digits.isascii() and digits.isdigit()):
        return Invalid("intake.invalid.id_digits")
    if len(digits) != 10:
        return Invalid("intake.invalid.id_length", {"count": len(digits)})
    if digits[0] not in "12":
        return Invalid("intake.invalid.id_prefix")
    if not luhn_ok(digits):
        return Invalid("intake.invalid.id_checksum")
    return digits


def mask_national_id(nid: str) -> str:
    """Only the last four digits, as in ``******0008``: enough to recognise, not to misuse."""
    digits = _SEPARATORS.sub("", normalize_digits(nid or ""))
    if len(digits) <= 4:  # too short to show any of it safely
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_ids_in(text: str) -> str:
    """``text`` with every national ID or iqama number in it masked but its last four digits.

    Ten digits in a row starting with 1 or 2 are masked whatever else they are; ten
    digits split by spaces or dashes ("1000-000-008", "1000 000 008"), as people copy
    them from the card, only when their check digit holds, so that dates and times are
    left alone. The four digits shown are Latin, whatever script they were typed in.
    """

    def mask(match: re.Match[str]) -> str:
        found = match.group(0)
        digits = normalize_digits(_SEPARATORS.sub("", found))
        if not (digits.isascii() and digits.isdigit()) or digits[0] not in "12":
            return found
        if found.isdigit() or luhn_ok(digits):
            return "******" + digits[-4:]
        return found

    return _ID_IN_TEXT.sub(mask, text)


def mask_phones_in(text: str) -> str:
    """``text`` with every phone number in it masked but its last four digits (``******4567``).

    libphonenumber finds the numbers, Saudi or international, in any digits and with any
    usual separators, and leaves dates, times and reference numbers alone.
    """
    pieces, last = [], 0
    for match in phonenumbers.PhoneNumberMatcher(
        text, "SA", leniency=phonenumbers.Leniency.POSSIBLE
    ):
        digits = [ch for ch in match.raw_string if ch.isdigit()]
        pieces += [text[last : match.start], "*" * (len(digits) - 4) + "".join(digits[-4:])]
        last = match.end
    return "".join(pieces) + text[last:]


def check_mobile(raw: str) -> str | Invalid:
    """A Saudi mobile number in any usual form (05…, 5…, +9665…, 009665…), as E.164."""
    compact = _SEPARATORS.sub("", normalize_digits(raw or ""))
    if not _PHONE.fullmatch(compact):
        return Invalid("intake.invalid.mobile_format")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, "SA")
    except phonenumbers.NumberParseException:
        return Invalid("intake.invalid.mobile_format")
    if number.country_code != SAUDI_CALLING_CODE:
        return Invalid("intake.invalid.mobile_foreign")
    if not phonenumbers.is_valid_number(number):
        return Invalid("intake.invalid.mobile_format")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return Invalid("intake.invalid.mobile_landline")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def local_mobile(e164: str) -> str:
    """A Saudi number in the local form people know (05XXXXXXXX); other numbers unchanged."""
    prefix = f"+{SAUDI_CALLING_CODE}"
    return "0" + e164[len(prefix) :] if e164.startswith(prefix) else e164


def check_city(raw: str) -> str | Invalid:
    """A known city by its canonical Arabic name, or a plausible unknown name as written
    (which the intake accepts only once the beneficiary confirms it)."""
    canonical = known_city(raw)
    if canonical:
        return canonical
    name = " ".join(strip_edges(raw).split())
    if 2 <= len(name) <= CITY_MAX and _is_letters(name):
        return name
    return Invalid("intake.invalid.city")


def takes_documents(media: frozenset[str]) -> bool:
    """Whether a channel carrying ``media`` (its capabilities) can bring photos or PDFs:
    one that cannot is never asked for them."""
    return bool(media & {"image", "document"})


def is_document(content_type: object) -> bool:
    """Whether an attachment is one we keep: a photo (any image type) or a PDF."""
    if not isinstance(content_type, str):
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind.startswith("image/") or kind == "application/pdf"


# A word: two letters in a row (any script), so "🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏" is not a description.
_WORD = re.compile(r"[^\W\d_]{2,}")


def check_description(raw: str) -> str | Invalid:
    """A free description of 10 to 1000 characters, with words in it (not only emoji)."""
    description = raw.strip()
    if len(description) < DESCRIPTION_MIN:
        return Invalid("intake.invalid.description_short", {"min": DESCRIPTION_MIN})
    if len(description) > DESCRIPTION_MAX:
        return Invalid(
            "intake.invalid.description_long", {"count": len(description), "max": DESCRIPTION_MAX}
        )
    if _WORD.search(description) is None:
        return Invalid("intake.invalid.description_words")
    return description
