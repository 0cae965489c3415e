"""Feedback end to end: a complaint over WhatsApp, a suggestion with a photo over Telegram,
staff's answer reaching the beneficiary and their reply landing in the same feedback,
roles, bad input, and the deadline alerting managers (the clock in the test's hands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    CHAT,
    INTAKE_WHATSAPP,
    StaffGroup,
    TelegramChat,
    WhatsApp,
    eventually,
    make_settings,
)
from fakes.telegram_api import FakeTelegram, group_message, private_message
from fakes.twilio_api import FakeTwilio
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col
from test_followups import Clock

from bot.config import Settings
from bot.feedback import FeedbackError
from bot.media import MediaStore
from bot.server import Tawasul
from storage.db import Database
from storage.feedback import FeedbackRepository
from storage.models import AuditEntry, Feedback, FeedbackEvent, Staff
from storage.repositories import StaffRepository

# Sunday 6 January 2030, 10:00 in Riyadh: years ahead, the real scheduler never fires.
START = datetime(2030, 1, 6, 7, 0, tzinfo=UTC)
STAFF_GROUP = -1001234567890


async def add_staff(database: Database, username: str, role: str) -> Staff:
    async with database.session() as session, session.begin():
        return await StaffRepository(session).add(username, role, now=START)


async def stored(database: Database, reference: str) -> tuple[Feedback, list[FeedbackEvent]]:
    async with database.session() as session:
        repository = FeedbackRepository(session)
        feedback = await repository.get(reference)
        assert feedback is not None
        return feedback, await repository.events(feedback)


async def feedback_count(database: Database) -> int:
    async with database.session() as session:
        return len((await session.scalars(select(Feedback))).all())


@pytest.fixture
async def whatsapp(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, WhatsApp, Clock]]:
    clock = Clock(START)
    tawasul = Tawasul(make_settings(tmp_path, twilio), database, clock=clock)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, WhatsApp(client, twilio, database), clock


async def complain(phone: WhatsApp) -> str:
    """Menu 6, a complaint, consent to be contacted: the reference told."""
    await phone.send("السلام عليكم")
    await phone.send("٦")
    await phone.send("٢")
    await phone.send("تأخر صرف المساعدة ثلاثة أشهر")
    reply = await phone.send("١")
    return "FB-" + reply.split("FB-")[1][:6]


async def test_a_complaint_over_whatsapp_is_answered_and_the_reply_lands_in_it(
    whatsapp: tuple[Tawasul, WhatsApp, Clock], twilio: FakeTwilio
) -> None:
    tawasul, phone, _clock = whatsapp
    reference = await complain(phone)
    assert reference == "FB-000001"
    feedback, _ = await stored(tawasul.database, reference)
    assert (feedback.kind, feedback.status, feedback.may_contact) == ("complaint", "received", True)
    assert feedback.channel == "whatsapp" and feedback.language == "ar"
    # Five working days from Sunday: the next Sunday.
    assert feedback.due_at == START + timedelta(days=7)

    manager = await add_staff(tawasul.database, "huda", "manager")
    before = len(twilio.messages)
    await tawasul.feedback.answer(reference, "نعتذر عن التأخير، صُرفت المساعدة اليوم.", by=manager)
    answer = await _next_body(twilio, before)
    assert reference in answer and "صُرفت المساعدة اليوم" in answer

    reply = await phone.send("شكراً لكم، وصلت")
    assert reference in reply and "أُضيف" in reply
    feedback, events = await stored(tawasul.database, reference)
    assert [(e.kind, e.by) for e in events] == [
        ("received", None),
        ("answer", "huda"),
        ("reply", None),
    ]
    assert events[-1].text == "شكراً لكم، وصلت"
    assert feedback.status == "in_progress" and feedback.answered_at is not None
    async with tawasul.database.session() as session:
        audit = (await session.scalars(select(AuditEntry))).all()
    assert [(a.action, a.target, a.username) for a in audit] == [
        ("feedback_answer", reference, "huda")
    ]


async def _next_body(twilio: FakeTwilio, before: int) -> str:
    await eventually(lambda: len(twilio.messages) > before, "the answer")
    return str(twilio.messages[before]["Body"])


async def test_an_agent_cannot_open_a_complaint_but_sees_suggestions(
    whatsapp: tuple[Tawasul, WhatsApp, Clock],
) -> None:
    tawasul, phone, _clock = whatsapp
    reference = await complain(phone)
    agent = await add_staff(tawasul.database, "sara", "agent")
    with pytest.raises(FeedbackError, match="managers") as refused:
        await tawasul.feedback.show(reference, by=agent)
    assert refused.value.forbidden
    with pytest.raises(FeedbackError, match="managers"):
        await tawasul.feedback.answer(reference, "أي شيء", by=agent)
    assert await tawasul.feedback.list_feedback(by=agent) == []
    _, events = await stored(tawasul.database, reference)
    assert [e.kind for e in events] == ["received"]  # nothing written by the refusal


async def test_bad_input_gets_clear_replies_and_stores_nothing(
    whatsapp: tuple[Tawasul, WhatsApp, Clock],
) -> None:
    tawasul, phone, _clock = whatsapp
    await phone.send("السلام عليكم")
    await phone.send("٦")
    await phone.send("١")
    assert "الحد الأقصى ٢٠٠٠ حرف" in await phone.send("ك" * 5000)
    assert await feedback_count(tawasul.database) == 0
    # Someone else's request is no choice: only the sender's own are offered.
    desk = tawasul.feedback
    with pytest.raises(FeedbackError, match="no feedback"):
        await desk.answer("FB-999999", "نص")
    with pytest.raises(FeedbackError, match="no feedback"):
        await desk.show("REQ-000001")
    with pytest.raises(FeedbackError, match="empty"):
        await desk.answer("FB-000001", "   ")


async def test_a_suggestion_over_telegram_keeps_its_photo(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    tawasul = Tawasul(make_settings(tmp_path, telegram=telegram), database, clock=Clock(START))
    telegram.add_file("AgACphoto", b"\xff\xd8\xff\xe0 a photo of the queue", "photos/q.jpg")
    photo = [{"file_id": "AgACphoto", "file_unique_id": "u1", "width": 90, "height": 60}]
    async with TestClient(TestServer(tawasul.app())) as client:
        chat = TelegramChat(client, telegram, database)
        await chat.send(private_message(CHAT, "/start"))
        await chat.send(private_message(CHAT, "٦"))
        await chat.send(private_message(CHAT, "١"))
        [reply] = await chat.send(
            private_message(CHAT, caption="نقترح مظلة للمنتظرين أمام المقر", photo=photo)
        )
    assert "FB-000001" in reply["text"] and "٥ أيام عمل" in reply["text"]
    feedback, _ = await stored(database, "FB-000001")
    assert feedback.kind == "suggestion" and feedback.text == "نقترح مظلة للمنتظرين أمام المقر"
    [attachment] = feedback.attachments
    assert attachment["url"].startswith("media/") and attachment["content_type"] == "image/jpeg"
    kept = MediaStore(tmp_path / "media", database).read(attachment["url"])
    assert kept == b"\xff\xd8\xff\xe0 a photo of the queue"  # in clear with the key


async def test_an_overdue_complaint_alerts_the_managers_in_the_staff_group(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> None:
    clock = Clock(START)
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=STAFF_GROUP)
    tawasul = Tawasul(settings, database, clock=clock)

    def posts() -> list[str]:
        calls = telegram.calls("sendMessage")
        return [c.params["text"] for c in calls if c.params["chat_id"] == STAFF_GROUP]

    async with TestClient(TestServer(tawasul.app())) as client:
        reference = await complain(WhatsApp(client, twilio, database))
        await tawasul.scheduler.run_due(clock())
        [announced] = posts()
        assert reference in announced and "شكوى جديدة" in announced
        assert "تأخر صرف المساعدة" not in announced  # agents read the group too
        assert await tawasul.scheduler.run_due(clock.advance(days=6, hours=23)) == 0
        await tawasul.scheduler.run_due(clock.advance(hours=1))
        overdue = posts()[-1]
        assert reference in overdue and "تجاوز موعد الرد" in overdue
        late = await tawasul.feedback.list_feedback(overdue=True)
        assert [f.reference for f in late] == [reference]
        # Answered in time, a second one raises no alert.
        second = await complain(WhatsApp(client, twilio, database, number="+966557654321"))
        await tawasul.scheduler.run_due(clock())
        await tawasul.feedback.answer(second, "تمت المعالجة")
        count = len(posts())
        await tawasul.scheduler.run_due(clock.advance(days=8))
        assert len(posts()) == count
        assert [f.reference for f in await tawasul.feedback.list_feedback(overdue=True)] == [
            reference
        ]


async def test_the_staff_group_shows_feedback_by_role_and_a_reply_answers_it(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> None:
    clock = Clock(START)
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=STAFF_GROUP)
    async with database.session() as session, session.begin():
        await StaffRepository(session).add("sara", "agent", telegram_id=4242, now=START)
        await StaffRepository(session).add("huda", "manager", telegram_id=4343, now=START)
    tawasul = Tawasul(settings, database, clock=clock)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, database)
        group = StaffGroup(client, telegram, STAFF_GROUP)
        reference = await complain(phone)
        await tawasul.scheduler.run_due(clock())
        [announced] = await group.wait_posts(1)
        assert reference in announced["text"]

        # An agent asking for a complaint is refused; nothing of it is shown.
        await group.update(group_message(STAFF_GROUP, 4242, f"/feedback {reference}"))
        refused = (await group.wait_posts(2))[-1]["text"]
        assert "للمديرين" in refused and "تأخر صرف المساعدة" not in refused
        # An agent's reply to the announcement answers nothing.
        await group.update(
            group_message(STAFF_GROUP, 4242, "سأتابع", reply_to_message_id=group.message_id(0))
        )
        await group.wait_posts(3)
        _, events = await stored(database, reference)
        assert [e.kind for e in events] == ["received"]

        # The manager sees its facts, then answers by replying to the announcement.
        await group.update(group_message(STAFF_GROUP, 4343, f"/feedback {reference}"))
        shown = (await group.wait_posts(4))[-1]["text"]
        assert reference in shown and "شكوى" in shown
        before = len(twilio.messages)
        await group.update(
            group_message(
                STAFF_GROUP,
                4343,
                "نعتذر، صُرفت المساعدة اليوم.",
                reply_to_message_id=group.message_id(0),
            )
        )
        body = await _next_body(twilio, before)
        assert reference in body and "صُرفت المساعدة اليوم" in body
        assert "أُرسل الرد" in (await group.wait_posts(5))[-1]["text"]
        feedback, events = await stored(database, reference)
        assert feedback.status == "answered" and [(e.kind, e.by) for e in events][-1] == (
            "answer",
            "huda",
        )

        # The beneficiary replies: the group is told (a complaint: without the words), and
        # a reply to that post answers again.
        await phone.send("لكن المبلغ ناقص")
        await tawasul.scheduler.run_due(clock())
        told = (await group.wait_posts(6))[-1]["text"]
        assert reference in told and "ناقص" not in told
        before = len(twilio.messages)
        await group.update(
            group_message(
                STAFF_GROUP, 4343, "سنصرف الباقي غداً", reply_to_message_id=group.message_id(5)
            )
        )
        assert "سنصرف الباقي غداً" in await _next_body(twilio, before)
        _, events = await stored(database, reference)
        assert [e.kind for e in events][-3:] == ["answer", "reply", "answer"]

        # Closed, then the beneficiary writes again: open again where staff look, the
        # reply in its timeline, the group told as before.
        await tawasul.feedback.set_status(reference, "closed", by="huda")
        await phone.send("لم يصلني الباقي بعد")
        feedback, events = await stored(database, reference)
        assert feedback.status == "in_progress"
        assert [(e.kind, e.from_status, e.to_status) for e in events][-2:] == [
            ("status", "answered", "closed"),
            ("reply", "closed", "in_progress"),
        ]
        assert events[-1].text == "لم يصلني الباقي بعد"
        open_ones = await tawasul.feedback.list_feedback(status="in_progress")
        assert [f.reference for f in open_ones] == [reference]
        await tawasul.scheduler.run_due(clock())
        told = (await group.wait_posts(8))[-1]["text"]
        assert reference in told and "لم يصلني" not in told

    # Reads are audited like a case file's: who, where; a refused one read nothing.
    async with database.session() as session:
        reads = (
            await session.scalars(
                select(AuditEntry)
                .where(col(AuditEntry.action) == "feedback_read")
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert [(a.target, a.username, a.detail["where"]) for a in reads] == [
        (reference, "huda", "staff_group")
    ]


async def test_thanks_are_told_to_the_staff_member_named(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> None:
    clock = Clock(START)
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=STAFF_GROUP)
    await add_staff(database, "sara", "agent")
    await add_staff(database, "huda", "researcher")
    tawasul = Tawasul(settings, database, clock=clock)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, database)
        group = StaffGroup(client, telegram, STAFF_GROUP)
        for line in INTAKE_WHATSAPP:
            await phone.send(line)
        await tawasul.desk.set_status("REQ-000001", "under_review", by="huda")
        # Named in the text by username.
        for line in ("٦", "٣", "شكراً للأخت Sara على لطفها"):
            await phone.send(line)
        reply = await phone.send("٢")  # not about a request
        assert "FB-000001" in reply
        # About the request huda moved on: thanks to her.
        for line in ("٦", "٣", "جزاكم الله خيراً على سرعة الدراسة"):
            await phone.send(line)
        assert "FB-000002" in await phone.send("١")
        await tawasul.scheduler.run_due(clock())
        posts = [p["text"] for p in await group.wait_posts(2)]
    assert any("sara" in p and "FB-000001" in p and "لطفها" in p for p in posts)
    assert any("huda" in p and "FB-000002" in p for p in posts)
    first, _ = await stored(database, "FB-000001")
    second, _ = await stored(database, "FB-000002")
    assert (first.named_staff, second.named_staff) == ("sara", "huda")
    assert second.request_id is not None and first.due_at is None


def test_answer_within_and_holidays_are_read_and_checked() -> None:
    settings = Settings(feedback={"answer_within": "3d", "holidays": ["2030-01-07"]})
    flow = settings.flow_settings()
    assert (flow.feedback_answer_days, flow.holidays) == (3, (date(2030, 1, 7),))
    for bad in ("5 days", "0d", "5h", "100d"):
        with pytest.raises(ValidationError, match="working days"):
            Settings(feedback={"answer_within": bad})
    with pytest.raises(ValidationError):
        Settings(feedback={"holidays": ["next friday"]})
    with pytest.raises(ValidationError):
        Settings(feedback={"answer_in": "5d"})  # unknown keys refused
