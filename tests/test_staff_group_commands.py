"""The staff group's commands and buttons at their edges, and posts Telegram refuses.

Through the whole server: a beneficiary on WhatsApp (the Twilio stand-in), staff in a
Telegram group (the Bot API stand-in), the real clients. The expected answers are written
out, not taken from the catalogue, so an empty or wrong text fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    INTAKE_WHATSAPP,
    StaffGroup,
    WhatsApp,
    count,
    eventually,
    make_settings,
    settled,
)
from fakes.telegram_api import FakeTelegram, group_callback, group_message
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select
from sqlmodel import col

from bot.engine import utcnow
from bot.server import Tawasul
from storage.db import Database
from storage.models import AuditEntry, Handoff, Message, Note
from storage.models import id_of as _id
from storage.repositories import HandoffRepository, StaffRepository

GROUP = -1001234567777
SARA, NOURA = 4242, 4343  # registered staff members' Telegram ids
REFERENCE = "REQ-000001"


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, WhatsApp, StaffGroup]]:
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=GROUP)
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        await staff.add("sara", "agent", telegram_id=SARA, now=utcnow())
        await staff.add("noura", "agent", telegram_id=NOURA, now=utcnow())
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, WhatsApp(client, twilio, database), StaffGroup(client, telegram, GROUP)


async def said(group: StaffGroup, user: int, text: str, **fields: Any) -> str:
    """``user`` writes ``text`` in the group; the bot's answer there."""
    before = len(group.posts())
    await group.update(group_message(GROUP, user, text, **fields))
    return str((await group.wait_posts(before + 1))[-1]["text"])


def handoff_of(announcement: dict[str, Any]) -> int:
    """The handoff an announcement's buttons act on (``h:take:<id>``)."""
    [[take, _close]] = announcement["reply_markup"]["inline_keyboard"]
    return int(take["callback_data"].removeprefix("h:take:"))


async def on_the_phone(database: Database) -> int:
    """Messages queued for the beneficiary so far (the outbox is the database)."""
    return await count(database, Message, col(Message.channel) == "whatsapp")


async def test_a_note_from_the_group_goes_into_the_case_file_and_not_to_the_beneficiary(
    office: tuple[Tawasul, WhatsApp, StaffGroup],
) -> None:
    tawasul, phone, group = office
    for line in INTAKE_WHATSAPP:
        await phone.send(line)
    queued = await on_the_phone(tawasul.database)

    answer = await said(group, SARA, "/note req-000001 زار الباحث المنزل اليوم")
    assert answer == "أُضيفت الملاحظة إلى ملف REQ-000001"
    async with tawasul.database.session() as session:
        notes = (await session.scalars(select(Note))).all()
        audit = (
            await session.scalars(select(AuditEntry).where(col(AuditEntry.action) == "note"))
        ).all()
    assert [(n.author, n.text) for n in notes] == [("sara", "زار الباحث المنزل اليوم")]
    assert [a.target for a in audit] == [REFERENCE]
    case = await tawasul.desk.case_file(REFERENCE)
    assert "زار الباحث المنزل اليوم" in [event.text for event in case.events]
    await settled(tawasul.database, "whatsapp")
    assert await on_the_phone(tawasul.database) == queued  # a note is for staff only


async def test_a_note_or_case_of_an_unknown_reference_is_answered_and_changes_nothing(
    office: tuple[Tawasul, WhatsApp, StaffGroup],
) -> None:
    tawasul, phone, group = office
    for line in INTAKE_WHATSAPP:
        await phone.send(line)

    refused = await said(group, SARA, "/note REQ-424242 ملاحظة")
    assert refused.startswith("لم تتغير الحالة: ") and "REQ-424242" in refused
    assert await count(tawasul.database, Note) == 0
    missing = await said(group, SARA, "/case REQ-424242")
    assert missing == "لا يوجد طلب بالرقم REQ-424242"
    # A note with no words, or a command it does not know: how to use the commands.
    for wrong in ("/note REQ-000001", "/case", "/status REQ-000001", "/remind REQ-000001"):
        usage = await said(group, SARA, wrong)
        assert usage.startswith("أوامر الموظفين:") and "/note" in usage, wrong
    assert await count(tawasul.database, Note) == 0


async def test_a_handoff_already_taken_stays_with_whoever_took_it_first(
    office: tuple[Tawasul, WhatsApp, StaffGroup], twilio: FakeTwilio
) -> None:
    tawasul, phone, group = office
    await phone.send("مرحبا")
    await phone.send("٤")
    handoff_id = handoff_of((await group.wait_posts(1))[0])
    post = group.message_id(0)

    await group.update(group_callback(GROUP, SARA, f"h:take:{handoff_id}", post))
    assert (await group.wait_posts(2))[-1]["text"] == "استلمها sara"
    await settled(tawasul.database, "whatsapp")
    notices = len(twilio.messages)
    await group.update(group_callback(GROUP, NOURA, f"h:take:{handoff_id}", post))
    assert (await group.wait_posts(3))[-1]["text"] == "استلمها sara قبلك"
    await settled(tawasul.database, "whatsapp")
    assert len(twilio.messages) == notices  # the beneficiary is told once who has them
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
        sara = await StaffRepository(session).get("sara")
    assert sara is not None and handoff.claimed_by == sara.id

    # A tap on a button that names no handoff, or one of another bot, is left alone.
    for data in ("h:take:", "h:take:x1", "h:open:1"):
        await group.update(group_callback(GROUP, NOURA, data, post))
    await group.update(group_callback(GROUP, NOURA, f"h:close:{handoff_id}", post))
    assert (await group.wait_posts(4))[-1]["text"] == "أغلقها noura"
    # Closed twice: the second tap finds nothing to close and says nothing.
    await group.update(group_callback(GROUP, SARA, f"h:close:{handoff_id}", post))
    await settled(tawasul.database, "whatsapp")
    assert [p["text"] for p in group.posts()][3:] == ["أغلقها noura"]


