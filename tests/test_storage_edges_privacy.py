"""Erasure's less travelled paths, on SQLite and PostgreSQL: the photos a person sent
with feedback and with a reply to its answer are named for deletion and the texts go;
erasing an applicant already gone changes nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from test_storage_feedback import give
from test_storage_staff import NOW, WIDOW_PHONE, file_request

from flows.types import Media
from storage.db import Database
from storage.feedback import FeedbackRepository, NewFeedback
from storage.models import Feedback, FeedbackEvent, SupportRequest
from storage.privacy import erase_beneficiary
from storage.repositories import RequestRepository


async def test_erasing_names_the_feedback_s_files_and_clears_its_texts(
    database: Database,
) -> None:
    reference = await file_request(database, WIDOW_PHONE)
    photo = Media("media/fb-photo.jpg", "image/jpeg", "بيتي.jpg")
    report = Media("media/fb-report.pdf", "application/pdf", "تقرير.pdf")
    given = NewFeedback("complaint", "لم يصلني رد منذ شهر", (photo,))
    await give(database, WIDOW_PHONE, given)
    async with database.session() as session, session.begin():
        feedback = FeedbackRepository(session)
        stored = await feedback.get("FB-000001")
        assert stored is not None
        await feedback.answer(stored, "نعتذر، نراجع طلبك", by="huda", now=NOW)
        await feedback.add_reply(stored, "هذا التقرير", (report,), now=NOW + timedelta(hours=1))
    async with database.session() as session, session.begin():
        request = await RequestRepository(session).get_by_reference(reference)
        assert request is not None
        erased = await erase_beneficiary(session, request.beneficiary_id)
    assert set(erased.media) == {"media/fb-photo.jpg", "media/fb-report.pdf"}
    async with database.session() as session:
        (row,) = (await session.scalars(select(Feedback))).all()
        assert (row.text, row.attachments, row.kind) == ("", [], "complaint")  # counted still
        events = (await session.scalars(select(FeedbackEvent))).all()
        assert len(events) == 3  # the timeline's rows stay, for the report's times
        assert all(e.text is None and e.attachments == [] for e in events)


async def test_erasing_an_applicant_already_gone_changes_nothing(database: Database) -> None:
    reference = await file_request(database, WIDOW_PHONE)
    async with database.session() as session, session.begin():
        request = await RequestRepository(session).get_by_reference(reference)
        assert request is not None and request.beneficiary_id is not None
        erased = await erase_beneficiary(session, request.beneficiary_id + 1000)
    assert (erased.requests, erased.messages, erased.media) == (0, 0, ())
    async with database.session() as session:
        (kept,) = (await session.scalars(select(SupportRequest))).all()
        assert kept.answers["name"] and kept.answers["national_id"]
