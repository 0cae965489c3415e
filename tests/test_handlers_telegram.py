"""The Telegram channel against a local Bot API: captured updates in, Bot API calls out."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from fakes.telegram_api import FakeTelegram, group_callback, group_message, private_message

from bot.config import Settings
from bot.server import Tawasul
from flows.types import Address, Choice, InboundMessage, Location, Media, OutboundMessage
from handlers.base import MAX_MEDIA_BYTES, DeliveryError, MediaError, Overloaded, StaffUpdate
from handlers.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel
from handlers.telegram_http import split_text
from handlers.telegram_staff import TelegramStaffGroup
from storage.db import Database

TOKEN = "7012345678:AAFakeTokenForTelegramChannelTests_x"
SECRET = "tawasul-webhook_secret-0123456789"
CHAT = 512345678
DATE = 1718000000
AT = datetime.fromtimestamp(DATE, UTC)
ADDRESS = Address("telegram", str(CHAT))
BEN = {"id": CHAT, "is_bot": False, "first_name": "نورة", "language_code": "ar"}
PRIVATE = {"id": CHAT, "first_name": "نورة", "type": "private"}

Http = TestClient[web.Request, web.Application]


class Inbox:
    """The receiver given to the channel: keeps what arrives, or raises when told to."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.failure: Exception | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, message: InboundMessage) -> None:
        if self.failure is not None:
            raise self.failure
        self.messages.append(message)
        self.arrived.set()


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        # These tests translate, they do not pace: parts of a split message go back to
        # back. Pacing is the outbox's (tests/test_outbox.py, tests/test_fakes.py).
        fake.limits(per_chat=1000, overall=1000)
        yield fake


@pytest.fixture
async def channel(api: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=api.base_url)
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


async def serve(channel: TelegramChannel, inbox: Inbox) -> Http:
    app = web.Application()
    app.add_routes(channel.routes(inbox))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def http(channel: TelegramChannel, inbox: Inbox) -> AsyncIterator[Http]:
    client = await serve(channel, inbox)
    try:
        yield client
    finally:
        await client.close()


async def post(http: Http, update: Any, *, secret: str | None = SECRET) -> int:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    data = io.BytesIO(body) if len(body) > 64 * 1024 else body  # aiohttp warns on big bytes
    async with http.post(WEBHOOK_PATH, data=data, headers=headers) as response:
        return response.status


def message(update_id: int, **fields: Any) -> dict[str, Any]:
    """A private message update as Telegram sends it."""
    body = {"message_id": update_id % 1000, "from": BEN, "chat": PRIVATE, "date": DATE}
    return {"update_id": update_id, "message": body | fields}


def inbound(update_id: int, **fields: Any) -> InboundMessage:
    return InboundMessage(
        address=ADDRESS, received_at=AT, platform_message_id=str(update_id), **fields
    )


def file(file_id: str, **fields: Any) -> dict[str, Any]:
    return {"file_id": file_id, "file_unique_id": f"AgAD{file_id[-4:]}", **fields}


GROUP = {"id": -1009876543210, "title": "موظفو الجمعية", "type": "supergroup"}
CHANNEL_CHAT = {"id": -1001234567890, "title": "أخبار الجمعية", "type": "channel"}
BOT = {"id": 7012345678, "is_bot": True, "first_name": "Tawasul", "username": "tawasul_bot"}
GIF = file("CgACAgQAAxkBAAIBgif", file_name="hello.mp4", mime_type="video/mp4", file_size=50000)

