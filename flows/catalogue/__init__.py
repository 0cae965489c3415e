"""The message catalogue: every sentence the bot says, in Arabic with the English beside it.

One module per audience, each a plain dict (the source of truth): ``beneficiary``,
``staff`` (the Telegram staff group, the command line) and ``dashboard``; feedback's
own sentences are ``flows.feedback_texts``. ``CATALOGUE`` is all of them, a key in
exactly one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flows.catalogue.beneficiary import BENEFICIARY
from flows.catalogue.dashboard import DASHBOARD
from flows.catalogue.staff import STAFF
from flows.feedback_texts import TEXTS as FEEDBACK_TEXTS
from flows.text import localize_digits
from flows.types import Language, Need


def _merged(*parts: Mapping[str, Mapping[Language, str]]) -> dict[str, Mapping[Language, str]]:
    merged: dict[str, Mapping[Language, str]] = {}
    for part in parts:
        twice = merged.keys() & part.keys()
        if twice:  # a second entry would silently replace the first
            raise ValueError(f"catalogue keys defined twice: {sorted(twice)}")
        merged.update(part)
    return merged


CATALOGUE: Final[Mapping[str, Mapping[Language, str]]] = _merged(
    BENEFICIARY, STAFF, DASHBOARD, FEEDBACK_TEXTS
)

# The default of ``organization.needs``; also used when a caller passes none, so that the
# intake can always be completed.
DEFAULT_NEEDS: Final[tuple[Need, ...]] = (
    Need("food_basket", "سلة غذائية", "Food basket"),
    Need("rent", "إيجار السكن", "Rent"),
    Need("medical", "علاج ودواء", "Medical treatment"),
    Need("bills", "فواتير الكهرباء والماء", "Electricity and water bills"),
    Need("education", "مستلزمات دراسية", "School supplies"),
    Need("other", "أخرى", "Other"),
)


# The charity's own wording of some sentences, by key and language: read from its files
# and checked at start (bot/texts.py); the catalogue above stays the source of truth.
_OWN_WORDING: dict[str, dict[Language, str]] = {}


def use_own_wording(wording: Mapping[str, Mapping[Language, str]]) -> None:
    """Say these sentences in the charity's words from now on (instead of any given
    before); keys and placeholders must have been checked against ``CATALOGUE``."""
    _OWN_WORDING.clear()
    _OWN_WORDING.update({key: dict(texts) for key, texts in wording.items()})


def text(language: Language, key: str, **params: object) -> str:
    """The catalogue sentence ``key`` in ``language``, with ``params`` filled in.

    Integer parameters are written with Arabic-Indic digits in Arabic; strings are
    inserted as given (reference numbers stay Latin because they are typed back).

    Raises:
        KeyError: for an unknown key or a missing parameter (a programming error).
    """
    entry = CATALOGUE[key]
    lang: Language = language if language in entry else "ar"
    sentence = _OWN_WORDING.get(key, entry).get(lang) or entry[lang]
    if not params:
        return sentence
    values = {
        name: localize_digits(str(value), lang)
        if isinstance(value, int) and not isinstance(value, bool)
        else str(value)
        for name, value in params.items()
    }
    return sentence.format(**values)
