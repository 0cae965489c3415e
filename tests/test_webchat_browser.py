"""The website chat in a real headless Chromium, against the whole server with no platform."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.server import Tawasul
from flows.catalogue import use_own_wording
from storage.db import Database

playwright_api = pytest.importorskip("playwright.async_api", reason="pip install -e '.[dev]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 800}, locale="ar")
        yield await context.new_page()
        await browser.close()


async def test_a_visitor_starts_an_intake_in_the_browser(
    page: Any, sqlite_database: Database, tmp_path: Path
) -> None:
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), sqlite_database)
    server = TestServer(tawasul.app(), host="127.0.0.1")
    await server.start_server()
    try:
        await page.goto(str(server.make_url("/chat")))
        assert await page.get_attribute("html", "dir") == "rtl"
        await page.get_by_role("button", name="ابدأ").click()
        menu = page.get_by_role("button", name="طلب دعم جديد")
        await menu.wait_for()
        await menu.click()
        agree = page.get_by_role("button", name="أوافق", exact=True)  # the privacy notice
        await agree.wait_for()
        await agree.click()
        await page.get_by_text("(١/٨)").wait_for()
        box = page.get_by_role("textbox")
        await box.fill("محمد أحمد علي الزهراني")
        await box.press("Enter")
        await page.get_by_text("(٢/٨)").wait_for()
        await box.fill("١٠٠٠٠٠٠٠٠٩")
        await box.press("Enter")
        await page.get_by_text("أحد أرقامه مكتوباً خطأً").wait_for()
        await page.screenshot(path=str(tmp_path / "webchat.png"))
        # The visitor's own words are shown as sent, never as markup.
        await box.fill("<b>x</b>")
        await box.press("Enter")
        await page.get_by_text("<b>x</b>").wait_for()
    finally:
        await server.close()


async def test_the_page_says_the_charity_s_words_in_the_replies_language(
    page: Any, sqlite_database: Database, tmp_path: Path
) -> None:
    use_own_wording(
        {"webchat.start": {"ar": "ابدأ المحادثة"}, "webchat.placeholder": {"en": "Write to us…"}}
    )
    try:
        tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), sqlite_database)
        server = TestServer(tawasul.app(), host="127.0.0.1")
        await server.start_server()
    finally:
        use_own_wording({})
    try:
        await page.goto(str(server.make_url("/chat")))
        await page.get_by_role("button", name="ابدأ المحادثة").click()
        await page.get_by_role("button", name="طلب دعم جديد").wait_for()
        box = page.get_by_role("textbox")
        assert await box.get_attribute("placeholder") == "اكتب رسالتك…"
        await box.fill("English")
        await box.press("Enter")
        await page.locator("html[lang=en]").wait_for(state="attached")  # the reply's language
        assert await page.get_attribute("html", "dir") == "ltr"
        assert await box.get_attribute("placeholder") == "Write to us…"
        await page.get_by_role("button", name="Send", exact=True).wait_for()
    finally:
        await server.close()