async def test_replies_in_the_group_that_reach_nobody(
    office: tuple[Tawasul, WhatsApp, StaffGroup], twilio: FakeTwilio
) -> None:
    tawasul, phone, group = office
    await phone.send("مرحبا")
    await phone.send("٤")
    handoff_id = handoff_of((await group.wait_posts(1))[0])
    announcement = group.message_id(0)

    # Staff talking among themselves, or answering something else: no post, no message.
    await group.update(group_message(GROUP, SARA, "من يستلم هذه؟"))
    await group.update(group_message(GROUP, SARA, "أنا", reply_to_message_id=announcement + 99))
    await settled(tawasul.database, "whatsapp")
    assert len(group.posts()) == 1
    assert await count(tawasul.database, AuditEntry, col(AuditEntry.action) == "reply") == 0

    # Once the conversation is closed, a reply to it is refused with the reason.
    await group.update(group_callback(GROUP, SARA, f"h:close:{handoff_id}", announcement))
    await group.wait_posts(2)
    await settled(tawasul.database, "whatsapp")
    sent = len(twilio.messages)
    refused = await said(group, SARA, "هل وصلك ردي؟", reply_to_message_id=announcement)
    assert refused == "لم تتغير الحالة: this conversation is closed"
    await settled(tawasul.database, "whatsapp")
    assert len(twilio.messages) == sent


async def test_an_announcement_telegram_refuses_is_logged_and_the_handoff_stays_open(
    office: tuple[Tawasul, WhatsApp, StaffGroup],
    telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tawasul, phone, group = office
    telegram.fail("sendMessage", 400, "Bad Request: not enough rights to send text messages")
    await phone.send("مرحبا")
    await phone.send("٤")
    await eventually(lambda: telegram.calls("sendMessage"), "the refused announcement")
    await eventually(lambda: not tawasul._background, "the staff post to end")
    assert group.posts() == [telegram.calls("sendMessage")[0].params]  # tried once, refused
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == [
        "staff group post for handoff 1 failed: 400 Not enough rights to send text messages"
    ]
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    assert handoff.status == "open"
    # Staff still find it in the list of open conversations.
    listing = await said(group, SARA, "/handoffs")
    assert listing.startswith("طلبات التواصل المفتوحة (١):\n#1 ")


async def thread_recorded(database: Database, seconds: float = 10.0) -> None:
    """Wait (bounded) until the one handoff's first staff group post is recorded."""
    for _ in range(int(seconds / 0.05)):
        async with database.session() as session:
            handoff = (await session.scalars(select(Handoff))).one()
            if await HandoffRepository(session).first_post(_id(handoff)) is not None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the staff group post was never recorded")


async def test_an_announcement_telegram_asks_to_retry_is_posted_and_threaded(
    office: tuple[Tawasul, WhatsApp, StaffGroup], telegram: FakeTelegram, twilio: FakeTwilio
) -> None:
    tawasul, phone, group = office
    telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await phone.send("مرحبا")
    await phone.send("٤")
    posts = await group.wait_posts(2)  # refused once, then posted
    assert posts[0] == posts[1]
    # The post was recorded as the conversation's thread (just after Telegram took it:
    # a reply sooner than that has nothing to match): a reply to it reaches WhatsApp.
    await thread_recorded(tawasul.database)
    sent = len(twilio.messages)
    await group.update(
        group_message(GROUP, SARA, "أهلاً، معك سارة", reply_to_message_id=group.message_id(0))
    )
    await eventually(lambda: len(twilio.messages) > sent, "the relayed reply")
    assert "أهلاً، معك سارة" in twilio.messages[-1]["Body"]


async def test_an_answer_telegram_refuses_is_logged_and_the_next_one_goes_out(
    office: tuple[Tawasul, WhatsApp, StaffGroup],
    telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _tawasul, _phone, group = office
    telegram.fail("sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat")
    await group.update(group_message(GROUP, SARA, "/handoffs"))
    assert len(group.posts()) == 1  # tried once: the webhook returns after the answer
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failed == [
        "staff group answer failed: 403 Forbidden: bot was kicked from the supergroup chat"
    ]
    assert await said(group, SARA, "/handoffs") == "لا توجد طلبات تواصل مفتوحة"