# (update, the message the flows get, or None when the update is ignored)
CASES = [
    pytest.param(
        message(880001, text="رقم هويتي ١٠٢٣٤٥٦٧٨٩"),
        inbound(880001, text="رقم هويتي ١٠٢٣٤٥٦٧٨٩"),
        id="arabic-text-digits-as-sent",
    ),
    pytest.param(
        message(
            880002, text="/start", entities=[{"offset": 0, "length": 6, "type": "bot_command"}]
        ),
        inbound(880002, text="/start"),
        id="start-command",
    ),
    pytest.param(
        message(
            880003,
            caption="صورة الصك",
            photo=[
                file("AgACAgQAAxkBAAIBsml", file_size=1200, width=90, height=67),
                file("AgACAgQAAxkBAAIBbig", file_size=98000, width=1280, height=960),
                file("AgACAgQAAxkBAAIBmed", file_size=14000, width=320, height=240),
            ],
        ),
        inbound(
            880003,
            text="صورة الصك",
            media=(Media("tg-file:AgACAgQAAxkBAAIBbig", "image/jpeg", None),),
        ),
        id="photo-largest-size-with-caption",
    ),
    pytest.param(
        message(
            880004,
            document=file(
                "BQACAgQAAxkBAAIBpdf",
                file_name="تقرير طبي.pdf",
                mime_type="application/pdf",
                file_size=48213,
            ),
        ),
        inbound(
            880004,
            media=(Media("tg-file:BQACAgQAAxkBAAIBpdf", "application/pdf", "تقرير طبي.pdf"),),
        ),
        id="pdf-document",
    ),
    pytest.param(
        message(880005, document=file("BQACAgQAAxkBAAIBraw", file_name="scan")),
        inbound(
            880005,
            media=(Media("tg-file:BQACAgQAAxkBAAIBraw", "application/octet-stream", "scan"),),
        ),
        id="document-without-mime-type",
    ),
    pytest.param(
        message(880006, location={"latitude": 24.713552, "longitude": 46.675296}),
        inbound(880006, location=Location(24.713552, 46.675296)),
        id="location",
    ),
    pytest.param(
        message(
            880007,
            contact={"phone_number": "966501234567", "first_name": "نورة", "user_id": CHAT},
        ),
        inbound(880007, text="966501234567"),
        id="contact-phone-as-text",
    ),
    pytest.param(
        message(
            880008,
            sticker=file(
                "CAACAgIAAxkBAAIBstk",
                width=512,
                height=512,
                emoji="🤲",
                is_animated=False,
                is_video=False,
                type="regular",
                file_size=23000,
            ),
        ),
        inbound(880008, media=(Media("tg-file:CAACAgIAAxkBAAIBstk", "application/x-tgsticker"),)),
        id="sticker-not-an-image",
    ),
    pytest.param(
        message(
            880009,
            voice=file("AwACAgQAAxkBAAIBvoi", duration=3, mime_type="audio/ogg", file_size=9000),
        ),
        inbound(880009, media=(Media("tg-file:AwACAgQAAxkBAAIBvoi", "audio/ogg"),)),
        id="voice-note",
    ),
    pytest.param(
        message(
            880010,
            video=file(
                "BAACAgQAAxkBAAIBvid",
                width=640,
                height=360,
                duration=5,
                file_name="v.mp4",
                mime_type="video/mp4",
            ),
        ),
        inbound(880010, media=(Media("tg-file:BAACAgQAAxkBAAIBvid", "video/mp4", "v.mp4"),)),
        id="video",
    ),
    pytest.param(
        message(880011, animation=GIF | {"width": 320, "height": 240, "duration": 2}, document=GIF),
        inbound(880011, media=(Media("tg-file:CgACAgQAAxkBAAIBgif", "video/mp4", "hello.mp4"),)),
        id="animation-not-a-document",
    ),
    pytest.param(
        {
            "update_id": 880012,
            "edited_message": message(0, text="تعديل", edit_date=DATE + 60)["message"],
        },
        None,
        id="edited-message",
    ),
    pytest.param(
        {
            "update_id": 880013,
            "channel_post": {
                "message_id": 5,
                "sender_chat": CHANNEL_CHAT,
                "chat": CHANNEL_CHAT,
                "date": DATE,
                "text": "إعلان",
            },
        },
        None,
        id="channel-post",
    ),
    pytest.param(message(880014, chat=GROUP, text="السلام عليكم"), None, id="group-message"),
    pytest.param(
        {
            "update_id": 880015,
            "my_chat_member": {
                "chat": PRIVATE,
                "from": BEN,
                "date": DATE,
                "old_chat_member": {"user": BOT, "status": "member"},
                "new_chat_member": {"user": BOT, "status": "kicked", "until_date": 0},
            },
        },
        None,
        id="bot-blocked-member-update",
    ),
    pytest.param(
        {
            "update_id": 880016,
            "poll": {
                "id": "5361",
                "question": "؟",
                "options": [{"text": "نعم", "voter_count": 1}],
                "total_voter_count": 1,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
            },
        },
        None,
        id="poll",
    ),
    pytest.param(message(880017, dice={"emoji": "🎲", "value": 4}), None, id="dice"),
]


@pytest.mark.parametrize(("update", "expected"), CASES)
async def test_update_becomes_one_message_or_none(
    http: Http, inbox: Inbox, update: dict[str, Any], expected: InboundMessage | None
) -> None:
    assert await post(http, update) == 200
    assert inbox.messages == ([expected] if expected else [])


def tap(update_id: int, data: str | None, chat: dict[str, Any] = PRIVATE) -> dict[str, Any]:
    query = {
        "id": f"43827{update_id}",
        "from": BEN,
        "message": {
            "message_id": 77,
            "from": BOT,
            "chat": chat,
            "date": DATE,
            "text": "كيف تقيّم خدمتنا؟",
            "reply_markup": {"inline_keyboard": [[{"text": "٥", "callback_data": "5"}]]},
        },
        "chat_instance": "-8394823948293",
    }
    return {"update_id": update_id, "callback_query": query | ({"data": data} if data else {})}


