"""What the website chat shows again, and who wrote it: a visitor's pressed buttons by
their labels, a person's words apart from the bot's (and after their role elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import WebVisitor, WhatsApp, eventually, make_settings, settled
from fakes.twilio_api import FakeTwilio
from test_webchat_browser import CHROMIUM, CHROMIUM_ARGS, playwright_api

from bot.config import Settings
from bot.engine import utcnow
from bot.server import Tawasul
from storage.db import Database
from storage.models import Handoff, Staff
from storage.repositories import StaffRepository

HISTORY = "/api/chat/history"


async def serve(
    database: Database, settings: Settings
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add("huda", "researcher", now=utcnow())
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield tawasul, client


@pytest.fixture
async def office(
    database: Database, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    """The website chat over plain http (its cookie is not Secure)."""
    settings = Settings(server={"media_dir": str(tmp_path / "media")})
    async for served in serve(database, settings):
        yield served


@pytest.fixture
async def whatsapp_office(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    async for served in serve(database, make_settings(tmp_path, twilio)):
        yield served


async def press(web: WebVisitor, payload: str) -> str:
    """Press a button as the page does: the payload as text and as payload."""
    web.count += 1
    posted = await web.client.post(
        "/api/chat/messages", json={"text": payload, "payload": payload, "id": f"b{web.count}"}
    )
    assert posted.status == 202
    await settled(web.database, "web")
    polled = await web.client.get(f"/api/chat/messages?after={web.last}&wait=10")
    body = await polled.json()
    web.last = body["last"]
    return "\n".join(m["text"] for m in body["messages"])


async def staff(tawasul: Tawasul) -> tuple[Staff, Handoff]:
    async with tawasul.database.session() as session:
        huda = await StaffRepository(session).get("huda")
    [handoff] = await tawasul.desk.open_handoffs()
    assert huda is not None
    return huda, handoff


async def test_a_new_tab_shows_pressed_buttons_by_their_labels(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    web = WebVisitor(client, tawasul.database)
    await web.open()
    await web.send("السلام عليكم")
    assert "لدراسة طلبك فقط" in await press(web, "1")  # طلب دعم جديد: the privacy notice
    assert "(١/٨)" in await press(web, "1")  # أوافق
    await web.send("محمد أحمد علي الزهراني")
    await web.send("١٠٠٠٠٠٠٠٠٨")
    history = await (await client.get(HISTORY)).json()
    mine = [m["text"] for m in history["messages"] if m["mine"]]
    # The national ID typed is shown again masked: a browser may be shared.
    assert mine == [
        "السلام عليكم",
        "طلب دعم جديد",
        "أوافق",
        "محمد أحمد علي الزهراني",
        "******0008",
    ]
    bots = [m for m in history["messages"] if not m["mine"]]
    assert bots and all(m["author"] is None for m in bots)
    # Polling goes on from the last reply shown, not from a message of the visitor's.
    assert history["last"] == bots[-1]["id"] == web.last
    # Another visitor sees none of it.
    other = await TestClient(TestServer(client.app, host="127.0.0.1")).__aenter__()
    try:
        first = await other.get(HISTORY)
        assert first.status == 401  # no session yet: one is opened for the next try
        again = await other.get(HISTORY)
        assert (await again.json())["messages"] == []
    finally:
        await other.close()


async def test_a_persons_words_come_apart_from_the_bots_in_the_web_chat(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    web = WebVisitor(client, tawasul.database)
    await web.open()
    await web.send("السلام عليكم")
    await web.send("٤")
    huda, handoff = await staff(tawasul)
    assert handoff.id is not None
    await tawasul.desk.reply(handoff.id, huda, "مرحباً، كيف أساعدك؟")
    await settled(tawasul.database, "web")
    polled = await client.get(f"/api/chat/messages?after={web.last}&wait=10")
    said = [m for m in (await polled.json())["messages"] if m["author"]]
    assert [(m["author"], m["text"]) for m in said] == [("الباحث الاجتماعي", "مرحباً، كيف أساعدك؟")]
    history = await (await client.get(HISTORY)).json()
    assert [m["author"] for m in history["messages"] if not m["mine"]].count(
        "الباحث الاجتماعي"
    ) == 1


async def test_on_whatsapp_a_persons_words_come_after_their_role(
    whatsapp_office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = whatsapp_office
    phone = WhatsApp(client, twilio, tawasul.database)
    await phone.send("السلام عليكم")
    await phone.send("٤")
    huda, handoff = await staff(tawasul)
    assert handoff.id is not None
    before = len(twilio.messages)
    await tawasul.desk.reply(handoff.id, huda, "مرحباً، كيف أساعدك؟")
    await eventually(lambda: len(twilio.messages) > before, "the reply")
    assert twilio.messages[-1]["Body"] == "👤 الباحث الاجتماعي: مرحباً، كيف أساعدك؟"


async def test_a_new_tab_in_the_browser_shows_the_whole_conversation(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    tawasul, client = office
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(locale="ar")
        page = await context.new_page()
        await page.goto(str(client.make_url("/chat")))
        await page.get_by_role("button", name="ابدأ").click()
        await page.get_by_role("button", name="التحدث مع موظف").click()
        await page.locator(".bubble.me", has_text="التحدث مع موظف").wait_for()
        # The bot's answer to it is stored with the handoff, in one transaction.
        await page.locator(".bubble.bot").nth(1).wait_for()
        huda, handoff = await staff(tawasul)
        assert handoff.id is not None
        await tawasul.desk.reply(handoff.id, huda, "أهلاً بك")
        staff_bubble = page.locator(".bubble.staff")
        await staff_bubble.wait_for()
        assert await staff_bubble.locator(".author").inner_text() == "الباحث الاجتماعي"
        # A second tab has no transcript of its own: the server's history, by labels.
        tab = await context.new_page()
        await tab.goto(str(client.make_url("/chat")))
        await tab.locator(".bubble.staff", has_text="أهلاً بك").wait_for()
        mine = await tab.locator(".bubble.me").all_inner_texts()
        assert mine == ["السلام عليكم", "التحدث مع موظف"]
        await browser.close()
