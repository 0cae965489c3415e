"""The knowledge base over a real channel: Telegram's buttons through python-telegram-bot
against the local Bot API stand-in, and the staff's changes taking effect at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import CHAT, SECRET, TOKEN, TelegramChat
from conftest import POSTGRESQL_KEY
from fakes.telegram_api import FakeTelegram, callback_query, private_message
from sqlalchemy import select

from bot.cli import main
from bot.config import Settings
from bot.knowledge import EntryFields, KnowledgeDesk
from bot.server import Tawasul
from storage.db import Database
from storage.models import Handoff, UnansweredQuestion


@pytest.fixture
async def service(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        telegram={"token": TOKEN, "webhook_secret": SECRET, "api_base_url": telegram.base_url},
        organization={"phone": "920012345"},
    )
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


def _buttons(call: dict[str, Any]) -> list[tuple[str, str]]:
    rows = (call.get("reply_markup") or {}).get("inline_keyboard") or []
    return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


async def test_a_question_is_answered_with_yes_no_buttons_and_no_offers_a_person(
    service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "مرحبا"))
    (answer,) = await chat.send(private_message(CHAT, "وين مكانكم؟"))
    assert "حي النسيم" in answer["text"] and "920012345" in answer["text"]
    assert _buttons(answer) == [("نعم", "yes"), ("لا", "no")]
    (offer,) = await chat.send(callback_query(CHAT, "no"))
    assert "هل تود التحدث مع موظف؟" in offer["text"]
    await chat.send(private_message(CHAT, "التحدث مع موظف"))
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
        counted = (await session.scalars(select(UnansweredQuestion))).one()
    assert handoff.reason == "requested"
    assert (counted.question, counted.count) == ("وين مكانكم؟", 1)


async def test_a_did_you_mean_choice_by_number_and_an_entry_added_by_staff_at_once(
    service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "مرحبا"))
    (close,) = await chat.send(private_message(CHAT, "عنوانكم لو سمحت"))
    assert "هل تقصد أحد هذه الأسئلة؟" in close["text"]
    keyboard = (close.get("reply_markup") or {}).get("keyboard") or []
    labels = [button["text"] for row in keyboard for button in row]
    number = labels.index("أين مقر الجمعية؟") + 1
    (answer,) = await chat.send(private_message(CHAT, str(number)))
    assert "حي النسيم" in answer["text"]
    # Staff add an entry (the dashboard's code path): the next message already finds it.
    desk = KnowledgeDesk(tawasul.database)
    fields = EntryFields("هل عندكم مواقف للسيارات؟", "نعم، أمام المقر الرئيسي.", "مواقف")
    await desk.add(fields, None, tawasul.clock())
    (parking,) = await chat.send(private_message(CHAT, "فيه مواقف سيارات عندكم؟"))
    assert "أمام المقر الرئيسي" in parking["text"]


async def test_a_crisis_word_inside_a_question_opens_the_urgent_handoff(
    service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "مرحبا"))
    replies = await chat.send(private_message(CHAT, "وش الاوراق المطلوبة؟ ابي انتحر"))
    said = "\n".join(reply["text"] for reply in replies)
    assert "911" in said and "صورة الهوية الوطنية" not in said  # help, not the answer
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
        counted = (await session.scalars(select(UnansweredQuestion))).all()
    assert (handoff.reason, handoff.urgent) == ("crisis", True)
    assert counted == []


async def test_a_question_the_base_cannot_answer_offers_a_person_and_staff_see_it(
    service: tuple[Tawasul, TestClient[Any, Any]],
    telegram: FakeTelegram,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tawasul, client = service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "مرحبا"))
    (ask,) = await chat.send(private_message(CHAT, "٥"))
    assert "اكتب سؤالك" in ask["text"]
    # Out of scope: no answer and no "did you mean", a person offered instead.
    (offer,) = await chat.send(private_message(CHAT, "كيف اطبخ مندي باللحم؟"))
    assert "هل تود التحدث مع موظف؟" in offer["text"]
    assert "هل تقصد" not in offer["text"]
    # What `tawasul knowledge unanswered` prints for staff, from the same database.
    config = tmp_path / "staff.toml"
    key = "" if tawasul.database.is_sqlite else f'[privacy]\nkey = "{POSTGRESQL_KEY}"\n'
    config.write_text(f'[database]\nurl = "{tawasul.database.url}"\n{key}')
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["knowledge", "--config", str(config), "unanswered"])
    count, _day, language, question = capsys.readouterr().out.splitlines()[0].split("\t")
    assert code == 0 and (count, language, question) == ("1", "ar", "كيف اطبخ مندي باللحم؟")
