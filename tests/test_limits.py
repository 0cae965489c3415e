"""Limits with a polite answer: a flooding sender, a full queue, a poison message.

The engine's clock is a test's own where the rate matters, so refills happen only when
the test moves it; whole-server checks read times from the stand-ins' records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import SECRET, count, eventually, make_settings, settled
from fakes.telegram_api import FakeTelegram, private_message
from sqlalchemy import select
from sqlmodel import col
from test_engine import SETTINGS

import flows
from bot.engine import OVER_LIMIT, ConversationEngine, HandleResult, InboundLimits
from bot.server import Tawasul
from flows.types import Address, InboundMessage
from handlers.base import Overloaded
from storage.db import Database
from storage.models import Message

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FLOODER, NEIGHBOUR = 5550201, 5550202


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def said(user: str, text: str, number: int, channel: str = "telegram") -> InboundMessage:
    return InboundMessage(Address(channel, user), START, text, platform_message_id=f"{number}")


async def inbound(database: Database) -> list[Message]:
    async with database.session() as session:
        query = select(Message).where(col(Message.direction) == "in").order_by(col(Message.id))
        return list((await session.scalars(query)).all())


# --- the engine alone ---


async def test_a_flooding_sender_is_told_once_and_everything_is_kept(database: Database) -> None:
    clock = Clock()
    limits = InboundLimits(burst=5, per_minute=30)
    engine = ConversationEngine(database, SETTINGS, clock=clock, limits=limits)
    results = [await engine.handle(said("1", "0", n)) for n in range(30)]
    polite = flows.text("ar", "limit.slow_down")
    replies = [r.message.text for result in results for r in result.replies]
    assert replies.count(polite) == 1
    assert sum(1 for result in results if result.replies) == 6  # five menus, one request
    stored = await inbound(database)
    assert len(stored) == 30  # nothing lost
    assert [m.error for m in stored].count(OVER_LIMIT) == 25
    # Someone else is not touched by it.
    other = await engine.handle(said("2", "0", 1000))
    assert other.replies and other.replies[0].message.text != polite
    # A minute of quiet fills the bucket: answered again, and a new flood is told again.
    clock.now += timedelta(minutes=1)
    again = [await engine.handle(said("1", "0", 2000 + n)) for n in range(8)]
    assert [bool(r.replies) for r in again] == [True] * 6 + [False] * 2
    assert again[5].replies[0].message.text == polite


async def test_a_full_queue_refuses_rather_than_grows(database: Database) -> None:
    limits = InboundLimits(queue_limit=5, queue_wait=0.0)
    engine = ConversationEngine(database, SETTINGS, limits=limits)
    outcomes = await asyncio.gather(
        *(engine.handle(said(str(n), "0", n)) for n in range(30)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, Overloaded)]
    handled = [o for o in outcomes if isinstance(o, HandleResult)]
    assert (len(handled), len(refused)) == (5, 25)
    assert all(o.retry_after > 0 for o in refused)
    assert len(await inbound(database)) == 5  # the refused were not stored at all
    # Once there is room, the platform's resend is taken.
    assert (await engine.handle(said("29", "0", 29))).replies


async def test_a_poison_message_is_kept_with_an_apology_and_rolls_back_a_batch_once(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    engine = ConversationEngine(database, SETTINGS)
    # A lone surrogate, which no database stores. The boundary cleans it away
    # (flows/cleaning.py), so it is put back past the cleaning: this is the engine's own
    # defence for whatever still fails there.
    poison = said("9", "broken", 900)
    object.__setattr__(poison, "text", "\ud800 broken")
    with caplog.at_level(logging.INFO, logger="bot.engine"):
        first = await asyncio.gather(
            engine.handle(said("1", "0", 901)),
            engine.handle(poison),
            engine.handle(said("2", "0", 902)),
        )
        # The platform did not hear back in time and sends it again, among others.
        second = await asyncio.gather(
            engine.handle(said("3", "0", 903)),
            engine.handle(poison),
            engine.handle(said("4", "0", 904)),
        )
    apology = flows.text("ar", "error.generic")
    assert [r.replies[0].message.text for r in first][1] == apology
    assert all(r.replies and r.replies[0].message.text != apology for r in (first[0], first[2]))
    assert second[1].duplicate and second[0].replies and second[2].replies
    failed_batches = [r for r in caplog.records if "batch of" in r.getMessage()]
    assert len(failed_batches) == 1
    stored = {m.platform_message_id: m.text for m in await inbound(database)}
    assert stored["900"] == "? broken"  # kept, in the form a database takes
    assert len(stored) == 5


# --- the whole server ---


async def post(client: TestClient[Any, Any], update_id: int, chat: int, text: str) -> int:
    update = {"update_id": update_id, **private_message(chat, text)}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await client.post("/webhooks/telegram", json=update, headers=headers)
    return response.status


def sent_to(telegram: FakeTelegram, chat: int) -> list[Any]:
    return [c for c in telegram.calls("sendMessage") if c.params.get("chat_id") == chat]


async def test_a_flood_on_telegram_gets_one_polite_answer_and_spares_the_neighbour(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, telegram=telegram, inbound={"per_sender_burst": 5, "per_sender_per_minute": 0.01}
    )
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        statuses = [await post(client, 30_000 + n, FLOODER, "0") for n in range(100)]
        assert statuses == [200] * 100
        wrote_at = time.monotonic()
        assert await post(client, 40_000, NEIGHBOUR, "مرحبا") == 200
        await eventually(lambda: sent_to(telegram, NEIGHBOUR), "the neighbour's reply", 30)
        await eventually(lambda: len(sent_to(telegram, FLOODER)) == 6, "the flood's replies", 30)
        await settled(database, "telegram")  # every reply of the 101 turns sent
        flood_replies = [c.params["text"] for c in sent_to(telegram, FLOODER)]
    assert sent_to(telegram, NEIGHBOUR)[0].at - wrote_at < 2.0
    assert flood_replies.count(flows.text("ar", "limit.slow_down")) == 1
    assert len(flood_replies) == 6  # five menus and the request to wait
    assert await count(database, Message, col(Message.direction) == "in") == 101
    assert await count(database, Message, col(Message.error) == OVER_LIMIT) == 95


STAFF_GROUP = -1001234500000


async def test_a_flood_in_a_handoff_is_one_staff_post_and_one_polite_answer(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        telegram=telegram,
        staff_chat_id=STAFF_GROUP,
        inbound={"per_sender_burst": 5, "per_sender_per_minute": 0.01},
    )
    # The group's own pace: the announcement now, the next post ten seconds later.
    settings.telegram.staff_posts_per_minute = 6.0
    tawasul = Tawasul(settings, database)

    def posts() -> list[str]:
        calls = telegram.calls("sendMessage")
        return [c.params["text"] for c in calls if c.params["chat_id"] == STAFF_GROUP]

    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        assert await post(client, 50_000, FLOODER, "٤") == 200  # a person, please
        await eventually(lambda: len(posts()) == 1, "the handoff's announcement")
        flood = [post(client, 50_001 + n, FLOODER, f"رسالة {n}") for n in range(40)]
        assert await asyncio.gather(*flood) == [200] * 40
        wrote_at = time.monotonic()
        assert await post(client, 60_000, NEIGHBOUR, "مرحبا") == 200
        await eventually(lambda: sent_to(telegram, NEIGHBOUR), "the neighbour's reply")
        await eventually(lambda: len(posts()) == 2, "the gathered relay", 40)
        await settled(database, "telegram")  # the replies of the 42 turns, all sent
        # The staff posts run beside the webhooks: once none is under way, none is to come.
        await eventually(lambda: not tawasul._background, "the staff posts to end")
        staff_posts = posts()
        flood_replies = [c.params["text"] for c in sent_to(telegram, FLOODER)]
    assert sent_to(telegram, NEIGHBOUR)[0].at - wrote_at < 2.0
    assert len(staff_posts) == 2  # the announcement, and one post for forty messages
    header, *lines, more = staff_posts[1].splitlines()
    assert header.startswith("#")
    assert len(set(lines)) == 30 and set(lines) <= {f"رسالة {n}" for n in range(40)}
    assert more == flows.text("ar", "staff.more_messages", count=10)
    assert flood_replies.count(flows.text("ar", "limit.slow_down")) == 1
    assert await count(database, Message, col(Message.direction) == "in") == 42
