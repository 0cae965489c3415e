"""Feedback storage: references, the timeline, the case file, lists, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from test_storage_staff import NOW, STRANGER, WIDOW_PHONE, file_request

from flows.types import Address, Media
from storage.db import Database
from storage.feedback import (
    ANSWERED,
    IN_PROGRESS,
    RECEIVED,
    FeedbackRepository,
    NewFeedback,
    number_in,
)
from storage.models import Feedback
from storage.repositories import IdentityRepository, RequestRepository

DUE = NOW + timedelta(days=7)


async def give(
    database: Database, address: Address, given: NewFeedback, due: datetime | None = DUE
) -> Feedback:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(address, NOW)
        await session.flush()
        return await FeedbackRepository(session).create(
            identity, given, channel=address.channel, language="ar", due_at=due, now=NOW
        )


@pytest.mark.parametrize(
    ("said", "number"),
    [
        ("FB-000012", 12),
        ("fb-12", 12),
        (" 12 ", 12),
        ("FB12", 12),
        ("REQ-000012", None),
        ("", None),
    ],
)
def test_references_are_read_in_every_usual_form(said: str, number: int | None) -> None:
    assert number_in(said) == number


async def test_feedback_gets_a_reference_and_a_first_timeline_entry(database: Database) -> None:
    photo = Media("media/abc.jpg", "image/jpeg")
    first = await give(database, WIDOW_PHONE, NewFeedback("suggestion", "توصيل للمنازل", (photo,)))
    second = await give(database, WIDOW_PHONE, NewFeedback("thanks", "شكراً"), due=None)
    assert first.reference == "FB-000001" and second.reference == "FB-000002"
    async with database.session() as session:
        feedback = FeedbackRepository(session)
        stored = await feedback.get("fb-1")
        assert stored is not None and stored.status == RECEIVED
        assert stored.attachments == [{"url": "media/abc.jpg", "content_type": "image/jpeg"}]
        assert stored.due_at == DUE
        events = await feedback.events(stored)
    assert [(e.kind, e.to_status) for e in events] == [("received", RECEIVED)]


async def test_a_request_is_linked_only_when_the_sender_filed_it(database: Database) -> None:
    own = await file_request(database, WIDOW_PHONE)
    other = await file_request(database, STRANGER, national_id="2000000006")
    mine = await give(database, WIDOW_PHONE, NewFeedback("thanks", "شكراً", request_reference=own))
    theirs = await give(
        database, WIDOW_PHONE, NewFeedback("suggestion", "اقتراح", request_reference=other)
    )
    assert mine.request_id is not None
    assert theirs.request_id is None
    async with database.session() as session:
        request = await RequestRepository(session).get_by_reference(own)
        assert request is not None and request.id is not None
        notes = await RequestRepository(session).notes(request.id)
        linked = await FeedbackRepository(session).for_request(request.id)
    assert [f.reference for f in linked] == [mine.reference]
    assert [n.author for n in notes] == ["feedback"]
    assert mine.reference is not None and mine.reference in notes[0].text


async def test_a_complaint_stays_off_the_case_notes(database: Database) -> None:
    own = await file_request(database, WIDOW_PHONE)
    given = NewFeedback("complaint", "تأخر الرد", request_reference=own, may_contact=True)
    complaint = await give(database, WIDOW_PHONE, given)
    assert complaint.may_contact is True and complaint.request_id is not None
    async with database.session() as session:
        notes = await RequestRepository(session).notes(complaint.request_id)
    assert notes == []


async def test_answer_reply_and_status_changes_make_the_timeline(database: Database) -> None:
    stored = await give(database, WIDOW_PHONE, NewFeedback("complaint", "تأخر الرد"))
    later = NOW + timedelta(hours=3)
    async with database.session() as session, session.begin():
        feedback = FeedbackRepository(session)
        row = await feedback.get_for_update(stored.reference or "")
        assert row is not None
        await feedback.change_status(row, IN_PROGRESS, now=NOW, by="amal")
        await feedback.answer(row, "نعتذر، تمت معالجة طلبك", by="amal", now=later)
        await feedback.add_reply(row, "شكراً لكم", (), now=later + timedelta(hours=1))
    async with database.session() as session:
        feedback = FeedbackRepository(session)
        row = await feedback.get(stored.reference or "")
        assert row is not None
        events = await feedback.events(row)
    assert row.status == IN_PROGRESS  # a reply to an answer asks staff to look again
    assert row.answered_at == later
    assert [(e.kind, e.to_status, e.by) for e in events] == [
        ("received", RECEIVED, None),
        ("status", IN_PROGRESS, "amal"),
        ("answer", ANSWERED, "amal"),
        ("reply", IN_PROGRESS, None),
    ]


async def test_lists_filter_by_kind_status_and_deadline(database: Database) -> None:
    late = await give(database, WIDOW_PHONE, NewFeedback("complaint", "a"), due=NOW)
    await give(database, WIDOW_PHONE, NewFeedback("suggestion", "b"))
    await give(database, WIDOW_PHONE, NewFeedback("thanks", "c"), due=None)
    async with database.session() as session:
        feedback = FeedbackRepository(session)
        visible = await feedback.list(kinds=("suggestion", "thanks"))
        overdue = await feedback.list(overdue_at=NOW + timedelta(minutes=1))
        received = await feedback.list(status=RECEIVED)
    assert [f.kind for f in visible] == ["thanks", "suggestion"]
    assert [f.reference for f in overdue] == [late.reference]
    assert len(received) == 3


async def test_nothing_is_stored_for_an_empty_text(database: Database) -> None:
    with pytest.raises(ValueError, match="text"):
        await give(database, WIDOW_PHONE, NewFeedback("suggestion", "   "))
    with pytest.raises(ValueError, match="kind"):
        await give(database, WIDOW_PHONE, NewFeedback("praise", "x"))
    async with database.session() as session:
        assert await FeedbackRepository(session).list() == []
