"""What a beneficiary sent, made safe to store, show and compare: one cleaning for every channel.

Every channel builds an ``InboundMessage``, and the message cleans its own text and
payload when it is made, so nothing that reaches the engine (or the database, the staff
group, the dashboard) carries a character that cannot be stored or that changes how
the text around it is shown.
"""

from __future__ import annotations

import re
import unicodedata

# Every way of ending a line becomes "\n": CRLF, CR, NEL and the Unicode separators.
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")
# Dropped: control characters other than tab and newline (NUL cannot be stored in
# PostgreSQL and SQLite cuts the text at it); lone surrogates, which a JSON "\ud800"
# escape makes and UTF-8 cannot encode; noncharacters and the byte order mark; and the
# direction embeddings, overrides and isolates, which would reorder what staff read
# around them. The marks Arabic text really uses (RLM, LRM, ALM, ZWJ, ZWNJ) stay.
_DROPPED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef\ufeff\ufffe\uffff"
    "\u202a-\u202e\u2066-\u2069]"
)
# Arabic presentation forms (letters as shaped for print, as copied from a PDF) and
# full-width forms become the ordinary letters and digits every flow matches against.
# The word ligatures (U+FDF0-U+FDFF, such as the one for "صلى الله عليه وسلم") are kept
# as written.
_COMPATIBLE = re.compile("[\ufb50-\ufdcf\ufe70-\ufefc\uff01-\uff5e]+")
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """``text`` with line breaks unified, unstorable and reordering characters dropped,
    presentation forms unfolded and Unicode composed (NFC)."""
    if text.isascii() and text.isprintable():
        return text
    text = _DROPPED.sub("", _LINE_BREAKS.sub("\n", text))
    text = _COMPATIBLE.sub(lambda found: unicodedata.normalize("NFKC", found[0]), text)
    return unicodedata.normalize("NFC", text)


def clean_line(text: str) -> str:
    """``clean_text`` on one line: any run of spaces, tabs or newlines becomes one space,
    and none is left at either end (a button's payload, a file name)."""
    return _SPACES.sub(" ", clean_text(text)).strip()