async def test_button_tap_gives_its_payload_and_stops_the_spinner(
    http: Http, inbox: Inbox, api: FakeTelegram
) -> None:
    before = datetime.now(UTC)
    assert await post(http, api.delivered(tap(880100, "5"))) == 200
    [got] = inbox.messages
    assert dataclasses.replace(got, received_at=AT) == inbound(880100, text="5", payload="5")
    assert before <= got.received_at <= datetime.now(UTC)
    [answer] = api.calls("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "43827880100"


async def test_button_tap_in_a_group_is_answered_and_ignored(
    http: Http, inbox: Inbox, api: FakeTelegram
) -> None:
    assert await post(http, api.delivered(tap(880101, "5", chat=GROUP))) == 200
    assert await post(http, api.delivered(tap(880102, None))) == 200
    assert inbox.messages == []
    assert len(api.calls("answerCallbackQuery")) == 2


@pytest.mark.parametrize(
    "secret", [None, "", "wrong-secret", SECRET.upper(), SECRET + "x"], ids=repr
)
async def test_without_the_secret_token_nothing_is_processed(
    http: Http, inbox: Inbox, secret: str | None
) -> None:
    assert await post(http, message(880200, text="مرحبا"), secret=secret) == 403
    assert inbox.messages == []


async def test_without_a_configured_secret_every_update_is_refused(
    api: FakeTelegram, inbox: Inbox
) -> None:
    channel = TelegramChannel(TOKEN, webhook_secret=None, api_base_url=api.base_url)
    await channel.start()
    client = await serve(channel, inbox)
    try:
        for secret in (None, "", "anything"):
            assert await post(client, message(880201, text="مرحبا"), secret=secret) == 403
    finally:
        await client.close()
        await channel.stop()
    assert inbox.messages == []


def test_a_secret_telegram_would_refuse_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        TelegramChannel(TOKEN, webhook_secret="سر")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{not json", 400, id="malformed-json"),
        pytest.param(b"\xff\xfe", 400, id="not-utf8"),
        pytest.param(b"[1, 2]", 400, id="array"),
        pytest.param(b'"text"', 400, id="string"),
        pytest.param(json.dumps({"message": {"text": "x"}}).encode(), 400, id="no-update-id"),
        pytest.param(json.dumps({"update_id": "1"}).encode(), 400, id="update-id-not-int"),
        pytest.param(
            json.dumps({"update_id": 1, "message": {"chat": "x"}}).encode(), 400, id="bad-shape"
        ),
        pytest.param(
            b'{"update_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}', 413, id="over-1mb"
        ),
    ],
)
async def test_what_is_not_an_update_is_refused(
    http: Http, inbox: Inbox, body: bytes, status: int
) -> None:
    assert await post(http, body) == status
    assert inbox.messages == []


async def test_a_message_not_stored_is_answered_500_so_telegram_sends_it_again(
    http: Http, inbox: Inbox, api: FakeTelegram
) -> None:
    inbox.failure = ConnectionError("database is down")
    assert await post(http, message(880300, text="١")) == 500
    assert await post(http, api.delivered(tap(880301, "2"))) == 500
    assert api.calls("answerCallbackQuery") == []

    inbox.failure = None
    assert await post(http, message(880300, text="١")) == 200
    assert await post(http, api.delivered(tap(880301, "2"))) == 200
    assert [m.platform_message_id for m in inbox.messages] == ["880300", "880301"]
    assert len(api.calls("answerCallbackQuery")) == 1


async def test_an_update_the_busy_bot_cannot_take_is_answered_503_with_retry_after(
    http: Http, inbox: Inbox
) -> None:
    inbox.failure = Overloaded(7)  # the engine's queue is full
    headers = {SECRET_HEADER: SECRET}
    async with http.post(WEBHOOK_PATH, json=message(880400, text="١"), headers=headers) as answer:
        assert (answer.status, answer.headers.get("Retry-After")) == (503, "7")
    inbox.failure = None
    assert await post(http, message(880400, text="١")) == 200
    assert [m.platform_message_id for m in inbox.messages] == ["880400"]


async def test_updates_before_start_are_answered_503(api: FakeTelegram, inbox: Inbox) -> None:
    channel = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=api.base_url)
    client = await serve(channel, inbox)
    try:
        assert await post(client, message(880400, text="مرحبا")) == 503
    finally:
        await client.close()
    assert inbox.messages == []


async def test_logs_carry_no_token_text_or_phone_number(
    http: Http, inbox: Inbox, api: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contact = {"phone_number": "966501234567", "first_name": "نورة", "user_id": CHAT}
    await post(http, message(880500, text="اسمي نورة العتيبي"))
    await post(http, message(880501, contact=contact))
    await post(http, message(880502, chat=GROUP, text="اسمي نورة العتيبي"))
    await post(http, message(880503, text="اسمي"), secret="wrong")
    inbox.failure = RuntimeError("INSERT ... 966501234567")
    await post(http, message(880504, contact=contact))
    assert caplog.records  # the ignored, refused and failed updates were logged
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET, "نورة", "966501234567", str(CHAT)):
        assert secret not in caplog.text


# Sending


def arabic_line(words: int) -> str:
    return " ".join(["تواصل"] * words)


