"""The whole server over loopback: real channels, the real twilio client, a local Twilio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes.telegram_api import FakeTelegram, callback_query, private_message
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form, status_params
from sqlalchemy import func, select
from sqlmodel import col
from transcript import INTAKE_AR

from bot.config import Settings
from bot.server import Tawasul
from storage.db import Database
from storage.models import ChannelIdentity, Document, Message, SupportRequest

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
CHARITY = "+966550000000"
BENEFICIARY = "+966551234567"
PUBLIC_URL = "https://bot.example.org"

# Over WhatsApp the mobile is offered from the sender's number: "نعم" confirms it.
INTAKE_WHATSAPP = [*INTAKE_AR[:4], "نعم", *INTAKE_AR[5:]]


async def eventually(check: Callable[[], Any], what: str, seconds: float = 10.0) -> Any:
    """Wait (bounded) until ``check()`` is truthy: the outbox sends after the webhook returns."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


def make_settings(tmp_path: Path, twilio: FakeTwilio | None = None) -> Settings:
    whatsapp: dict[str, Any] = {}
    if twilio is not None:
        whatsapp = {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": CHARITY,
            "api_base_url": twilio.base_url,
        }
    return Settings(
        server={"public_url": PUBLIC_URL, "media_dir": str(tmp_path / "media")},
        whatsapp=whatsapp,
    )


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture
async def service(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


class WhatsApp:
    """A beneficiary's phone: sends correctly signed webhooks, reads what Twilio received."""

    def __init__(self, client: TestClient[Any, Any], twilio: FakeTwilio, number: str = BENEFICIARY):
        self.client, self.twilio, self.number = client, twilio, number
        self.prefix = "whatsapp:" if not number.startswith("sms:") else ""
        self.number = number.removeprefix("sms:")

    async def post(self, params: dict[str, str], path: str = "/webhooks/whatsapp") -> int:
        body, headers = signed_form(PUBLIC_URL + path, params, AUTH_TOKEN)
        response = await self.client.post(path, data=body, headers=headers)
        return response.status

    async def send(self, text: str, **extra: str) -> str:
        """Send one message; returns the bodies Twilio was asked to deliver for it."""
        before = len(self.twilio.messages)
        params = inbound_params(
            ACCOUNT_SID, self.prefix + self.number, self.prefix + CHARITY, text, **extra
        )
        assert await self.post(params) == 200
        await eventually(lambda: len(self.twilio.messages) > before, "a reply")
        await asyncio.sleep(0.05)  # a turn may have a second reply
        return "\n\n".join(m["Body"] for m in self.twilio.messages[before:])


async def test_healthz(service: tuple[Tawasul, TestClient[Any, Any]]) -> None:
    _, client = service
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_a_whole_intake_over_whatsapp(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio)
    replies = [await phone.send(line) for line in INTAKE_WHATSAPP]
    assert "٠٥٥١٢٣٤٥٦٧" in replies[3]  # the sender's number offered for confirmation
    assert "REQ-000001" in replies[-1]
    sent = twilio.messages[-1]
    assert sent["To"] == f"whatsapp:{BENEFICIARY}" and sent["From"] == f"whatsapp:{CHARITY}"
    assert sent["StatusCallback"] == PUBLIC_URL + "/webhooks/whatsapp/status"
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
    assert request.answers["mobile"] == BENEFICIARY and request.signed_channel == "whatsapp"
    # Every reply left the outbox and carries Twilio's id for the status callbacks.
    assert await count(tawasul.database, Message, col(Message.status) == "pending") == 0
    assert (
        await count(
            tawasul.database,
            Message,
            col(Message.direction) == "out",
            col(Message.platform_message_id).is_(None),
        )
        == 0
    )


async def test_sms_is_the_same_conversation_engine(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    _, client = service
    phone = WhatsApp(client, twilio, "sms:+966557654321")
    reply = await phone.send("السلام عليكم")
    assert "١- طلب دعم جديد" in reply
    assert twilio.messages[-1]["To"] == "+966557654321"
    assert twilio.messages[-1]["From"] == CHARITY


async def test_a_forged_signature_is_refused_and_nothing_stored(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    params = inbound_params(ACCOUNT_SID, f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}", "١")
    body, headers = signed_form(PUBLIC_URL + "/webhooks/whatsapp", params, "not-the-token")
    response = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert response.status == 403
    unsigned = await client.post("/webhooks/whatsapp", data=params)
    assert unsigned.status == 403
    assert await count(tawasul.database, Message) == 0
    assert await count(tawasul.database, ChannelIdentity) == 0


async def test_a_message_twilio_delivers_twice_is_processed_once(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio)
    params = inbound_params(
        ACCOUNT_SID,
        f"whatsapp:{BENEFICIARY}",
        f"whatsapp:{CHARITY}",
        "مرحبا",
        message_sid="SM" + "0" * 32,
    )
    assert await phone.post(params) == 200
    assert await phone.post(params) == 200
    await eventually(lambda: twilio.messages, "the reply")
    await asyncio.sleep(0.3)
    assert len(twilio.messages) == 1
    assert await count(tawasul.database, Message, col(Message.direction) == "in") == 1


async def test_a_photo_is_kept_with_the_request(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio)
    for line in INTAKE_WHATSAPP[:8]:
        await phone.send(line)
    photo = b"\xff\xd8\xff\xe0 a photo of the lease"
    url = twilio.add_media("lease.jpg", photo, "image/jpeg")
    await phone.send("", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    await phone.send("تم")
    assert "REQ-000001" in await phone.send("نعم")
    async with tawasul.database.session() as session:
        document = (await session.scalars(select(Document))).one()
    assert document.content_type == "image/jpeg"
    assert document.url.startswith("media/")
    assert (tmp_path / "media" / document.url.removeprefix("media/")).read_bytes() == photo
    assert twilio.media_requests and all(r.authorized for r in twilio.media_requests[:1])


async def test_status_callbacks_are_recorded(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio)
    await phone.send("مرحبا")
    sid = twilio.calls[-1].sid
    assert sid
    params = status_params(
        ACCOUNT_SID, sid, "read", f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}"
    )
    assert await phone.post(params, "/webhooks/whatsapp/status") == 200
    async with tawasul.database.session() as session:
        message = (
            await session.scalars(select(Message).where(col(Message.platform_message_id) == sid))
        ).one()
    assert message.status == "read"
    forged = await client.post("/webhooks/whatsapp/status", data=params)
    assert forged.status == 403


async def test_an_unsubscribed_number_is_marked_unreachable(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio)
    twilio.fail(status=400, code=21610)
    params = inbound_params(ACCOUNT_SID, f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}", "مرحبا")
    assert await phone.post(params) == 200

    async def settled() -> int:
        return await count(tawasul.database, Message, col(Message.status) == "failed")

    deadline = asyncio.get_running_loop().time() + 10
    while await settled() == 0:
        assert asyncio.get_running_loop().time() < deadline, "the reply was never settled"
        await asyncio.sleep(0.05)
    async with tawasul.database.session() as session:
        identity = (await session.scalars(select(ChannelIdentity))).one()
        failed = (
            await session.scalars(select(Message).where(col(Message.status) == "failed"))
        ).one()
    assert identity.unreachable
    assert failed.error is not None and "21610" in failed.error
    assert BENEFICIARY not in failed.error


class WebVisitor:
    """A browser on the website chat: its own cookie jar, posting and long-polling."""

    def __init__(self, client: TestClient[Any, Any]):
        self.client, self.last, self.count = client, 0, 0

    async def open(self) -> None:
        response = await self.client.get("/chat")
        assert response.status == 200
        assert "tawasul_chat" in response.cookies

    async def send(self, text: str) -> str:
        self.count += 1
        posted = await self.client.post(
            "/api/chat/messages", json={"text": text, "id": f"m{self.count}"}
        )
        assert posted.status == 202, await posted.text()
        texts: list[str] = []
        while True:  # wait for the first reply, then take whatever else the turn said
            wait = 0.3 if texts else 10
            polled = await self.client.get(f"/api/chat/messages?after={self.last}&wait={wait}")
            assert polled.status == 200
            body = await polled.json()
            self.last = body["last"]
            for message in body["messages"]:  # buttons drawn as "[payload] label"
                buttons = [f"[{c['payload']}] {c['label']}" for c in message["choices"]]
                texts.append("\n".join([message["text"], *buttons]))
            if texts and not body["messages"]:
                return "\n\n".join(texts)


async def test_a_whole_intake_over_the_website_chat(database: Database, tmp_path: Path) -> None:
    # No platform credentials and no public URL: the web chat works on its own (over
    # plain http here, so its cookie is not marked Secure).
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)
    assert set(tawasul.channels) == {"web"}
    async with TestClient(TestServer(tawasul.app())) as client:
        visitor = WebVisitor(client)
        await visitor.open()
        replies = [await visitor.send(line) for line in INTAKE_AR]
        assert "[1] طلب دعم جديد" in replies[0]
        assert "REQ-000001" in replies[-1]
        assert "REQ-000001" in await visitor.send("٢")
        # Another visitor sees none of it.
        async with TestClient(client.server) as other_client:
            other = WebVisitor(other_client)
            await other.open()
            assert "REQ-000001" not in await other.send("٢")


TOKEN = "123456:TEST-token_for-the-fake-bot-api"
SECRET = "telegram-webhook-secret"
CHAT = 5550001


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as api:
        yield api


class TelegramChat:
    """A Telegram user: updates go to the webhook as Telegram sends them."""

    def __init__(self, client: TestClient[Any, Any], api: FakeTelegram) -> None:
        self.client, self.api, self.update_id = client, api, 1000

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        response = await self.client.post("/webhooks/telegram", json=update, headers=headers)
        return response.status

    async def send(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliver one update; returns the sendMessage calls it caused."""
        self.update_id += 1
        before = len(self.api.calls("sendMessage"))
        assert await self.post({"update_id": self.update_id, **update}) == 200
        await eventually(lambda: len(self.api.calls("sendMessage")) > before, "a reply")
        await asyncio.sleep(0.05)
        return [call.params for call in self.api.calls("sendMessage")[before:]]


@pytest.fixture
async def telegram_service(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        telegram={"token": TOKEN, "webhook_secret": SECRET, "api_base_url": telegram.base_url},
    )
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


def _keyboard(call: dict[str, Any]) -> list[str]:
    markup = call.get("reply_markup") or {}
    rows = markup.get("keyboard") or markup.get("inline_keyboard") or []
    return [button["text"] for row in rows for button in row]


async def test_a_whole_intake_over_telegram_with_buttons(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram)
    menu = await chat.send(private_message(CHAT, "/start"))
    assert "طلب دعم جديد" in _keyboard(menu[-1])  # the menu as a reply keyboard
    # Tapping a reply-keyboard button sends its label.
    await chat.send(private_message(CHAT, "طلب دعم جديد"))
    for line in INTAKE_AR[2:6]:
        await chat.send(private_message(CHAT, line))
    need = await chat.send(private_message(CHAT, "سلة غذائية"))
    assert "(٦/٨)" in need[-1]["text"]
    await chat.send(private_message(CHAT, INTAKE_AR[7]))
    photo = [{"file_id": "PHOTO1", "file_unique_id": "u1", "width": 640, "height": 480}]
    telegram.add_file("PHOTO1", b"\xff\xd8 an id card", "photos/file_1.jpg")
    await chat.send(private_message(CHAT, None, photo=photo, caption="الهوية"))
    await chat.send(private_message(CHAT, "تم"))
    done = await chat.send(private_message(CHAT, "نعم"))
    assert "REQ-000001" in done[-1]["text"]
    # Rating with inline buttons: a tap is a callback query with the payload.
    rating = await chat.send(private_message(CHAT, "٣"))
    assert "inline_keyboard" in rating[-1]["reply_markup"]
    await chat.send(callback_query(CHAT, "5"))
    assert telegram.calls("answerCallbackQuery")
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
        document = (await session.scalars(select(Document))).one()
    assert request.signed_channel == "telegram"
    assert document.url.startswith("media/") and document.content_type == "image/jpeg"


async def test_a_redelivered_update_is_processed_once(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram)
    update = {"update_id": 77, **private_message(CHAT, "مرحبا")}
    assert await chat.post(update) == 200
    assert await chat.post(update) == 200
    await telegram.wait_for("sendMessage", count=1)
    await asyncio.sleep(0.3)
    assert len(telegram.calls("sendMessage")) == 1
    assert await count(tawasul.database, Message, col(Message.direction) == "in") == 1


async def test_a_wrong_telegram_secret_is_refused(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram)
    assert await chat.post({"update_id": 1, **private_message(CHAT, "١")}, secret="wrong") == 403
    assert await count(tawasul.database, Message) == 0


async def test_a_user_who_blocked_the_bot_is_marked_unreachable(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    chat = TelegramChat(client, telegram)
    assert await chat.post({"update_id": 5, **private_message(CHAT, "مرحبا")}) == 200

    async def unreachable() -> bool:
        async with tawasul.database.session() as session:
            identity = (await session.scalars(select(ChannelIdentity))).one()
            return identity.unreachable

    deadline = asyncio.get_running_loop().time() + 10
    while not await unreachable():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_a_channel_down_at_start_is_started_later(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    telegram.fail("getMe", 502, "Bad Gateway", times=2)
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        telegram={"token": TOKEN, "webhook_secret": SECRET, "api_base_url": telegram.base_url},
    )
    tawasul = Tawasul(settings, database, channel_retry_seconds=0.1)
    async with TestClient(TestServer(tawasul.app())) as client:
        # The web chat works meanwhile, and Telegram answers once its API is back.
        assert (await client.get("/chat")).status == 200
        chat = TelegramChat(client, telegram)
        status = 0
        deadline = asyncio.get_running_loop().time() + 10
        while status != 200:
            assert asyncio.get_running_loop().time() < deadline, "telegram never started"
            status = await chat.post({"update_id": 9, **private_message(CHAT, "مرحبا")})
            await asyncio.sleep(0.05)
        await telegram.wait_for("sendMessage", count=1)
    assert len(telegram.calls("getMe")) >= 3  # two refused starts, then the one that worked
