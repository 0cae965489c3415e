"""The whole server over loopback: real channels, the real twilio client, a local Twilio."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    ACCOUNT_SID,
    BENEFICIARY,
    CHARITY,
    CHAT,
    FAST_SENDER,
    INTAKE_WHATSAPP,
    PUBLIC_URL,
    SECRET,
    TOKEN,
    TelegramChat,
    WebVisitor,
    WhatsApp,
    count,
    eventually,
    make_settings,
    settled,
)
from fakes.telegram_api import FakeTelegram, callback_query, private_message
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form, status_params
from sqlalchemy import select
from sqlmodel import col
from transcript import INTAKE_AR

from bot.config import Settings
from bot.server import Tawasul
from storage.db import Database
from storage.models import ChannelIdentity, Document, Message, Rating, SupportRequest


@pytest.fixture
async def service(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


async def test_healthz(service: tuple[Tawasul, TestClient[Any, Any]]) -> None:
    tawasul, client = service
    if tawasul.cluster is not None:  # PostgreSQL: the only process leads, once elected
        await eventually(lambda: tawasul.cluster is not None and tawasul.cluster.leader, "lead")
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "scheduler": "leader"}


async def test_a_whole_intake_over_whatsapp(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    replies = [await phone.send(line) for line in INTAKE_WHATSAPP]
    assert "٠٥٥١٢٣٤٥٦٧" in replies[4]  # the sender's number offered for confirmation
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
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database, "sms:+966557654321")
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
    phone = WhatsApp(client, twilio, tawasul.database)
    params = inbound_params(
        ACCOUNT_SID,
        f"whatsapp:{BENEFICIARY}",
        f"whatsapp:{CHARITY}",
        "مرحبا",
        message_sid="SM" + "0" * 32,
    )
    assert await phone.post(params) == 200
    assert await phone.post(params) == 200
    await settled(tawasul.database, "whatsapp")  # both turns' replies, all sent
    assert len(twilio.messages) == 1
    assert await count(tawasul.database, Message, col(Message.direction) == "in") == 1


async def test_a_photo_is_kept_with_the_request(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    for line in INTAKE_WHATSAPP[:9]:
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
    assert tawasul.media.read(document.url) == photo
    assert twilio.media_requests and all(r.authorized for r in twilio.media_requests[:1])


async def test_status_callbacks_are_recorded(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
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
    phone = WhatsApp(client, twilio, tawasul.database)
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


@pytest.mark.parametrize(("code", "unreachable"), [("63024", True), ("30003", False)])
async def test_an_undelivered_receipt_marks_only_an_unreachable_number(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, code: str, unreachable: bool
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    await phone.send("مرحبا")
    sid = twilio.calls[-1].sid
    assert sid
    receipt = status_params(
        ACCOUNT_SID, sid, "undelivered", f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}", code
    )
    assert await phone.post(receipt, "/webhooks/whatsapp/status") == 200
    async with tawasul.database.session() as session:
        identity = (await session.scalars(select(ChannelIdentity))).one()
        message = (
            await session.scalars(select(Message).where(col(Message.platform_message_id) == sid))
        ).one()
    assert identity.unreachable is unreachable  # 63024: not a WhatsApp number
    assert message.status == "failed" and message.error is not None and code in message.error


async def test_without_its_database_the_server_starts_and_healthz_answers_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = Database("postgresql://nobody@127.0.0.1:1/none")
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), gone)
    try:
        with caplog.at_level(logging.WARNING):
            async with TestClient(TestServer(tawasul.app())) as client:
                # No process can lead: logged, and the server serves anyway.
                await eventually(lambda: "cluster connection lost" in caplog.text, "the log")
                response = await client.get("/healthz")
                assert response.status == 503
                assert await response.json() == {"status": "unavailable", "scheduler": "standby"}
                assert (await client.get("/chat")).status == 200
    finally:
        await gone.dispose()


async def test_a_whole_intake_over_the_website_chat(database: Database, tmp_path: Path) -> None:
    # No platform credentials and no public URL: the web chat works on its own (over
    # plain http here, so its cookie is not marked Secure).
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)
    assert set(tawasul.channels) == {"web"}
    async with TestClient(TestServer(tawasul.app())) as client:
        visitor = WebVisitor(client, database)
        await visitor.open()
        replies = [await visitor.send(line) for line in INTAKE_AR]
        assert "[1] طلب دعم جديد" in replies[0]
        assert "REQ-000001" in replies[-1]
        assert "REQ-000001" in await visitor.send("٢")
        # Another visitor sees none of it.
        async with TestClient(client.server) as other_client:
            other = WebVisitor(other_client, database)
            await other.open()
            assert "REQ-000001" not in await other.send("٢")


@pytest.fixture
async def telegram_service(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    # A conversation, not pacing: one chat may get its replies as fast as they come.
    telegram.limits(per_chat=FAST_SENDER)
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        telegram={
            "token": TOKEN,
            "webhook_secret": SECRET,
            "api_base_url": telegram.base_url,
            "messages_per_chat_per_second": FAST_SENDER,
        },
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
    chat = TelegramChat(client, telegram, tawasul.database)
    menu = await chat.send(private_message(CHAT, "/start"))
    assert "طلب دعم جديد" in _keyboard(menu[-1])  # the menu as a reply keyboard
    # Tapping a reply-keyboard button sends its label.
    await chat.send(private_message(CHAT, "طلب دعم جديد"))
    for line in INTAKE_AR[2:7]:
        await chat.send(private_message(CHAT, line))
    need = await chat.send(private_message(CHAT, "سلة غذائية"))
    assert "(٦/٨)" in need[-1]["text"]
    await chat.send(private_message(CHAT, INTAKE_AR[8]))
    photo = [{"file_id": "PHOTO1", "file_unique_id": "u1", "width": 640, "height": 480}]
    telegram.add_file("PHOTO1", b"\xff\xd8 an id card", "photos/file_1.jpg")
    await chat.send(private_message(CHAT, None, photo=photo, caption="الهوية"))
    await chat.send(private_message(CHAT, "تم"))
    done = await chat.send(private_message(CHAT, "نعم"))
    assert "REQ-000001" in done[-1]["text"]
    # Rating with inline buttons: a tap is a callback query with the payload.
    rating = await chat.send(private_message(CHAT, "٣"))
    assert "inline_keyboard" in rating[-1]["reply_markup"]
    tap = callback_query(CHAT, "5")
    await chat.send(tap)
    [answered] = telegram.calls("answerCallbackQuery")
    assert answered.params["callback_query_id"] == tap["callback_query"]["id"]
    await chat.send(private_message(CHAT, "تخطي"))  # no comment: the rating is stored
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
        document = (await session.scalars(select(Document))).one()
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.score, rating.channel) == (5, "telegram")
    assert request.signed_channel == "telegram"
    assert document.url.startswith("media/") and document.content_type == "image/jpeg"


async def test_a_redelivered_update_is_processed_once(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram, tawasul.database)
    update = {"update_id": 77, **private_message(CHAT, "مرحبا")}
    assert await chat.post(update) == 200
    assert await chat.post(update) == 200
    await settled(tawasul.database, "telegram")  # both turns' replies, all sent
    assert len(telegram.calls("sendMessage")) == 1
    assert await count(tawasul.database, Message, col(Message.direction) == "in") == 1


async def test_a_wrong_telegram_secret_is_refused(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram, tawasul.database)
    assert await chat.post({"update_id": 1, **private_message(CHAT, "١")}, secret="wrong") == 403
    assert await count(tawasul.database, Message) == 0


async def test_a_user_who_blocked_the_bot_is_marked_unreachable(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    chat = TelegramChat(client, telegram, tawasul.database)
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
        chat = TelegramChat(client, telegram, tawasul.database)
        status = 0
        deadline = asyncio.get_running_loop().time() + 10
        while status != 200:
            assert asyncio.get_running_loop().time() < deadline, "telegram never started"
            status = await chat.post({"update_id": 9, **private_message(CHAT, "مرحبا")})
            await asyncio.sleep(0.05)
        await telegram.wait_for("sendMessage", count=1)
    assert len(telegram.calls("getMe")) >= 3  # two refused starts, then the one that worked
