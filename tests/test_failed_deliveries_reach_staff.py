"""Messages the outbox gives up on are told to the staff group: one post for a batch,
each message by its number, channel and reason, never by the beneficiary's number."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from channels import StaffGroup, make_settings, settled
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio

from bot.engine import utcnow
from bot.server import Tawasul
from flows.types import Address, OutboundMessage
from storage.db import Database
from storage.repositories import IdentityRepository, MessageRepository

GROUP = -1001234560021
FAILED = 21  # one more than a post lists


async def test_messages_given_up_on_are_one_staff_post_that_names_no_one(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> None:
    tawasul = Tawasul(make_settings(tmp_path, twilio, telegram, staff_chat_id=GROUP), database)
    numbers = [f"+9665512{n:05d}" for n in range(FAILED)]
    ids = []
    async with database.session() as session, session.begin():  # stored before the start
        for number in numbers:
            identity = await IdentityRepository(session).get_or_create(
                Address("whatsapp", number), utcnow()
            )
            assert identity.id is not None
            notice = OutboundMessage("تحديث على طلبك", "ar")
            ids.append(
                await MessageRepository(session).enqueue(identity.id, "whatsapp", notice, utcnow())
            )
    twilio.fail(FAILED, status=400, code=21610)  # every one has left WhatsApp's list
    async with TestClient(TestServer(tawasul.app())) as client:
        group = StaffGroup(client, telegram, GROUP)
        await settled(database, "whatsapp")
        [post] = await group.wait_posts(1)
    header, *lines = post["text"].splitlines()
    assert header.startswith("تعذّر إيصال رسائل إلى مستفيدين (") and "توقفت المحاولة" in header
    assert lines[-1] == "…" and len(lines) == 20 + 1  # twenty listed, the rest counted
    listed = {int(line.split("#")[1].split(" ")[0]) for line in lines[:-1]}
    assert listed < set(ids) and len(listed) == 20
    assert all(" — واتساب — " in line and "21610" in line for line in lines[:-1])
    for number in numbers:
        assert number[-7:] not in post["text"]  # a beneficiary's number never in the group
    assert twilio.messages == []
