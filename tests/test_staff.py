"""The staff side end to end: WhatsApp beneficiaries, a Telegram staff group, the real clients."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    ACCOUNT_SID,
    CHARITY,
    INTAKE_WHATSAPP,
    StaffGroup,
    WhatsApp,
    count,
    eventually,
    make_settings,
    settled,
)
from fakes.telegram_api import FakeTelegram, group_callback, group_message
from fakes.twilio_api import FakeTwilio, inbound_params
from sqlalchemy import select
from sqlmodel import col

from bot.desk import StaffDesk, StaffError
from bot.engine import utcnow
from bot.server import Tawasul
from flows import mask_ids
from storage.db import Database
from storage.models import Handoff, Message, Note, Rating, StatusChange
from storage.repositories import StaffRepository

STAFF_GROUP = -1001234567890
SARA = 4242  # a registered staff member's Telegram id
STRANGER = 9999  # someone in the group who is not staff


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    settings = make_settings(
        tmp_path,
        twilio,
        telegram,
        staff_chat_id=STAFF_GROUP,
        handoff={"crisis_words": ["انتحار"], "hotline_text": "اتصل الآن بخط المساندة 937"},
    )
    async with database.session() as session, session.begin():
        await StaffRepository(session).add("sara", "agent", telegram_id=SARA, now=utcnow())
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


async def test_a_person_asked_for_on_whatsapp_is_answered_from_the_staff_group(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    await phone.send("مرحبا")
    waiting = await phone.send("٤")
    assert "أوقات العمل" in waiting

    announced = (await group.wait_posts(1))[0]
    buttons = [
        b["callback_data"] for row in announced["reply_markup"]["inline_keyboard"] for b in row
    ]
    handoff_id = int(buttons[0].rsplit(":", 1)[1])
    assert buttons == [f"h:take:{handoff_id}", f"h:close:{handoff_id}"]
    assert "العربية" in announced["text"]

    # Sara takes it with the button; the beneficiary is told a person is with them.
    before = len(twilio.messages)
    await group.update(
        group_callback(STAFF_GROUP, SARA, f"h:take:{handoff_id}", group.message_id(0))
    )
    await eventually(lambda: len(twilio.messages) > before, "the taken notice")
    assert telegram.calls("answerCallbackQuery")

    # She replies to the announcement in Telegram; the words reach WhatsApp.
    before = len(twilio.messages)
    await group.update(
        group_message(
            STAFF_GROUP,
            SARA,
            "أهلاً، أنا سارة. كيف أساعدك؟",
            reply_to_message_id=group.message_id(0),
        )
    )
    await eventually(lambda: len(twilio.messages) > before, "the relayed reply")
    assert "أنا سارة" in twilio.messages[-1]["Body"]
    assert twilio.messages[-1]["To"] == "whatsapp:+966551234567"

    # The beneficiary answers: no flow runs, the message reaches the staff group.
    posts_before = len(group.posts())
    params_count = len(twilio.messages)
    await phone.post(
        inbound_params(
            ACCOUNT_SID, "whatsapp:+966551234567", f"whatsapp:{CHARITY}", "أحتاج موعداً للاستلام"
        )
    )
    relayed = (await group.wait_posts(posts_before + 1))[-1]
    assert "أحتاج موعداً للاستلام" in relayed["text"]
    await settled(tawasul.database, "whatsapp", "sms")  # the turn's replies, all sent
    assert len(twilio.messages) == params_count + 1  # only the one-time acknowledgment

    # Sara closes it: the beneficiary is offered a rating of the conversation.
    before = len(twilio.messages)
    await group.update(
        group_callback(STAFF_GROUP, SARA, f"h:close:{handoff_id}", group.message_id(0))
    )
    await eventually(lambda: len(twilio.messages) > before, "the rating offer")
    assert "١" in twilio.messages[-1]["Body"] and "٥" in twilio.messages[-1]["Body"]
    await phone.send("٥")
    await phone.send("تخطي")
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
        rating = (await session.scalars(select(Rating))).one()
    assert handoff.status == "closed" and handoff.claimed_by is not None
    assert (rating.score, rating.context) == (5, "handoff")


async def test_a_crisis_word_opens_an_urgent_handoff_with_the_hotline_first(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    await phone.send("أفكر في الانتحار")
    # The hotline comes first, before anything else is said.
    assert twilio.messages[0]["Body"] == "اتصل الآن بخط المساندة 937"
    assert len(twilio.messages) >= 2
    announced = (await group.wait_posts(1))[0]
    assert "عاجل" in announced["text"] or "🚨" in announced["text"]
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    assert handoff.urgent and handoff.reason == "crisis"


async def test_someone_not_registered_cannot_change_a_request(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    for line in INTAKE_WHATSAPP:
        await phone.send(line)
    await group.update(group_message(STAFF_GROUP, STRANGER, "/status REQ-000001 accepted"))
    refusal = (await group.wait_posts(1))[-1]
    assert "للموظفين المسجلين فقط" in refusal["text"]
    async with tawasul.database.session() as session:
        changes = (await session.scalars(select(StatusChange))).all()
    assert [c.to_status for c in changes] == ["submitted"]


async def test_status_changes_from_the_group_and_the_desk_reach_whatsapp(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    for line in INTAKE_WHATSAPP:
        await phone.send(line)

    # From the staff group.
    before = len(twilio.messages)
    await group.update(group_message(STAFF_GROUP, SARA, "/status REQ-000001 under_review"))
    await eventually(lambda: len(twilio.messages) > before, "the notice")
    assert "REQ-000001" in twilio.messages[-1]["Body"]
    assert twilio.messages[-1]["To"] == "whatsapp:+966551234567"
    assert "REQ-000001" in (await group.wait_posts(1))[-1]["text"]

    # An illegal move is refused with the reason, and nothing reaches the beneficiary.
    sent = len(twilio.messages)
    queued = await count(tawasul.database, Message, col(Message.channel) == "whatsapp")
    await group.update(group_message(STAFF_GROUP, SARA, "/status REQ-000001 delivered"))
    refusal = (await group.wait_posts(2))[-1]
    assert "under_review" in refusal["text"] and "delivered" in refusal["text"]
    # Nothing was queued for the beneficiary with the refusal (the outbox is the database).
    assert await count(tawasul.database, Message, col(Message.channel) == "whatsapp") == queued

    # needs_info from the desk (the CLI's code path): the question reaches WhatsApp and
    # the answer lands in the case, which goes back to review.
    desk: StaffDesk = tawasul.desk
    await desk.set_status("REQ-000001", "needs_info", note="أرسل صورة عقد الإيجار", by="sara")
    await eventually(
        lambda: any("أرسل صورة عقد الإيجار" in m["Body"] for m in twilio.messages[sent:]),
        "the question",
    )
    # The beneficiary's messages go out in order: a notice of the refused move would
    # have come before the question. Only the question came.
    [question] = twilio.messages[sent:]
    assert "أرسل صورة عقد الإيجار" in question["Body"] and "delivered" not in question["Body"]
    await phone.send("العقد ينتهي بعد شهرين وسأرسل الصورة")
    async with tawasul.database.session() as session:
        notes = (await session.scalars(select(Note))).all()
        changes = (await session.scalars(select(StatusChange).order_by(StatusChange.id))).all()
    assert [n.author for n in notes] == ["beneficiary"]
    assert [c.to_status for c in changes] == [
        "submitted",
        "under_review",
        "needs_info",
        "under_review",
    ]
    with pytest.raises(StaffError, match="allowed next statuses"):
        await desk.set_status("REQ-000001", "submitted")

    # The whole case file, in order, in both formats.
    exported = json.loads(await desk.export("REQ-000001", "json"))
    kinds = [e["kind"] for e in exported["events"]]
    assert kinds[0] == "message_in" and "declaration" in kinds and "note" in kinds
    assert kinds.count("status_change") == 4
    times = [e["at"] for e in exported["events"]]
    assert times == sorted(times)
    # The CSV: the applicant's fields, an empty row, then the timeline.
    table = list(csv.reader(io.StringIO(await desk.export("REQ-000001", "csv"))))
    header, *events = table[table.index([]) + 1 :]
    rows = [dict(zip(header, event, strict=True)) for event in events]
    assert [r["kind"] for r in rows] == kinds


async def test_case_and_handoffs_commands_mask_the_national_id(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    for line in INTAKE_WHATSAPP:
        await phone.send(line)
    await phone.send("موظف")
    announced = (await group.wait_posts(1))[0]["text"]
    assert "1000000008" not in announced and "١٠٠٠٠٠٠٠٠٨" not in announced
    assert "******0008" in announced  # typed during the intake, masked for the group
    assert "REQ-000001" in announced  # the open request
    await group.update(group_message(STAFF_GROUP, SARA, "/case@tawasul_test_bot REQ-000001"))
    case = (await group.wait_posts(2))[-1]["text"]
    assert "محمد أحمد علي الزهراني" in case and "******0008" in case
    assert "1000000008" not in case
    await group.update(group_message(STAFF_GROUP, SARA, "/handoffs"))
    listing = (await group.wait_posts(3))[-1]["text"]
    assert "(١)" in listing and "كتب كلمة يطلب بها موظفاً" in listing  # the keyword reason


async def test_a_low_rating_opens_a_callback_for_staff(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    group = StaffGroup(client, telegram, STAFF_GROUP)
    await phone.send("٣")
    await phone.send("١")
    thanks = await phone.send("لم يرد علي أحد")
    assert "سيتواصل معك" in thanks
    announced = (await group.wait_posts(1))[0]["text"]
    assert "تقييم منخفض: اتصلوا به لفهم كيف نتحسن" in announced
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    assert handoff.reason == "low_rating"
    # A callback task does not put the beneficiary on hold: the menu still works.
    assert "طلب دعم جديد" in await phone.send("مرحبا")


def test_mask_ids_in_any_digits() -> None:
    assert mask_ids("هويتي ١٠٠٠٠٠٠٠٠٨ وجوالي 0551234567") == "هويتي ******0008 وجوالي 0551234567"
    assert mask_ids("2000000006") == "******0006"
    assert mask_ids("31000000008") == "31000000008"  # part of a longer number: not an ID
