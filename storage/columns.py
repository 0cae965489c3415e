"""Column types shared by the tables: timezone-aware UTC datetimes, encrypted personal data."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import types
from sqlalchemy.engine import Dialect

from storage.keyring import Keyring

# Where a database's engine keeps its keys: on its dialect, which every bind and result
# processor is given (one engine per ``Database``, so one keyring per database).
KEYRING_ATTRIBUTE = "tawasul_keyring"


_ORJSON = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_text(value: Any) -> str:
    """``value`` as JSON text, Arabic as it is (not ``\\u`` escapes). orjson writes it
    several times faster than ``json``, and the hot path writes some for every message;
    what orjson refuses (an integer beyond 64 bits, nesting beyond 254) ``json`` writes,
    and a value ``json`` cannot write (a datetime, a dataclass) is still refused."""
    try:
        return orjson.dumps(value, option=_ORJSON).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


# An integer beyond 64 bits has at least this many digits (orjson reads it as a float).
_LONG_NUMBER = re.compile("[0-9]{19}")


def json_value(text: str) -> Any:
    """What ``json_text`` wrote (or ``json``, before it), read back; text with a long run
    of digits is ``json``'s to read."""
    if _LONG_NUMBER.search(text) is None:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class UtcDateTime(types.TypeDecorator[datetime]):
    """A datetime stored in UTC and always read back aware, in UTC.

    PostgreSQL keeps ``timestamptz`` natively; SQLite has no time zones and would
    hand back naive values, so UTC is written without an offset and the offset is
    put back on read. Naive values are refused on write: a naive time in this
    project is a bug (is it Riyadh time or UTC?), better caught at once.
    """

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = _in_utc(value)
        # SQLite compares the stored text, so every value must be written the same way.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        # SQLite's text, written in one step: the two of them (ours, then SQLAlchemy's
        # DateTime formatting each field) took twice as long, for about ten a message.
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text


def _sqlite_text(value: datetime | None) -> str | None:
    """``value`` as SQLAlchemy's SQLite ``DateTime`` writes it, in UTC without an offset
    (``2026-12-04 02:39:33.720129``)."""
    if value is None:
        return None
    return _in_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        raise ValueError("naive datetime given; use an aware datetime (UTC)")
    return value.astimezone(UTC)


def keyring_of(dialect: Dialect) -> Keyring:
    """The keys of the database this dialect belongs to (``storage.db.Database`` sets them)."""
    keyring = getattr(dialect, KEYRING_ATTRIBUTE, None)
    if not isinstance(keyring, Keyring):
        raise RuntimeError("no privacy key is set for this database")
    return keyring


class EncryptedText(types.TypeDecorator[str]):
    """Text stored encrypted (AES-GCM, ``storage.keyring``) and read back in clear.

    Personal data (names, national IDs, phones, descriptions, message texts, notes): a
    copy of the database file, or a backup, shows none of it without the key. Such a
    column cannot be searched or sorted by its value; lookups use a keyed hash beside it.
    """

    impl = types.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).decrypt(value)


class EncryptedJSON(types.TypeDecorator[Any]):
    """A JSON value stored encrypted, as ``EncryptedText`` stores text."""

    impl = types.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).encrypt(json_text(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column not yet migrated hands back objects
            return value
        return json_value(keyring_of(dialect).decrypt(value))


class EncryptedList(types.TypeDecorator[Any]):
    """A JSON list stored encrypted, as ``EncryptedJSON``, but an empty one as ``[]`` in
    clear: it tells nothing, and most messages carry no attachment, so a message without
    one costs no encryption on the hot path. (Attachments: file names a beneficiary gave,
    the place they shared.)"""

    impl = types.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not value:
            return "[]"
        return keyring_of(dialect).encrypt(json_text(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column not yet migrated hands back objects
            return value
        if value == "[]":
            return []
        return json_value(keyring_of(dialect).decrypt(value))