async def test_long_reply_is_split_at_a_line_break(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    first, second = arabic_line(500), arabic_line(333)
    text = f"{first}\n{second}"
    assert 4096 < len(text) <= 5000
    choices = (Choice("1", "نعم"), Choice("2", "لا"))
    sent = await channel.send(ADDRESS, OutboundMessage(text, "ar", choices=choices))

    calls = api.calls("sendMessage")
    assert [c.params["text"] for c in calls] == [first, second]
    assert [c.params["chat_id"] for c in calls] == [CHAT, CHAT]
    assert "reply_markup" not in calls[0].params  # the keyboard goes with the last part
    assert "keyboard" in calls[1].params["reply_markup"]
    assert sent.platform_message_id == f"{CHAT}:2"


async def test_long_reply_without_line_breaks_is_split_between_words(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    text = arabic_line(1400)  # 8,399 characters
    await channel.send(ADDRESS, OutboundMessage(text, "ar"))
    parts = [c.params["text"] for c in api.calls("sendMessage")]
    assert len(parts) == 3
    assert all(set(part.split(" ")) == {"تواصل"} for part in parts)
    assert " ".join(parts) == text


def test_split_counts_utf16_units_as_telegram_does() -> None:
    text = "🤲" * 3000  # one character, two UTF-16 units each
    parts = split_text(text)
    assert [len(part) for part in parts] == [2048, 952]
    assert split_text("نعم\n\n" + "ا" * 4096) == ["نعم", "ا" * 4096]


async def test_choices_are_a_one_time_reply_keyboard_of_labels(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    choices = (Choice("1", "طلب دعم جديد"), Choice("2", "حالة طلبي"))
    await channel.send(ADDRESS, OutboundMessage("كيف نخدمك؟", "ar", choices=choices))
    [call] = api.calls("sendMessage")
    assert call.params["text"] == "كيف نخدمك؟"
    assert call.params["reply_markup"] == {
        "keyboard": [[{"text": "طلب دعم جديد"}], [{"text": "حالة طلبي"}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }


async def test_inline_choices_are_buttons_with_the_payload_as_callback_data(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    stars = tuple(Choice(str(n), "⭐" * n) for n in range(1, 6))
    await channel.send(ADDRESS, OutboundMessage("قيّم خدمتنا", "ar", choices=stars, inline=True))
    seven = tuple(Choice(f"need_{n}", f"حاجة {n}") for n in range(1, 8))
    await channel.send(ADDRESS, OutboundMessage("اختر", "ar", choices=seven, inline=True))

    first, second = (c.params["reply_markup"]["inline_keyboard"] for c in api.calls("sendMessage"))
    assert first == [[{"text": "⭐" * n, "callback_data": str(n)} for n in range(1, 6)]]
    assert [[b["callback_data"] for b in row] for row in second] == [
        [f"need_{n}" for n in range(1, 6)],
        ["need_6", "need_7"],
    ]


async def test_inline_payload_over_64_bytes_falls_back_to_a_reply_keyboard(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    choices = (Choice("ا" * 33, "نعم"),)  # 66 bytes
    await channel.send(ADDRESS, OutboundMessage("؟", "ar", choices=choices, inline=True))
    [call] = api.calls("sendMessage")
    assert call.params["reply_markup"]["keyboard"] == [[{"text": "نعم"}]]


async def test_no_choices_no_markup(channel: TelegramChannel, api: FakeTelegram) -> None:
    sent = await channel.send(ADDRESS, OutboundMessage("تم استلام طلبك", "ar"))
    [call] = api.calls("sendMessage")
    assert "reply_markup" not in call.params
    assert sent.platform_message_id == f"{CHAT}:1"


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("Forbidden: bot was blocked by the user", "blocked"),
        ("Forbidden: bot can't initiate conversation with a user", "initiate"),
    ],
    ids=["blocked", "never-started-the-bot"],
)
async def test_blocked_by_the_user_is_unreachable(
    channel: TelegramChannel, api: FakeTelegram, description: str, said: str
) -> None:
    api.fail("sendMessage", 403, description)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    error = raised.value
    assert (error.unreachable, error.permanent, error.code) == (True, True, "403")
    assert said in error.reason
    assert str(CHAT) not in error.reason


async def test_flood_control_asks_to_retry_after_the_given_seconds(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    error = raised.value
    assert (error.retry_after, error.permanent, error.unreachable) == (7, False, False)
    assert error.code == "429"
    # the next attempt goes through
    assert (await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))).platform_message_id


async def test_a_call_that_times_out_is_a_transient_failure(api: FakeTelegram) -> None:
    channel = TelegramChannel(
        TOKEN, webhook_secret=SECRET, api_base_url=api.base_url, read_timeout=0.3
    )
    await channel.start()
    try:
        api.slow("sendMessage", 5)  # answers long after the client stopped waiting
        with pytest.raises(DeliveryError) as raised:
            await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
        error = raised.value
        assert (error.permanent, error.unreachable) == (False, False)
        assert "مرحبا" not in error.reason and str(CHAT) not in error.reason
        api.slow("sendMessage", 0.05)  # slow, but within the timeout: simply late
        assert (await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))).platform_message_id
    finally:
        await channel.stop()


async def test_bad_request_is_permanent(channel: TelegramChannel, api: FakeTelegram) -> None:
    api.fail("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    error = raised.value
    assert (error.permanent, error.unreachable, error.code) == (True, False, "400")


async def test_network_failure_is_transient() -> None:
    async with FakeTelegram(TOKEN) as api:
        channel = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=api.base_url)
        await channel.start()
    try:  # the API server is gone now
        with pytest.raises(DeliveryError) as raised:
            await channel.send(ADDRESS, OutboundMessage("مرحبا", "ar"))
    finally:
        await channel.stop()
    error = raised.value
    assert (error.permanent, error.unreachable, error.retry_after) == (False, False, None)


# Media


async def test_fetch_media_downloads_the_file(channel: TelegramChannel, api: FakeTelegram) -> None:
    content = b"%PDF-1.4\n" + bytes(range(256)) * 40
    path = api.add_file("BQACAgQAAxkBAAIBpdf", content, "documents/file_7.pdf")
    media = Media("tg-file:BQACAgQAAxkBAAIBpdf", "application/pdf", "تقرير طبي.pdf")
    assert await channel.fetch_media(media) == content
    assert api.downloads == [path]


async def test_fetch_media_refuses_a_file_said_to_be_too_large_without_downloading(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.add_file("big", b"small", file_size=MAX_MEDIA_BYTES + 1)
    with pytest.raises(MediaError):
        await channel.fetch_media(Media("tg-file:big", "image/jpeg"))
    assert api.downloads == []


async def test_fetch_media_refuses_a_file_that_turns_out_too_large(
    channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.add_file("unsized", b"x" * (MAX_MEDIA_BYTES + 1), file_size=-1)
    with pytest.raises(MediaError):
        await channel.fetch_media(Media("tg-file:unsized", "image/jpeg"))


@pytest.mark.parametrize("url", ["tg-file:unknown", "tg-file:", "https://example.org/a.jpg"])
async def test_fetch_media_refuses_what_telegram_does_not_have(
    channel: TelegramChannel, url: str
) -> None:
    with pytest.raises(MediaError):
        await channel.fetch_media(Media(url, "image/jpeg"))


# Lifecycle


async def test_start_registers_the_webhook_with_the_secret(api: FakeTelegram) -> None:
    channel = TelegramChannel(
        TOKEN,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        public_url="https://tawasul.example.org/",
    )
    await channel.start()
    await channel.stop()
    assert [c.method for c in api.calls()] == ["getMe", "setWebhook"]
    assert api.webhook == {
        "url": "https://tawasul.example.org/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": False,
    }


async def test_telegram_delivers_to_the_registered_webhook(api: FakeTelegram, inbox: Inbox) -> None:
    port = unused_port()
    channel = TelegramChannel(
        TOKEN,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        public_url=f"http://127.0.0.1:{port}",
    )
    app = web.Application()
    app.add_routes(channel.routes(inbox))
    async with TestServer(app, host="127.0.0.1", port=port):
        await channel.start()
        try:
            assert await api.deliver(private_message(CHAT, "مرحبا", date=DATE)) == 200
            assert await api.deliver(private_message(CHAT, "مرحبا"), secret="forged") == 403
        finally:
            await channel.stop()
    [got] = inbox.messages
    assert got.text == "مرحبا"


async def test_polling_delivers_queued_updates(api: FakeTelegram, inbox: Inbox) -> None:
    channel = TelegramChannel(TOKEN, webhook_secret=None, api_base_url=api.base_url, polling=True)
    channel.routes(inbox)
    update = api.queue_update(private_message(CHAT, "١", date=DATE))
    await channel.start()
    try:
        await asyncio.wait_for(inbox.arrived.wait(), 5)
    finally:
        await channel.stop()
    assert inbox.messages == [inbound(update["update_id"], text="١")]
    assert api.calls("deleteWebhook")
    assert api.calls("getUpdates")[-1].params["offset"] == update["update_id"] + 1


# The staff group

STAFF_CHAT = -1001987654321
SARA = 61234567  # a staff member's Telegram user id
OTHER_GROUP = -1005550001111
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


class StaffInbox:
    """``on_staff``: keeps the staff updates, or raises when told to."""

    def __init__(self, api: FakeTelegram) -> None:
        self.updates: list[StaffUpdate] = []
        self.failure: Exception | None = None
        self.answers_seen: list[int] = []  # answerCallbackQuery calls made when each came
        self.arrived = asyncio.Event()
        self._api = api

    async def __call__(self, update: StaffUpdate) -> None:
        self.answers_seen.append(len(self._api.calls("answerCallbackQuery")))
        if self.failure is not None:
            raise self.failure
        self.updates.append(update)
        self.arrived.set()


@pytest.fixture
def staff_inbox(api: FakeTelegram) -> StaffInbox:
    return StaffInbox(api)


def staff_channel_for(api: FakeTelegram, staff_inbox: StaffInbox, **kwargs: Any) -> TelegramChannel:
    return TelegramChannel(
        TOKEN,
        webhook_secret=SECRET,
        api_base_url=api.base_url,
        staff_chat_id=STAFF_CHAT,
        on_staff=staff_inbox,
        **kwargs,
    )


@pytest.fixture
async def staff_channel(
    api: FakeTelegram, staff_inbox: StaffInbox
) -> AsyncIterator[TelegramChannel]:
    channel = staff_channel_for(api, staff_inbox)
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


def group(channel: TelegramChannel) -> TelegramStaffGroup:
    """The channel's staff group (it has one: it was given ``staff_chat_id``)."""
    assert channel.staff_group is not None
    return channel.staff_group


@pytest.fixture
async def staff_http(staff_channel: TelegramChannel, inbox: Inbox) -> AsyncIterator[Http]:
    client = await serve(staff_channel, inbox)
    try:
        yield client
    finally:
        await client.close()


def said(update_id: int, text: str, chat: int = STAFF_CHAT, **fields: Any) -> dict[str, Any]:
    """Sara's message in a group (the staff group unless told)."""
    return {"update_id": update_id} | group_message(chat, SARA, text, first_name="سارة", **fields)


def tapped(update_id: int, data: str, message_id: int, chat: int = STAFF_CHAT) -> dict[str, Any]:
    """Sara's tap on a button of the bot's post ``message_id`` in a group."""
    query = group_callback(
        chat, SARA, data, message_id, first_name="سارة", query_id=f"77{update_id}"
    )
    return {"update_id": update_id} | query


async def test_a_staff_command_goes_to_on_staff_not_to_the_flows(
    staff_http: Http, inbox: Inbox, staff_inbox: StaffInbox
) -> None:
    update = said(890001, "/status REQ-1 accepted ok")
    assert await post(staff_http, update) == 200
    assert staff_inbox.updates == [
        StaffUpdate(
            chat_id=STAFF_CHAT,
            user_id=SARA,
            user_name="سارة",
            text="/status REQ-1 accepted ok",
            callback_data=None,
            reply_to=None,
            message_id=f"tg:{STAFF_CHAT}:{update['message']['message_id']}",
            update_id=890001,
        )
    ]
    assert inbox.messages == []


async def test_beneficiaries_still_reach_the_flows_when_there_is_a_staff_group(
    staff_http: Http, inbox: Inbox, staff_inbox: StaffInbox, api: FakeTelegram
) -> None:
    assert await post(staff_http, message(890002, text="مرحبا")) == 200
    assert await post(staff_http, api.delivered(tap(890003, "5"))) == 200
    assert [m.text for m in inbox.messages] == ["مرحبا", "5"]
    assert staff_inbox.updates == []


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        pytest.param("/case@tawasul_test_bot REQ-1", "/case REQ-1", id="our-username"),
        pytest.param("/case@Tawasul_Test_Bot REQ-1", "/case REQ-1", id="any-case"),
        pytest.param("/case@tawasul_test_bot", "/case", id="no-arguments"),
        pytest.param("/case@tawasul_test_bot\nREQ-1", "/case\nREQ-1", id="line-break"),
        pytest.param("/note REQ-1 a@tawasul_test_bot", "/note REQ-1 a@tawasul_test_bot", id="rest"),
        pytest.param("/case@other_bot REQ-1", None, id="another-bots-command"),
    ],
)
async def test_the_command_word_loses_our_bot_name(
    staff_http: Http, staff_inbox: StaffInbox, text: str, seen: str | None
) -> None:
    assert await post(staff_http, said(890010, text)) == 200
    assert [u.text for u in staff_inbox.updates] == ([seen] if seen is not None else [])


async def test_a_reply_to_our_post_names_the_post(
    staff_channel: TelegramChannel, staff_http: Http, staff_inbox: StaffInbox
) -> None:
    post_id = await group(staff_channel).post("طلب تواصل جديد: المحادثة ٣")
    message_id = int(post_id.rsplit(":", 1)[1])
    update = said(890020, "وعليكم السلام، معك سارة", reply_to_message_id=message_id)
    assert await post(staff_http, update) == 200
    [got] = staff_inbox.updates
    assert got.reply_to == post_id == f"tg:{STAFF_CHAT}:{message_id}"
    assert (got.text, got.callback_data) == ("وعليكم السلام، معك سارة", None)


async def test_in_a_forum_topic_a_plain_message_is_no_reply(
    staff_http: Http, staff_inbox: StaffInbox
) -> None:
    update = said(890021, "/case REQ-1", is_topic_message=True, message_thread_id=9)
    update["message"]["reply_to_message"] = {
        "message_id": 9,
        "from": {"id": SARA, "is_bot": False, "first_name": "سارة"},
        "chat": update["message"]["chat"],
        "date": DATE,
        "forum_topic_created": {"name": "الحالات", "icon_color": 7322096},
    }
    assert await post(staff_http, update) == 200
    assert [u.reply_to for u in staff_inbox.updates] == [None]


async def test_a_button_tap_in_the_staff_group_goes_to_on_staff_then_is_answered(
    staff_http: Http, inbox: Inbox, staff_inbox: StaffInbox, api: FakeTelegram
) -> None:
    assert await post(staff_http, api.delivered(tapped(890030, "handoff:take:3", 41))) == 200
    assert staff_inbox.updates == [
        StaffUpdate(
            chat_id=STAFF_CHAT,
            user_id=SARA,
            user_name="سارة",
            text="",
            callback_data="handoff:take:3",
            reply_to=None,
            message_id=f"tg:{STAFF_CHAT}:41",  # the post that carries the button
            update_id=890030,
        )
    ]
    assert staff_inbox.answers_seen == [0]  # answered only after on_staff returned
    [answer] = api.calls("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "77890030"
    assert inbox.messages == []


def by(sender: dict[str, Any], update: dict[str, Any], **fields: Any) -> dict[str, Any]:
    update["message"] |= {"from": sender} | fields
    return update


def without_text(update: dict[str, Any], **fields: Any) -> dict[str, Any]:
    update["message"].pop("text")
    update["message"].pop("entities", None)
    update["message"] |= fields
    return update


@pytest.mark.parametrize(
    "update",
    [
        pytest.param(said(890040, "/status REQ-1 accepted", chat=OTHER_GROUP), id="other-group"),
        pytest.param(said(890041, "/case REQ-1", chat=-4001234567), id="other-basic-group"),
        pytest.param(
            by(
                ANONYMOUS_ADMIN, said(890042, "/case REQ-1"), sender_chat=GROUP | {"id": STAFF_CHAT}
            ),
            id="anonymous-admin",
        ),
        pytest.param(by(BOT | {"id": 999}, said(890043, "/case REQ-1")), id="another-bot"),
        pytest.param(
            without_text(
                said(890044, "x"), caption="صورة", photo=[file("AgAC", width=9, height=9)]
            ),
            id="photo-in-staff-group",
        ),
    ],
)
async def test_what_is_not_staff_work_is_ignored(
    staff_http: Http, inbox: Inbox, staff_inbox: StaffInbox, update: dict[str, Any]
) -> None:
    assert await post(staff_http, update) == 200
    assert staff_inbox.updates == []
    assert inbox.messages == []


async def test_a_tap_in_another_group_is_answered_and_ignored(
    staff_http: Http, inbox: Inbox, staff_inbox: StaffInbox, api: FakeTelegram
) -> None:
    assert (
        await post(
            staff_http, api.delivered(tapped(890050, "handoff:take:3", 41, chat=OTHER_GROUP))
        )
        == 200
    )
    assert (staff_inbox.updates, inbox.messages) == ([], [])
    assert len(api.calls("answerCallbackQuery")) == 1


async def test_without_on_staff_the_staff_group_is_ignored(api: FakeTelegram, inbox: Inbox) -> None:
    channel = TelegramChannel(
        TOKEN, webhook_secret=SECRET, api_base_url=api.base_url, staff_chat_id=STAFF_CHAT
    )
    await channel.start()
    client = await serve(channel, inbox)
    try:
        assert await post(client, said(890060, "/case REQ-1")) == 200
        assert await post(client, api.delivered(tapped(890061, "handoff:take:3", 41))) == 200
    finally:
        await client.close()
        await channel.stop()
    assert inbox.messages == []


async def test_a_staff_update_not_handled_is_answered_500_so_telegram_sends_it_again(
    staff_http: Http, staff_inbox: StaffInbox, api: FakeTelegram
) -> None:
    staff_inbox.failure = ConnectionError("database is down")
    assert await post(staff_http, said(890070, "/case REQ-1")) == 500
    assert await post(staff_http, api.delivered(tapped(890071, "handoff:take:3", 41))) == 500
    assert api.calls("answerCallbackQuery") == []

    staff_inbox.failure = None
    assert await post(staff_http, said(890070, "/case REQ-1")) == 200
    assert await post(staff_http, api.delivered(tapped(890071, "handoff:take:3", 41))) == 200
    assert [u.update_id for u in staff_inbox.updates] == [890070, 890071]
    assert len(api.calls("answerCallbackQuery")) == 1


async def test_polling_delivers_staff_updates(api: FakeTelegram, inbox: Inbox) -> None:
    staff_inbox = StaffInbox(api)
    channel = staff_channel_for(api, staff_inbox, polling=True)
    channel.routes(inbox)
    update = api.queue_update(group_message(STAFF_CHAT, SARA, "/case@tawasul_test_bot REQ-1"))
    await channel.start()
    try:
        await asyncio.wait_for(staff_inbox.arrived.wait(), 5)
    finally:
        await channel.stop()
    assert [(u.update_id, u.text) for u in staff_inbox.updates] == [
        (update["update_id"], "/case REQ-1")
    ]
    assert inbox.messages == []


async def test_staff_logs_carry_no_text_or_name(
    staff_http: Http, staff_inbox: StaffInbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await post(staff_http, said(890080, "/note REQ-1 نورة العتيبي 1023456789"))
    await post(staff_http, said(890081, "/case@other_bot نورة", chat=STAFF_CHAT))
    await post(staff_http, by(BOT, said(890082, "نورة العتيبي")))
    staff_inbox.failure = RuntimeError("INSERT ... 1023456789")
    await post(staff_http, said(890083, "/note REQ-1 1023456789"))
    assert caplog.records
    for secret in ("نورة", "سارة", "1023456789", str(SARA)):
        assert secret not in caplog.text


@pytest.mark.parametrize("chat_id", [0, 512345678, True])
def test_a_staff_chat_that_is_not_a_group_is_refused_at_once(chat_id: int) -> None:
    with pytest.raises(ValueError, match="staff_chat_id"):
        TelegramChannel(TOKEN, webhook_secret=SECRET, staff_chat_id=chat_id)


# Posting to staff


async def test_post_to_staff_with_buttons_in_reply_to_a_staff_message(
    staff_channel: TelegramChannel, api: FakeTelegram
) -> None:
    buttons = [("استلام", "handoff:take:3"), ("إغلاق", "handoff:close:3")]
    post_id = await group(staff_channel).post(
        "المحادثة ٣: طلب تواصل", buttons=buttons, reply_to=f"tg:{STAFF_CHAT}:7"
    )
    [call] = api.calls("sendMessage")
    assert call.params["chat_id"] == STAFF_CHAT
    assert call.params["text"] == "المحادثة ٣: طلب تواصل"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "استلام", "callback_data": "handoff:take:3"},
                {"text": "إغلاق", "callback_data": "handoff:close:3"},
            ]
        ]
    }
    assert call.params["reply_parameters"] == {"message_id": 7, "allow_sending_without_reply": True}
    assert post_id == f"tg:{STAFF_CHAT}:1"
    assert api.message(STAFF_CHAT, 1) is not None


