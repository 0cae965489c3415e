"""`/whoami` in a Telegram group: how the operator finds telegram.staff_chat_id and staff ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes.telegram_api import FakeTelegram, group_message
from test_handlers_telegram import SECRET, TOKEN, Inbox, StaffInbox, post, serve

import flows
from handlers.telegram import TelegramChannel
from handlers.telegram_staff import whoami_text

NEW_GROUP = -1005550001111
STAFF_GROUP = -1001987654321
SARA = 61234567


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.mark.parametrize("staff_group", [None, STAFF_GROUP], ids=["unconfigured", "configured"])
@pytest.mark.parametrize("command", ["/whoami", "/whoami@tawasul_test_bot"])
async def test_whoami_in_a_group_answers_the_group_id_and_the_senders_id(
    api: FakeTelegram, staff_group: int | None, command: str
) -> None:
    inbox, staff_inbox = Inbox(), StaffInbox(api)
    channel = TelegramChannel(
        TOKEN,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        staff_chat_id=staff_group,
        on_staff=staff_inbox if staff_group else None,
        whoami=whoami_text(flows.text),
    )
    await channel.start()
    http = await serve(channel, inbox)
    group = staff_group or NEW_GROUP
    try:
        update = {"update_id": 990001} | group_message(group, SARA, command)
        assert await post(http, update) == 200
        [call] = await api.wait_for("sendMessage")
    finally:
        await http.close()
        await channel.stop()
    assert int(call.params["chat_id"]) == group
    text = call.params["text"]
    # Latin digits, ready to paste into the configuration, in Arabic and in English.
    assert f"معرّف هذه المجموعة: {group}" in text and f"Your Telegram id: {SARA}" in text
    assert "telegram.staff_chat_id" in text
    assert inbox.messages == [] and staff_inbox.updates == []


async def test_whoami_from_a_beneficiary_in_private_is_an_ordinary_message(
    api: FakeTelegram,
) -> None:
    inbox = Inbox()
    channel = TelegramChannel(
        TOKEN, webhook_secret=SECRET, api_base_url=api.base_url, whoami=whoami_text(flows.text)
    )
    await channel.start()
    http = await serve(channel, inbox)
    try:
        update = {
            "update_id": 990010,
            "message": {
                "message_id": 10,
                "from": {"id": 777, "is_bot": False, "first_name": "Noura"},
                "chat": {"id": 777, "first_name": "Noura", "type": "private"},
                "date": 1718000000,
                "text": "/whoami",
                "entities": [{"offset": 0, "length": 7, "type": "bot_command"}],
            },
        }
        assert await post(http, update) == 200
    finally:
        await http.close()
        await channel.stop()
    assert [m.text for m in inbox.messages] == ["/whoami"]
    assert api.calls("sendMessage") == []
