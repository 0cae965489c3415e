"""Column types shared by the tables: timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import types
from sqlalchemy.engine import Dialect


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
        if value.utcoffset() is None:
            raise ValueError("naive datetime given; use an aware datetime (UTC)")
        utc = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must be written the same way.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
