"""Helpers for tests that drive the whole server: phones, chats and browsers over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form
from sqlalchemy import func, select
from sqlmodel import col
from transcript import INTAKE_AR

from bot.config import Settings
from storage.db import Database
from storage.models import (
    DIRECTION_IN,
    DIRECTION_OUT,
    MESSAGE_PENDING,
    MESSAGE_QUEUED,
    MESSAGE_SENDING,
    Message,
)

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
CHARITY = "+966550000000"
BENEFICIARY = "+966551234567"
PUBLIC_URL = "https://bot.example.org"

# Over WhatsApp the mobile is offered from the sender's number: "نعم" confirms it.
INTAKE_WHATSAPP = [*INTAKE_AR[:5], "نعم", *INTAKE_AR[6:]]


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


async def settled(database: Database, *channels: str) -> None:
    """Wait (bounded) until every message stored on ``channels`` had its turn and the
    outbox has sent everything queued on them.

    A webhook is answered once its message is stored (the inbox): when none of theirs
    waits for its turn and no reply is pending or on its way, every reply of the turns
    has reached the stand-in.
    """
    on_its_way = (
        col(Message.direction) == DIRECTION_OUT,
        col(Message.channel).in_(channels),
        col(Message.status).in_((MESSAGE_PENDING, MESSAGE_SENDING)),
    )
    unanswered = (
        col(Message.direction) == DIRECTION_IN,
        col(Message.channel).in_(channels),
        col(Message.status) == MESSAGE_QUEUED,
    )

    async def waiting() -> int:
        return await count(database, Message, *unanswered) + await count(
            database, Message, *on_its_way
        )

    deadline = asyncio.get_running_loop().time() + 10.0
    while await waiting():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the outbox still holds messages for {channels}")
        await asyncio.sleep(0.02)


# Tests about conversations, not about pacing: a sender fast enough that no reply waits
# for the rate limit, and no quiet hours (equal ends), whatever the time of day.
FAST_SENDER = 50.0
NO_QUIET_HOURS = "00:00-00:00"
NO_SENDER_LIMIT = 10_000
FAST_STAFF_POSTS = 6000.0  # a minute: staff posts do not wait in tests about staff


def make_settings(
    tmp_path: Path,
    twilio: FakeTwilio | None = None,
    telegram: FakeTelegram | None = None,
    *,
    staff_chat_id: int | None = None,
    telegram_per_chat: float = FAST_SENDER,
    **sections: dict[str, Any],
) -> Settings:
    """Settings for a whole server on loopback: the given stand-ins as its platforms, a
    fast sender (the Telegram stand-in told the same per-chat limit), no quiet hours (so
    tests do not depend on the time of day), plus any further ``sections``
    (``handoff={...}``). ``telegram_per_chat=1.0`` keeps Telegram's own limit."""
    whatsapp: dict[str, Any] = {"messages_per_second": FAST_SENDER}
    if twilio is not None:
        whatsapp |= {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": CHARITY,
            "api_base_url": twilio.base_url,
        }
    platforms: dict[str, Any] = {"whatsapp": whatsapp}
    if telegram is not None:
        platforms["telegram"] = {
            "token": TOKEN,
            "webhook_secret": SECRET,
            "api_base_url": telegram.base_url,
            "staff_chat_id": staff_chat_id,
            "staff_posts_per_minute": FAST_STAFF_POSTS,
            "messages_per_chat_per_second": telegram_per_chat,
        }
        # The stand-in keeps the limit the sender is configured for: pacing is tested
        # on its own (tests/test_outbox.py, tests/test_fakes.py).
        telegram.limits(per_chat=telegram_per_chat)
    # Transcripts go as fast as the replies come: no sender limit unless a test sets one.
    sections.setdefault("inbound", {"per_sender_burst": NO_SENDER_LIMIT})
    return Settings(
        server={"public_url": PUBLIC_URL, "media_dir": str(tmp_path / "media")},
        organization={"quiet_hours": NO_QUIET_HOURS},
        **platforms,
        **sections,
    )


TOKEN = "123456:TEST-token_for-the-fake-bot-api"
SECRET = "telegram-webhook-secret"
CHAT = 5550001


class WhatsApp:
    """A beneficiary's phone: sends correctly signed webhooks, reads what Twilio received."""

    def __init__(
        self,
        client: TestClient[Any, Any],
        twilio: FakeTwilio,
        database: Database,
        number: str = BENEFICIARY,
    ):
        self.client, self.twilio, self.database, self.number = client, twilio, database, number
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
        await settled(self.database, "whatsapp", "sms")  # its turn, and every reply sent
        await eventually(lambda: len(self.twilio.messages) > before, "a reply")
        return "\n\n".join(m["Body"] for m in self.twilio.messages[before:])


class TelegramChat:
    """A Telegram user: updates go to the webhook as Telegram sends them."""

    def __init__(self, client: TestClient[Any, Any], api: FakeTelegram, database: Database) -> None:
        self.client, self.api, self.database, self.update_id = client, api, database, 1000

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> int:
        self.api.delivered(update)  # as if through Telegram: its callback query is known
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        response = await self.client.post("/webhooks/telegram", json=update, headers=headers)
        return response.status

    async def send(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliver one update; returns the sendMessage calls it caused."""
        self.update_id += 1
        before = len(self.api.calls("sendMessage"))
        assert await self.post({"update_id": self.update_id, **update}) == 200
        await settled(self.database, "telegram")  # its turn, and every reply sent
        await eventually(lambda: len(self.api.calls("sendMessage")) > before, "a reply")
        return [call.params for call in self.api.calls("sendMessage")[before:]]


class StaffGroup:
    """The staff group as the Bot API shows it: posts we made, and updates staff send."""

    def __init__(self, client: TestClient[Any, Any], api: FakeTelegram, chat_id: int) -> None:
        self.client, self.api, self.chat_id, self.update_id = client, api, chat_id, 50_000

    def posts(self) -> list[dict[str, Any]]:
        calls = self.api.calls("sendMessage")
        return [c.params for c in calls if c.params["chat_id"] == self.chat_id]

    async def wait_posts(self, count: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.posts()) >= count, f"{count} staff post(s)")
        return self.posts()

    async def update(self, update: dict[str, Any]) -> None:
        self.update_id += 1
        self.api.delivered(update)  # as if through Telegram: a tap can be answered
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        response = await self.client.post(
            "/webhooks/telegram", json={"update_id": self.update_id, **update}, headers=headers
        )
        assert response.status == 200

    def message_id(self, post_index: int) -> int:
        return self.api.message_ids(self.chat_id)[post_index]


class WebVisitor:
    """A browser on the website chat: its own cookie jar, posting and long-polling."""

    def __init__(self, client: TestClient[Any, Any], database: Database):
        self.client, self.database, self.last, self.count = client, database, 0, 0

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
        # The turn's replies are stored before the 202: once the outbox has released
        # them all, one poll reads the whole turn.
        await settled(self.database, "web")
        polled = await self.client.get(f"/api/chat/messages?after={self.last}&wait=10")
        assert polled.status == 200
        body = await polled.json()
        self.last = body["last"]
        texts = []
        for message in body["messages"]:  # buttons drawn as "[payload] label"
            buttons = [f"[{c['payload']}] {c['label']}" for c in message["choices"]]
            texts.append("\n".join([message["text"], *buttons]))
        return "\n\n".join(texts)