async def test_a_long_staff_post_replies_with_its_first_part_and_has_buttons_on_its_last(
    staff_channel: TelegramChannel, api: FakeTelegram
) -> None:
    first, second = arabic_line(500), arabic_line(333)
    replied = await group(staff_channel).post("طلب تواصل جديد")
    post_id = await group(staff_channel).post(
        f"{first}\n{second}", buttons=[("استلام", "handoff:take:3")], reply_to=replied
    )
    _, one, two = api.calls("sendMessage")
    assert [one.params["text"], two.params["text"]] == [first, second]
    assert one.params["reply_parameters"]["message_id"] == 1
    assert "reply_parameters" not in two.params
    assert "reply_markup" not in one.params
    assert two.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "handoff:take:3"
    assert post_id == f"tg:{STAFF_CHAT}:3"
    assert (api.message(STAFF_CHAT, 2) or {})["reply_to_message"]["message_id"] == 1


@pytest.mark.parametrize("reply_to", ["tg:-1005550001111:7", "7", "tg:x:y"])
async def test_a_reply_to_outside_the_staff_group_is_posted_as_a_plain_post(
    staff_channel: TelegramChannel, api: FakeTelegram, reply_to: str
) -> None:
    assert await group(staff_channel).post("تذكير", reply_to=reply_to) == f"tg:{STAFF_CHAT}:1"
    assert "reply_parameters" not in api.calls("sendMessage")[0].params


