"""A staff member's calendar feed address (/staff/calendar.ics) and its secret token:
shared by the appointments pages, which serve the feed, and the staff admin page, which
shows each member's link."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from storage.keyring import Keyring
from storage.models import Staff

FEED = "/staff/calendar.ics"
# A calendar token's length (hex digits of a keyed SHA-256).
TOKEN_CHARS = 40


def _material(staff: Staff) -> str:
    return f"tawasul-calendar\0{staff.id}\0{staff.username}\0{staff.password_hash or ''}"


def calendar_token(staff: Staff, keyring: Keyring) -> str:
    """A staff member's calendar token: a keyed hash (under the privacy key, which only
    the server holds) of their id, username and password hash, so every member has one,
    a Telegram-only member too, it is theirs alone, and a new password revokes it."""
    return keyring.lookup_hash(_material(staff))[:TOKEN_CHARS]


def calendar_tokens(staff: Staff, keyring: Keyring) -> list[str]:
    """Every token the feed accepts for ``staff``: under the current privacy key and the
    previous ones (a link keeps working through a key rotation), and the digest of the
    username and password hash that links before the keyed token were made of."""
    tokens = [token[:TOKEN_CHARS] for token in keyring.lookup_hashes(_material(staff))]
    if staff.password_hash:
        earlier = f"tawasul-calendar\0{staff.username}\0{staff.password_hash}".encode()
        tokens.append(hashlib.sha256(earlier).hexdigest()[:TOKEN_CHARS])
    return tokens


def calendar_url(base: str, staff: Staff, keyring: Keyring) -> str:
    """The member's feed, to subscribe to from a calendar program."""
    return f"{base}{FEED}?" + urlencode(
        {"user": staff.username, "token": calendar_token(staff, keyring)}
    )
