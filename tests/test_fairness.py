"""Fair delivery on the whole server: one busy chat never delays another beneficiary.

Times are read from the stand-ins' own records (when each platform call arrived); the
bounds asserted on them are the issue's targets, far above what the machine needs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from channels import SECRET, eventually, make_settings
from fakes.telegram_api import FakeTelegram, private_message

from bot.server import Tawasul
from storage.db import Database

FLOODER, NEIGHBOUR = 5550101, 5550102
FLOOD = 300


async def post(client: TestClient[Any, Any], update_id: int, chat: int, text: str) -> int:
    update = {"update_id": update_id, **private_message(chat, text)}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = await client.post("/webhooks/telegram", json=update, headers=headers)
    return response.status


def sent_to(telegram: FakeTelegram, chat: int) -> list[float]:
    return [c.at for c in telegram.calls("sendMessage") if c.params.get("chat_id") == chat]


async def test_a_flooding_chat_does_not_delay_another_beneficiarys_reply(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    # The inbound limit is lifted here: this is about the outbox, with a chat whose
    # replies wait for Telegram's one message a second per chat.
    settings = make_settings(tmp_path, telegram=telegram, telegram_per_chat=1.0)
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        statuses = await asyncio.gather(
            *(post(client, 10_000 + n, FLOODER, "0") for n in range(FLOOD))
        )
        assert statuses == [200] * FLOOD
        # The flood's replies are stored; the chat gets one a second.
        await eventually(lambda: sent_to(telegram, FLOODER), "the flood's first reply")
        wrote_at = time.monotonic()
        assert await post(client, 20_000, NEIGHBOUR, "مرحبا") == 200
        await eventually(lambda: sent_to(telegram, NEIGHBOUR), "the neighbour's reply", 30)
        waited = sent_to(telegram, NEIGHBOUR)[0] - wrote_at
        flood_sent = len(sent_to(telegram, FLOODER))
    assert waited < 2.0, f"the neighbour's reply left after {waited:.1f}s"
    # The flood was still being delivered: the neighbour did not simply come after it.
    assert flood_sent < FLOOD / 2
