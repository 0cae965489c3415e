"""storage.prepared: the hot path's statements on SQLite's own connection give what
SQLAlchemy's execution gives (types, expanding parameters, errors, unflushed objects)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from statements import counting_statements

from flows.types import Address, OutboundMessage
from storage import prepared
from storage.columns import UtcDateTime
from storage.db import Database
from storage.models import ChannelIdentity, Message
from storage.repositories import IdentityRepository, MessageRepository
from storage.repositories._shared import _MESSAGE, _hot_statements
from storage.repositories.conversations import _TOUCH_IDENTITY_ID
from storage.repositories.followups import _CANCEL_KINDS
from storage.repositories.messages import _MARK_SENT, SentMark, _due_query, _unsettled_query

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def _outbound_row(identity_id: int, text_: str, platform_id: str | None = None) -> dict[str, Any]:
    row = MessageRepository._row(identity_id, "whatsapp", "out", "pending")
    row.update(
        text=text_,
        platform_message_id=platform_id,
        choices=[{"payload": "1", "label": "نعم"}],
        created_at=NOW,
        language="ar",
    )
    return row


async def test_what_is_written_is_read_back_as_sqlalchemy_reads_it(database: Database) -> None:
    """Encrypted text, JSON and dates go through their types both ways."""
    async with database.session() as session, session.begin():
        identity_id = await IdentityRepository(session).touch(Address("whatsapp", "+966500"), NOW)
        insert = _hot_statements(session.get_bind().dialect.name).outbound
        found = await prepared.rows(session, insert, _outbound_row(identity_id, "نص سري"))
        message_id = found[0].id
    async with database.session() as session:
        stored = await session.get(Message, message_id)
        assert stored is not None
        assert (stored.text, stored.choices) == ("نص سري", [{"payload": "1", "label": "نعم"}])
        assert stored.created_at == NOW
        raw = await session.execute(
            text("SELECT text FROM message WHERE id = :id"), {"id": message_id}
        )
        assert "نص سري" not in raw.scalar_one()  # encrypted at rest, as by the ORM
        # Expanding parameters (IN a list), rows with their columns' names.
        params = {"due_channels": ["whatsapp", "sms"], "due_per": 4, "due_limit": 10}
        query = _due_query(("reply",), False, False, False)
        ours = await prepared.rows(session, query, params)
        theirs = (await session.execute(query, params)).all()
        assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
        assert [(row.id, row.text, row.user_id) for row in ours] == [
            (message_id, "نص سري", "+966500")
        ]
        unsettled = await prepared.rows(
            session, _unsettled_query(False), {"unsettled_ids": [identity_id, 999]}
        )
        assert [tuple(row) for row in unsettled] == [(identity_id, message_id)]


async def test_a_clash_is_sqlalchemys_integrity_error_and_the_rest_stands(
    database: Database,
) -> None:
    async with database.session() as session, session.begin():
        identity_id = await IdentityRepository(session).touch(Address("whatsapp", "+966501"), NOW)
        insert = _hot_statements(session.get_bind().dialect.name).outbound
        await prepared.rows(session, insert, _outbound_row(identity_id, "أولى", "wamid.1"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await prepared.rows(session, insert, _outbound_row(identity_id, "ثانية", "wamid.1"))
    async with database.session() as session:
        texts = (await session.execute(select(_MESSAGE.c.text))).scalars().all()
        assert texts == ["أولى"]


async def test_what_the_session_holds_unflushed_is_written_first(database: Database) -> None:
    async with database.session() as session, session.begin():
        session.add(ChannelIdentity(channel="sms", user_id="+966502", created_at=NOW))
        where = {"at_channel": "sms", "at_user_id": "+966502", "at_now": NOW}
        found = await prepared.rows(session, _TOUCH_IDENTITY_ID, where)
        assert len(found) == 1


async def test_many_runs_the_statement_for_each(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity_id = await IdentityRepository(session).touch(Address("whatsapp", "+966503"), NOW)
        messages = MessageRepository(session)
        ids = [
            await messages.enqueue(identity_id, "whatsapp", OutboundMessage("مرحبا", "ar"), NOW)
            for _ in range(3)
        ]
        await messages.mark_all_sent([SentMark(n, NOW, f"SM{n}") for n in ids[:2]])
    async with database.session() as session:
        rows = (
            await session.execute(
                select(_MESSAGE.c.id, _MESSAGE.c.status, _MESSAGE.c.platform_message_id).order_by(
                    _MESSAGE.c.id
                )
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            (ids[0], "sent", f"SM{ids[0]}"),
            (ids[1], "sent", f"SM{ids[1]}"),
            (ids[2], "pending", None),
        ]


async def test_a_clash_in_many_is_sqlalchemys_integrity_error(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity_id = await IdentityRepository(session).touch(Address("whatsapp", "+966504"), NOW)
        rows = [_outbound_row(identity_id, text_, "wamid.2") for text_ in ("أولى", "ثانية")]
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await prepared.many(session, insert(_MESSAGE), rows)


async def test_many_with_nothing_to_run_runs_nothing(database: Database) -> None:
    with counting_statements(database) as statements:
        async with database.session() as session, session.begin():
            await prepared.many(session, _MARK_SENT, [])
    assert [s for s in statements if not s.upper().startswith(("BEGIN", "COMMIT"))] == []


async def test_many_refuses_a_statement_with_a_list_parameter(sqlite_database: Database) -> None:
    """One SQL for every run: a list spelled out per run would not be."""
    async with sqlite_database.session() as session, session.begin():
        with pytest.raises(ValueError, match="expanding"):
            await prepared.many(session, _unsettled_query(False), [{"unsettled_ids": [1, 2]}])


async def test_a_transaction_that_cannot_take_the_write_lock_fails_as_sqlalchemy_says(
    sqlite_database: Database,
) -> None:
    """``BEGIN IMMEDIATE`` runs on the driver: while another connection holds SQLite's
    write lock beyond ``busy_timeout``, the session fails with SQLAlchemy's
    ``OperationalError`` (what callers catch), and works once the lock is let go."""
    async with sqlite_database.engine.connect() as connection:  # the pool's one connection
        await connection.exec_driver_sql("PRAGMA busy_timeout=50")
        path = connection.sync_connection.engine.url.database  # type: ignore[union-attr]
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            async with sqlite_database.session() as session, session.begin():
                await IdentityRepository(session).touch(Address("whatsapp", "+966500"), NOW)
        other.execute("ROLLBACK")
        async with sqlite_database.session() as session, session.begin():
            await IdentityRepository(session).touch(Address("whatsapp", "+966500"), NOW)
        assert await count_identities(sqlite_database) == 1
    finally:
        other.close()


async def count_identities(database: Database) -> int:
    async with database.session() as session:
        return len((await session.execute(select(ChannelIdentity))).all())


async def test_a_newcomer_touched_is_created_in_two_statements_with_the_defaults(
    database: Database,
) -> None:
    later = NOW.replace(hour=10)
    address = Address("telegram", "512345678")
    with counting_statements(database) as statements:
        async with database.session() as session, session.begin():
            first = await IdentityRepository(session).touch(address, NOW)
    assert len(statements) == 2  # the touch finding nobody, the insert
    async with database.session() as session, session.begin():
        again = await IdentityRepository(session).touch(address, later)
    async with database.session() as session:
        identity = await session.get(ChannelIdentity, first)
        assert identity is not None
        assert again == first
        assert (identity.channel, identity.user_id) == ("telegram", "512345678")
        assert (identity.language, identity.opted_out, identity.unreachable) == ("ar", False, False)
        assert (identity.created_at, identity.last_inbound_at) == (NOW, later)


async def test_one_persons_pending_follow_ups_are_found_by_their_index(
    sqlite_database: Database,
) -> None:
    """SQLite's planner, with no statistics, takes the index named here: by the status
    index alone a rating would go through every pending follow-up of the charity."""
    params = {"of_identity": 1, "cancel_kinds": ["rating_prompt", "b"], "cancelled_at": NOW}
    dialect = sqlite_database.engine.dialect
    sql, values = prepared._values(prepared._compile(_CANCEL_KINDS, dialect, tuple(params)), params)
    async with sqlite_database.engine.connect() as connection:
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple(values))
        details = [row[3] for row in plan]
    assert any("ix_followup_identity_id_status" in detail for detail in details), details


def test_sqlite_datetimes_are_written_as_sqlalchemys_datetime_writes_them() -> None:
    """UtcDateTime writes SQLite's text in one step: the same text as its two steps
    (to naive UTC, then SQLAlchemy's DateTime), which stored rows and comparisons rely on."""
    dialect = sqlite.dialect()
    written = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    sqlalchemys = sqlite.DATETIME().bind_processor(dialect)
    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))]
    moments = [
        datetime(2026, 12, 3, 9, 30, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 3, 23, 59, 59, 999999, tzinfo=zones[1]),  # another day in UTC
        datetime(812, 1, 2, 3, 4, 5, 6, tzinfo=zones[2]),  # a year of three digits
        *(
            datetime(2025, 3, 1 + n, n % 24, 2 * n, n, 1000 * n, tzinfo=zones[n % 3])
            for n in range(27)
        ),
    ]
    for moment in moments:
        assert written(moment) == sqlalchemys(moment.astimezone(UTC).replace(tzinfo=None))
    assert written(None) is None
    with pytest.raises(ValueError, match="naive"):
        written(datetime(2026, 12, 3, 9, 30))
