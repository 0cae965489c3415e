"""Normalisation helpers and the plain-text drawing of messages."""

import pytest

from flows import as_plain_text, fold_arabic, mask_national_id, normalize_digits
from flows.text import any_phrase, phrase, words
from flows.types import Choice, OutboundMessage


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),  # Arabic-Indic
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),  # Persian
        ("0123456789", "0123456789"),
        ("رقمي ١٠٠٠۰0٠٠٠٨", "رقمي 1000000008"),  # mixed forms in one number
        ("", ""),
    ],
)
def test_normalize_digits(raw: str, expected: str) -> None:
    assert normalize_digits(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("أهلاً وسهلاً!", "اهلا وسهلا"),  # hamza forms, tanween, end punctuation
        ("مـــرحـبـا", "مرحبا"),  # tatweel
        ("إسلام", "اسلام"),
        ("آمنة", "امنه"),  # alef madda, taa marbuta
        ("ٱلله", "الله"),  # alef wasla
        ("مستشفى", "مستشفي"),  # alef maqsura
        ("مؤسسة", "موسسه"),
        ("رئيس", "رييس"),
        ("مُحَمَّد", "محمد"),  # harakat and shadda
        ("  Hello   World ! ", "hello world"),
        ("،مرحبا؟", "مرحبا"),
        ("القائمة ١", "القايمه 1"),  # ئ folds to ي
        ("\u200fجدة\u200e", "جده"),  # direction marks from copy-paste
    ],
)
def test_fold_arabic(raw: str, expected: str) -> None:
    assert fold_arabic(raw) == expected


def test_words_drop_emoji_and_punctuation() -> None:
    assert words("مرحبا 🌹!! كيف الحال؟") == ("مرحبا", "كيف", "الحال")
    assert phrase("REQ-٠٠٠١٢٣") == "req 000123"


@pytest.mark.parametrize(
    ("message", "keywords", "whole", "found"),
    [
        ("أريد التحدث مع موظف", ("موظف",), False, True),
        ("أريد التحدث مع الموظف", ("موظف",), False, True),  # the article is a particle
        ("أفكر بالانتحار", ("انتحار",), False, True),
        ("أفكّر في إيذاء نفسي", ("ايذاء نفسي",), False, True),  # phrase, with diacritics
        ("نفسي ايذاء", ("ايذاء نفسي",), False, False),  # words out of order
        ("زوجي كان موظفاً", ("موظف",), False, False),  # another word, not the keyword
        ("أخي موظف", ("موظف",), True, False),  # free text: only the whole message counts
        ("موظف", ("موظف",), True, True),
        ("", ("موظف",), False, False),
    ],
)
def test_keyword_matching(
    message: str, keywords: tuple[str, ...], whole: bool, found: bool
) -> None:
    assert any_phrase(words(message), keywords, whole=whole) is found


@pytest.mark.parametrize(
    ("nid", "masked"),
    [("1000000008", "******0008"), ("١٠٠٠٠٠٠٠٠٨", "******0008"), ("123", "***"), ("", "")],
)
def test_mask_national_id(nid: str, masked: str) -> None:
    assert mask_national_id(nid) == masked


def test_plain_text_numbers_choices_in_the_reader_s_digits() -> None:
    choices = (Choice("1", "نعم"), Choice("2", "لا"))
    assert as_plain_text(OutboundMessage("اختر:", "ar", choices)) == "اختر:\n١- نعم\n٢- لا"
    english = (Choice("1", "Yes"), Choice("2", "No"))
    assert as_plain_text(OutboundMessage("Pick:", "en", english)) == "Pick:\n1- Yes\n2- No"
    assert as_plain_text(OutboundMessage("بلا خيارات", "ar")) == "بلا خيارات"
