"""Repositories given nothing, unknowns and filters: what each answers, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from flows.types import Address, InboundMessage, Location, OutboundMessage, RecordRating
from storage.db import Database
from storage.models import FollowUp, Message
from storage.repositories import (
    AuditRepository,
    FollowUpRepository,
    IdentityRepository,
    MessageRepository,
    RatingRepository,
    StaffRepository,
)

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PHONE = Address("whatsapp", "+966501234567")


async def messages(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def test_a_shared_place_is_kept_with_the_message_and_an_unknown_identity_gets_nothing(
    database: Database,
) -> None:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        assert identity.id is not None
        place = InboundMessage(
            PHONE, NOW, "", platform_message_id="SM1", location=Location(21.5433, 39.1728)
        )
        stored = await MessageRepository(session).log_inbound(identity.id, place)
        queued = await MessageRepository(session).enqueue_to(
            identity.id + 1000, [OutboundMessage("تحديث", "ar")], NOW, kind="notice"
        )
    assert queued == []  # nobody to write to: nothing queued
    async with database.session() as session:
        row = await session.get(Message, stored)
    assert row is not None and row.media == [{"location": [21.5433, 39.1728]}]
    assert await messages(database) == 1


async def test_a_receipt_of_no_delivery_status_is_refused(database: Database) -> None:
    async with database.session() as session, session.begin():
        repository = MessageRepository(session)
        for status in ("sent", "pending", "queued"):
            with pytest.raises(ValueError, match="not a delivery status"):
                await repository.mark_delivery("whatsapp", "SM1", status)


async def test_a_failed_message_reopens_only_below_its_attempts(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        assert identity.id is not None
        repository = MessageRepository(session)
        tried = await repository.enqueue(identity.id, "whatsapp", OutboundMessage("أ", "ar"), NOW)
        await repository.mark_sent(tried, NOW, "SM" + "a" * 32)
        assert await repository.mark_delivery("whatsapp", "SM" + "a" * 32, "failed", "63016")
    async with database.session() as session, session.begin():
        repository = MessageRepository(session)
        assert await repository.reopen_failed("whatsapp", "SM" + "b" * 32, below_attempts=3) is None
        assert await repository.reopen_failed("whatsapp", "SM" + "a" * 32, below_attempts=0) is None
        again = await repository.reopen_failed("whatsapp", "SM" + "a" * 32, below_attempts=3)
    assert again == tried
    async with database.session() as session:
        row = await session.get(Message, tried)
    assert row is not None and row.status == "pending"


async def test_follow_ups_with_nothing_to_do_touch_nothing(database: Database) -> None:
    async with database.session() as session, session.begin():
        followups = FollowUpRepository(session)
        await followups.schedule_many([], now=NOW)
        assert await followups.cancel([], NOW) == []
        await followups.schedule_many(
            [
                {"key": "later", "kind": "checkin", "due_at": NOW + timedelta(days=7)},
                {"key": "sooner", "kind": "checkin", "due_at": NOW + timedelta(days=1)},
            ],
            now=NOW,
        )
    async with database.session() as session:
        followups = FollowUpRepository(session)
        every = [row.key for row in await followups.pending()]
        due = [row.key for row in await followups.pending(due_by=NOW + timedelta(days=2))]
        count = await session.scalar(select(func.count()).select_from(FollowUp))
    assert every == ["sooner", "later"] and due == ["sooner"] and count == 2


async def test_the_audit_log_and_the_ratings_filter_as_asked(database: Database) -> None:
    async with database.session() as session, session.begin():
        sara = await StaffRepository(session).add("sara", "agent", now=NOW)
        audit = AuditRepository(session)
        await audit.add(sara, "login", now=NOW)
        await audit.add(sara, "note", "REQ-000001", now=NOW)
        await audit.add(sara, "login", now=NOW + timedelta(hours=1))
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        assert identity.id is not None
        ratings = RatingRepository(session)
        for days, score in ((0, 5), (10, 3), (40, 1)):
            await ratings.add(
                identity,
                RecordRating(score, None),
                channel="whatsapp",
                now=NOW + timedelta(days=days),
            )
    async with database.session() as session:
        logins = await AuditRepository(session).recent(action="login")
        everything = await AuditRepository(session).recent()
        november = await RatingRepository(session).report(
            since=NOW + timedelta(days=1), until=NOW + timedelta(days=30)
        )
    assert [e.action for e in logins] == ["login", "login"]
    assert logins[0].created_at > logins[1].created_at  # newest first
    assert len(everything) == 3
    assert [row.score for row in november] == [3]
