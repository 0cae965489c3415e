"""Field checks: national ID / iqama, Saudi mobile, name, city, description."""

import pytest

from flows.validation import (
    Invalid,
    check_city,
    check_description,
    check_mobile,
    check_name,
    check_national_id,
    local_mobile,
    luhn_ok,
)


def _luhn_check_digit(first_nine: str) -> str:
    """The check digit computed independently of the code under test."""
    total = 0
    for position, char in enumerate(first_nine):
        value = int(char) * (2 if position % 2 == 0 else 1)  # from the left: 1st, 3rd… doubled
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


@pytest.mark.parametrize("first_nine", ["100000000", "200000000", "104523871", "234567890"])
def test_luhn_agrees_with_an_independent_computation(first_nine: str) -> None:
    valid = first_nine + _luhn_check_digit(first_nine)
    assert check_national_id(valid) == valid
    wrong = first_nine + str((int(valid[-1]) + 1) % 10)
    assert check_national_id(wrong) == Invalid("intake.invalid.id_checksum")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1000000008", "1000000008"),
        ("2000000006", "2000000006"),  # iqama
        ("١٠٠٠٠٠٠٠٠٨", "1000000008"),
        ("۱۰۰۰۰۰۰۰۰۸", "1000000008"),
        (" 1000-000 008 ", "1000000008"),
        ("1000000009", Invalid("intake.invalid.id_checksum")),
        ("100000000", Invalid("intake.invalid.id_length", {"count": 9})),
        ("10000000080", Invalid("intake.invalid.id_length", {"count": 11})),
        ("abcdefghij", Invalid("intake.invalid.id_digits")),
        ("١٠٠٠٠x٠٠٠٨", Invalid("intake.invalid.id_digits")),
        ("", Invalid("intake.invalid.id_digits")),
        ("3000000004", Invalid("intake.invalid.id_prefix")),
    ],
)
def test_national_id(raw: str, expected: str | Invalid) -> None:
    assert check_national_id(raw) == expected


def test_luhn_on_known_numbers() -> None:
    assert luhn_ok("1000000008")
    assert luhn_ok("2000000006")
    assert not luhn_ok("1000000009")


@pytest.mark.parametrize(
    "raw",
    [
        "0551234567",
        "551234567",
        "+966551234567",
        "00966551234567",
        "966551234567",
        "055 123 4567",
        "055-123-4567",
        "+966 55 123 4567",
        "٠٥٥١٢٣٤٥٦٧",
        "۰۵۵۱۲۳۴۵۶۷",
    ],
)
def test_saudi_mobile_forms_all_give_e164(raw: str) -> None:
    assert check_mobile(raw) == "+966551234567"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+447700900123", "intake.invalid.mobile_foreign"),
        ("00201001234567", "intake.invalid.mobile_foreign"),
        ("0112925559", "intake.invalid.mobile_landline"),  # a Riyadh landline
        ("05512345678", "intake.invalid.mobile_format"),  # one digit too many
        ("12345", "intake.invalid.mobile_format"),
        ("جوالي", "intake.invalid.mobile_format"),
        ("", "intake.invalid.mobile_format"),
    ],
)
def test_mobile_refusals(raw: str, reason: str) -> None:
    result = check_mobile(raw)
    assert isinstance(result, Invalid)
    assert result.key == reason


def test_local_mobile() -> None:
    assert local_mobile("+966551234567") == "0551234567"
    assert local_mobile("+447700900123") == "+447700900123"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("محمد أحمد علي الزهراني", "محمد أحمد علي الزهراني"),
        ("  Mohammed   Ahmed  Ali ", "Mohammed Ahmed Ali"),
        ("مُحَمَّد أحمد علي", "مُحَمَّد أحمد علي"),  # vowelled names are letters too
        ("محمد", Invalid("intake.invalid.name_short")),
        ("محمد أحمد", Invalid("intake.invalid.name_short")),  # three parts at least
        ("محمد 123", Invalid("intake.invalid.name_letters")),
        ("محمد ١٢٣", Invalid("intake.invalid.name_letters")),
        ("محمد @أحمد", Invalid("intake.invalid.name_letters")),
        ("", Invalid("intake.invalid.name_short")),
        ("ا " * 60, Invalid("intake.invalid.name_long", {"max": 100})),
    ],
)
def test_name(raw: str, expected: str | Invalid) -> None:
    assert check_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("جده", "جدة"),
        ("Jeddah", "جدة"),
        ("الرياض", "الرياض"),
        ("riyadh", "الرياض"),
        ("رياض", "الرياض"),
        ("مكه", "مكة المكرمة"),
        ("Makkah", "مكة المكرمة"),
        ("المدينه", "المدينة المنورة"),
        ("مدينة الدمام", "الدمام"),
        ("Al-Khobar", "الخبر"),
        ("حايل", "حائل"),
        ("جيزان", "جازان"),
        ("الهفوف", "الأحساء"),
        ("قرية الخير", "قرية الخير"),  # unknown but plausible: kept as written
        ("12", Invalid("intake.invalid.city")),
        ("ج", Invalid("intake.invalid.city")),
        ("", Invalid("intake.invalid.city")),
        ("ب" * 41, Invalid("intake.invalid.city")),
    ],
)
def test_city(raw: str, expected: str | Invalid) -> None:
    assert check_city(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("أحتاج إلى سلة غذائية", "أحتاج إلى سلة غذائية"),
        ("قصير", Invalid("intake.invalid.description_short", {"min": 10})),
        ("   ", Invalid("intake.invalid.description_short", {"min": 10})),
        ("ا" * 1000, "ا" * 1000),
        ("ا" * 5000, Invalid("intake.invalid.description_long", {"count": 5000, "max": 1000})),
        ("🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏🙏", Invalid("intake.invalid.description_words")),
        ("😢😢😢 ١٢٣٤٥٦٧٨٩ !!", Invalid("intake.invalid.description_words")),
        ("🙏🙏🙏🙏🙏 ساعدوني", "🙏🙏🙏🙏🙏 ساعدوني"),
    ],
)
def test_description(raw: str, expected: str | Invalid) -> None:
    assert check_description(raw) == expected
