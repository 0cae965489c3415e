"""Field visits from the Telegram staff group (/visit), the beneficiary's answer back in the
group, and the group's list of the day's appointments that morning."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, StaffGroup, WhatsApp, eventually, make_settings
from fakes.telegram_api import FakeTelegram, group_message
from fakes.twilio_api import FakeTwilio

from bot.engine import utcnow
from bot.server import Tawasul
from storage.db import Database
from storage.repositories import StaffRepository

GROUP = -1001234567777
SARA = 4242
RIYADH = ZoneInfo("Asia/Riyadh")


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, WhatsApp, StaffGroup]]:
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=GROUP)
    async with database.session() as session, session.begin():
        await StaffRepository(session).add("sara", "researcher", telegram_id=SARA, now=utcnow())
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, WhatsApp(client, twilio, database), StaffGroup(client, telegram, GROUP)


async def said(group: StaffGroup, text: str) -> str:
    before = len(group.posts())
    await group.update(group_message(GROUP, SARA, text))
    return str((await group.wait_posts(before + 1))[-1]["text"])


async def test_a_visit_from_the_group_told_answered_and_listed_that_morning(
    office: tuple[Tawasul, WhatsApp, StaffGroup], twilio: FakeTwilio
) -> None:
    tawasul, phone, group = office
    for line in INTAKE_WHATSAPP:
        await phone.send(line)
    day = (datetime.now(UTC).astimezone(RIYADH) + timedelta(days=2)).date()

    refused = await said(group, f"/visit REQ-000099 {day} 10:00")
    assert refused == "لم تُجدوَل الزيارة: لا يوجد طلب برقم REQ-000099"
    before = len(twilio.messages)
    answer = await said(group, f"/visit req-000001 {day} 10:00")
    assert answer.startswith("📅 اقتُرحت الزيارة الميدانية APT-000001 (REQ-000001)")
    assert "sara" in answer
    await eventually(lambda: len(twilio.messages) > before, "the beneficiary told")
    told = twilio.messages[-1]["Body"]
    assert "زيارة ميدانية (APT-000001)" in told and "sara" in told

    reply = await phone.send("١")
    assert "تم تأكيد الزيارة APT-000001" in reply
    # The server's scheduler runs it at once; the test's sweep does too if it has not yet.
    await tawasul.scheduler.run_due(datetime.now(UTC))

    def confirmed() -> bool:
        return any("أكّد المستفيد الزيارة الميدانية APT-000001" in p["text"] for p in group.posts())

    await eventually(confirmed, "the group told of the answer")

    morning = datetime.combine(day, time(7, 30), RIYADH).astimezone(UTC)
    count = len(group.posts())
    await tawasul.scheduler.run_due(morning)
    [listed] = (await group.wait_posts(count + 1))[count:]
    assert listed["text"].startswith("📅 مواعيد اليوم")
    assert "10:00  APT-000001  REQ-000001  confirmed  sara" in listed["text"]
    await tawasul.scheduler.run_due(morning + timedelta(minutes=1))
    assert len(group.posts()) == count + 1  # once


def test_the_usage_names_the_visit_command() -> None:
    from flows import text

    assert "/visit REF YYYY-MM-DD HH:MM" in text("ar", "staff.usage")
    assert "/visit REF YYYY-MM-DD HH:MM" in text("en", "staff.usage")


async def test_a_wrong_visit_command_shows_the_usage(
    office: tuple[Tawasul, WhatsApp, StaffGroup],
) -> None:
    _tawasul, _phone, group = office
    assert "/visit REF" in await said(group, "/visit REQ-000001")
    # Refusals in the group's language, none of the command line's English.
    bad_date = await said(group, "/visit REQ-000001 tomorrow 10am")
    assert bad_date == "لم تُجدوَل الزيارة: يُكتب الموعد هكذا: YYYY-MM-DD HH:MM، لا «tomorrow 10am»"
    past = await said(group, "/visit REQ-000001 2001-01-01 10:00")
    assert past == "لم تُجدوَل الزيارة: تُجدوَل الزيارة لوقت قادم، وهذا الوقت قد مضى"
    for answer in (bad_date, past):
        assert not re.search("expected|scheduled|no request", answer)
