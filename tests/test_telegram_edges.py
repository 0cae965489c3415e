"""The Telegram channel at its edges: sends that cannot go or go on from a part, refusals
Telegram gives rarely, a staff group that moved, and a channel not (fully) configured.

The real python-telegram-bot client against the Bot API stand-in; nothing reaches a flow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fakes.telegram_api import FakeTelegram, group_message
from test_handlers_telegram import (
    ADDRESS,
    SECRET,
    TOKEN,
    Inbox,
    api,
    channel,
    inbox,
    post,
    serve,
)

from bot.config import Settings
from bot.server import Tawasul
from flows.types import Address, Choice, Media, OutboundMessage
from handlers.base import DeliveryError, MediaError, StaffUpdate
from handlers.telegram import TelegramChannel
from handlers.telegram_http import MAX_MESSAGE_LENGTH
from handlers.telegram_updates import kind_of
from storage.db import Database

__all__ = ["api", "channel", "inbox"]  # the fixtures, shared with the channel's tests

STAFF = -1001987654321


def texts(api: FakeTelegram) -> list[str]:
    return [str(call.params["text"]) for call in api.calls("sendMessage")]


# --- sending ---


async def test_what_cannot_go_is_refused_and_nothing_is_called(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    for address, outbound in (
        (Address("whatsapp", "+966551234567"), OutboundMessage("مرحبا", "ar")),
        (ADDRESS, OutboundMessage(" \n ", "ar")),
    ):
        with pytest.raises(DeliveryError) as raised:
            await channel.send(address, outbound)
        assert raised.value.permanent
    assert api.calls("sendMessage") == []


async def test_a_channel_not_started_sends_and_fetches_nothing_yet(api: FakeTelegram) -> None:
    idle = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=api.base_url)
    with pytest.raises(DeliveryError) as raised:
        await idle.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    assert not raised.value.permanent  # it may start later
    with pytest.raises(MediaError, match="not started"):
        await idle.fetch_media(Media("tg-file:AgADBAAD", "image/jpeg"))
    assert api.calls() == []


async def test_a_long_message_goes_on_from_the_part_it_stopped_at(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    text = "\n".join(f"سطر رقم {n} من رسالة طويلة جداً" for n in range(400))
    assert len(text) > 2 * MAX_MESSAGE_LENGTH
    paced: list[int] = []

    async def before_part(index: int) -> None:
        paced.append(index)

    await channel.send(ADDRESS, OutboundMessage(text, "ar"), first_part=1, before_part=before_part)
    sent = texts(api)
    assert len(sent) >= 2 and "سطر رقم 0 " not in sent[0]  # the first part is not sent again
    assert paced == list(range(2, len(sent) + 1))  # waited before each part after the first
    with pytest.raises(DeliveryError, match="no part left"):
        await channel.send(ADDRESS, OutboundMessage(text, "ar"), first_part=len(sent) + 1)
    assert len(texts(api)) == len(sent)


async def test_a_payload_too_long_for_a_button_goes_as_a_reply_keyboard(
    channel: TelegramChannel, api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    long = Choice("rate:" + "x" * 64, "٥")
    await channel.send(ADDRESS, OutboundMessage("قيّم الخدمة", "ar", (long,), inline=True))
    [call] = api.calls("sendMessage")
    markup = call.params["reply_markup"]
    assert "inline_keyboard" not in markup
    assert markup["keyboard"] == [[{"text": "٥"}]]  # a tap sends the label, which is taken
    assert "exceeds 64 bytes" in caplog.text


async def test_a_group_that_became_a_supergroup_is_a_permanent_refusal_naming_it(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1002223334445,
    )
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    assert raised.value.permanent
    assert raised.value.reason == "400 group became the supergroup -1002223334445"


async def test_a_token_telegram_no_longer_knows_is_retried_not_dropped(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail("sendMessage", 401, "Unauthorized")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    assert not raised.value.permanent and not raised.value.unreachable
    assert raised.value.reason == "telegram: InvalidToken"


@pytest.mark.parametrize("answer", [True, {}, {"message_id": "7", "chat": {"id": 1}}])
async def test_an_answer_that_is_not_a_message_is_a_permanent_refusal_not_a_resend(
    channel: TelegramChannel, api: FakeTelegram, answer: object
) -> None:
    # Telegram accepted the call; sending it again could give the beneficiary it twice.
    api.handle("sendMessage", lambda _params: answer)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    assert raised.value.permanent
    assert raised.value.reason == "telegram: sendMessage answered without a message"
    assert len(api.calls("sendMessage")) == 1


async def test_the_sent_message_is_named_by_its_chat_and_telegrams_id(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    sent = await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    [message_id] = api.message_ids(int(ADDRESS.user_id))
    assert sent.platform_message_id == f"{ADDRESS.user_id}:{message_id}"


# --- receiving ---


async def test_a_staff_group_that_moved_is_logged_with_its_new_id(
    api: FakeTelegram, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    staff: list[StaffUpdate] = []

    async def on_staff(update: StaffUpdate) -> None:
        staff.append(update)

    moved = TelegramChannel(
        TOKEN,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        staff_chat_id=STAFF,
        on_staff=on_staff,
    )
    await moved.start()
    http = await serve(moved, inbox)
    try:
        update = {"update_id": 9001} | group_message(
            STAFF, 1, "", migrate_to_chat_id=-1005556667778
        )
        del update["message"]["text"]
        assert await post(http, update) == 200
    finally:
        await http.close()
        await moved.stop()
    assert staff == [] and inbox.messages == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "telegram: the staff group became the supergroup -1005556667778; "
        "set telegram.staff_chat_id to it"
    ]


@pytest.mark.parametrize(
    ("update", "kind"),
    [
        ({"update_id": 1, "edited_message": {"text": "نورة العتيبي"}}, "edited_message"),
        ({"update_id": 1, "message": {"text": "1023456789"}}, "message"),
        ({"update_id": 1, "x" * 60: {}}, "x" * 40),
        ({"update_id": 1}, "empty"),
    ],
)
def test_what_an_update_was_is_logged_by_kind_never_by_content(
    update: dict[str, Any], kind: str
) -> None:
    assert kind_of(update) == kind


# --- configuration ---


async def test_telegram_without_a_token_or_a_webhook_secret_is_skipped_with_why(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.telegram")
    server = {"media_dir": str(tmp_path / "media"), "public_url": "https://bot.example.org"}
    for telegram, why in (
        ({}, "Telegram skipped: telegram.token is not set"),
        ({"token": TOKEN}, "Telegram skipped: telegram.webhook_secret is needed for the webhook"),
    ):
        tawasul = Tawasul(Settings(server=server, telegram=telegram), database)
        assert "telegram" not in tawasul.channels
        assert why in [r.getMessage() for r in caplog.records]


async def test_a_webhook_without_a_secret_is_not_registered(
    api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    open_door = TelegramChannel(
        TOKEN, webhook_secret=None, api_base_url=api.base_url, public_url="https://bot.example.org"
    )
    await open_door.start()
    await open_door.stop()
    assert api.calls("setWebhook") == []
    assert "telegram webhook not registered: telegram.webhook_secret is not set" in caplog.text


async def test_polling_needs_its_receiver_before_it_starts(api: FakeTelegram) -> None:
    polling = TelegramChannel(TOKEN, webhook_secret=None, api_base_url=api.base_url, polling=True)
    with pytest.raises(RuntimeError, match="routes"):
        await polling.start()
    assert api.calls("getUpdates") == []
