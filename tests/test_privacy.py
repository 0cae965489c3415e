"""Personal data under the Saudi PDPL, through the whole server and the command line: the
privacy notice asked over a channel with buttons, the consent kept in the case file, and
"no" leaving nothing of the intake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import CHAT, TelegramChat, make_settings
from fakes.telegram_api import FakeTelegram, private_message
from sqlalchemy import select
from test_cli import blocks, query, run
from transcript import INTAKE_AR

from bot.server import Tawasul
from storage.db import Database
from storage.models import Message, SupportRequest

NOTICE = {"notice_version": "2026-12", "notice_url": "https://charity.example/privacy"}
NOTICE_ENV = {
    "TAWASUL_PRIVACY__NOTICE_VERSION": NOTICE["notice_version"],
    "TAWASUL_PRIVACY__NOTICE_URL": NOTICE["notice_url"],
}


@pytest.fixture
async def telegram_service(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, telegram=telegram, privacy=NOTICE), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


def _buttons(call: dict[str, Any]) -> list[str]:
    markup = call.get("reply_markup") or {}
    rows = markup.get("keyboard") or markup.get("inline_keyboard") or []
    return [button["text"] for row in rows for button in row]


async def test_the_notice_over_telegram_with_buttons_and_the_consent_in_the_case_file(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "/start"))
    notice = await chat.send(private_message(CHAT, "١"))
    assert "https://charity.example/privacy" in notice[-1]["text"]
    assert _buttons(notice[-1]) == ["أوافق", "لا أوافق"]
    # A reply-keyboard tap sends its label.
    first = await chat.send(private_message(CHAT, "أوافق"))
    assert "(١/٨)" in first[-1]["text"]
    for line in INTAKE_AR[2:]:
        await chat.send(private_message(CHAT, line))
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
    assert request.consent is not None
    assert request.consent["version"] == "2026-12"
    assert request.consent["channel"] == "telegram"
    async with tawasul.database.session() as session:
        tapped = (await session.scalars(select(Message).where(Message.text == "أوافق"))).one()
    assert request.consent["message_id"] == tapped.platform_message_id

    case = await tawasul.desk.case_file(str(request.reference))
    [consent] = [event for event in case.events if event.kind == "consent"]
    assert consent.text == "2026-12"
    exported = json.loads(await tawasul.desk.export(str(request.reference), "json"))
    assert any(event["kind"] == "consent" for event in exported["events"])


def test_consent_shown_by_requests_show_and_no_keeps_nothing(tmp_path: Path) -> None:
    filed = run(tmp_path, "chat", lines=[*INTAKE_AR[:2], "نعم", *INTAKE_AR[2:]], env=NOTICE_ENV)
    assert filed.returncode == 0, filed.stderr
    assert "REQ-000001" in blocks(filed.stdout)[-1]
    shown = run(tmp_path, "requests", "show", "REQ-000001", env=NOTICE_ENV)
    assert shown.returncode == 0, shown.stderr
    assert "consent  2026-12" in shown.stdout

    declined = run(tmp_path, "chat", "--user", "other", lines=["١", "لا"], env=NOTICE_ENV)
    assert declined.returncode == 0, declined.stderr
    assert "لم نحفظ شيئاً" in blocks(declined.stdout)[-1]
    assert query(tmp_path / "tawasul.db", "SELECT count(*) FROM support_request") == [(1,)]
    [(data,)] = query(
        tmp_path / "tawasul.db",
        "SELECT data FROM conversation JOIN channel_identity ci ON ci.id = identity_id "
        "WHERE ci.user_id = 'other'",
    )
    assert "intake_draft" not in json.loads(str(data)) and "consent" not in str(data)
