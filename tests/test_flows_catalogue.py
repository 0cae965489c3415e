"""The message catalogue: complete in both languages, short enough, every used key present."""

import re
import string
from pathlib import Path

import pytest

from flows import text
from flows.catalogue import CATALOGUE
from flows.catalogue.beneficiary import BENEFICIARY
from flows.catalogue.dashboard import DASHBOARD
from flows.catalogue.staff import STAFF
from flows.status import status_label

FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"
STATUSES = (
    "submitted",
    "under_review",
    "needs_info",
    "accepted",
    "rejected",
    "delivered",
    "closed",
)
# The longest sentence a cheap phone should have to scroll through.
ARABIC_MAX_CHARS = 600


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_entry_has_arabic_and_english(key: str) -> None:
    entry = CATALOGUE[key]
    assert set(entry) == {"ar", "en"}
    assert entry["ar"].strip()
    assert entry["en"].strip()
    assert len(entry["ar"]) <= ARABIC_MAX_CHARS
    assert _placeholders(entry["ar"]) == _placeholders(entry["en"])


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_arabic_entries_are_arabic_and_use_arabic_indic_digits(key: str) -> None:
    arabic = CATALOGUE[key]["ar"]
    assert re.search("[\u0600-\u06ff]", arabic) or key == "intake.counter" or "{" in arabic
    without_placeholders = re.sub(r"\{[a-z_]+\}", "", arabic).replace("PDF", "")
    assert not re.search("[0-9]", without_placeholders), "Arabic text should use ٠-٩"


def test_every_key_the_code_names_exists() -> None:
    prefixes = "error|common|menu|intake|period|date|status|rating|handoff|notice|needs_info|staff"
    pattern = re.compile(rf"\"((?:{prefixes})\.[a-z_]+(?:\.[a-z_0-9]+)*)\"")
    used = {
        key
        for path in FLOWS_DIR.glob("*.py")  # the catalogue's own package left out
        for key in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert len(used) > 50
    assert used - set(CATALOGUE) == set()


def test_each_text_is_in_its_audience_s_module() -> None:
    assert len(DASHBOARD) > 100 and all(key.startswith("dash.") for key in DASHBOARD)
    assert len(STAFF) > 20 and all(key.startswith("staff.") for key in STAFF)
    assert not [key for key in BENEFICIARY if key.startswith(("dash.", "staff."))]
    assert CATALOGUE.keys() >= BENEFICIARY.keys() | STAFF.keys() | DASHBOARD.keys()


def test_text_fills_parameters_with_the_reader_s_digits() -> None:
    assert text("ar", "intake.counter", step=2, total=8) == "(٢/٨)"
    assert text("en", "intake.counter", step=2, total=8) == "(2/8)"
    # Strings (reference numbers) stay as given: they are typed back.
    assert "REQ-000123" in text("ar", "status.hint", example="REQ-000123")


@pytest.mark.parametrize("status", STATUSES)
def test_every_request_status_has_a_label(status: str) -> None:
    assert status_label("ar", status) != status
    assert status_label("en", status) != status