@pytest.mark.parametrize(
    "buttons",
    [[("استلام", "ا" * 33)], [("استلام", "")], [("", "handoff:take:3")]],
    ids=["data-over-64-bytes", "no-data", "no-label"],
)
async def test_a_bad_staff_button_is_refused_before_sending(
    staff_channel: TelegramChannel, api: FakeTelegram, buttons: list[tuple[str, str]]
) -> None:
    with pytest.raises(DeliveryError) as raised:
        await group(staff_channel).post("طلب", buttons=buttons)
    assert raised.value.permanent
    assert api.calls("sendMessage") == []


async def test_without_a_staff_chat_there_is_no_staff_group(channel: TelegramChannel) -> None:
    assert channel.staff_group is None


async def test_a_staff_group_that_became_a_supergroup_says_its_new_id(
    staff_channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1002223334445,
    )
    with pytest.raises(DeliveryError) as raised:
        await group(staff_channel).post("طلب")
    assert raised.value.permanent
    assert "-1002223334445" in raised.value.reason


async def test_a_bot_removed_from_the_staff_group_cannot_post(
    staff_channel: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail("sendMessage", 403, "Forbidden: bot was kicked from the supergroup chat")
    with pytest.raises(DeliveryError) as raised:
        await group(staff_channel).post("طلب")
    assert (raised.value.permanent, raised.value.code) == (True, "403")


async def test_the_server_polls_telegram_when_told_and_needs_no_webhook_secret(
    api: FakeTelegram, database: Database, tmp_path: Path
) -> None:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        telegram={"token": TOKEN, "api_base_url": api.base_url},
    )
    # Without a webhook secret, the webhook cannot be trusted: no Telegram at all...
    assert "telegram" not in Tawasul(settings, database).channels
    # ...unless it polls (``tawasul serve --telegram-polling``).
    tawasul = Tawasul(settings, database, telegram_polling=True)
    api.queue_update(private_message(CHAT, "مرحبا", date=DATE))
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")):
        replies = await api.wait_for("sendMessage")
    assert replies[0].params["chat_id"] == CHAT
    assert api.calls("setWebhook") == [] and api.calls("deleteWebhook")
