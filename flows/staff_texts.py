"""Texts for staff (the Telegram staff group, the dashboard, the command line), Arabic first.

Staff read the same catalogue as beneficiaries, under ``staff.*``; these helpers put
together the lines that need a label looked up (a reason, a channel, a status).
"""

from __future__ import annotations

from typing import Final

from flows.catalogue import CATALOGUE, text
from flows.status import status_label
from flows.steps import known_language, need_label
from flows.text import normalize_digits
from flows.types import FlowSettings, Language
from flows.validation import mask_ids_in, mask_phones_in

# The language staff read (the staff group, alerts, the command line's notices).
STAFF_LANGUAGE: Final[Language] = "ar"


def mask_ids(text: str) -> str:
    """``text`` with every national ID or iqama number in it shown as ``******1234``,
    also when typed split ("1000-000-008"): see ``flows.validation.mask_ids_in``.

    Staff see enough to recognise a number the beneficiary typed, not to misuse it; the
    rest of the text keeps its digits as written.
    """
    return mask_ids_in(text)


def mask_for_group(text: str) -> str:
    """``text`` as the staff group may read it: national IDs and phone numbers masked but
    their last four digits (the group is a chat anyone may be added to)."""
    return mask_phones_in(mask_ids_in(normalize_digits(text)))


def _label(language: Language, prefix: str, name: object) -> str:
    """The catalogue label ``prefix + name``; an unknown name is shown as given."""
    shown = name if isinstance(name, str) else ""
    key = prefix + shown
    return text(known_language(language), key) if key in CATALOGUE else shown


def reason_label(language: Language, reason: str) -> str:
    """Why a handoff was opened, in words (requested, keyword, …, low_rating)."""
    return _label(language, "staff.reason.", reason)


def channel_label(language: Language, channel: str) -> str:
    """A channel's name for people (whatsapp -> واتساب)."""
    return _label(language, "staff.channel.", channel)


def language_label(language: Language, spoken: str) -> str:
    """The language a beneficiary uses, named in the staff's ``language``."""
    return _label(language, "staff.language.", spoken)


def handoff_notification(
    language: Language, *, reason: str, urgent: bool, beneficiary_language: str, channel: str
) -> str:
    """The staff-group message announcing a new handoff (marked urgent on crisis words)."""
    lang = known_language(language)
    return text(
        lang,
        "staff.handoff.urgent" if urgent else "staff.handoff.new",
        reason=reason_label(lang, reason),
        beneficiary_language=language_label(lang, beneficiary_language),
        channel=channel_label(lang, channel),
    )


def request_line(
    language: Language, reference: str, status: str, need: str, settings: FlowSettings
) -> str:
    """One request in a staff list: reference, status in words, need by its label."""
    lang = known_language(language)
    return text(
        lang,
        "staff.request_line",
        reference=reference,
        status=status_label(lang, status if isinstance(status, str) else ""),
        need=need_label(settings, need, lang),
    )
