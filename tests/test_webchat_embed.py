"""The website chat in a frame on the charity's own site (another origin), in real Chromium
with third-party cookies blocked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_webchat_browser import CHROMIUM, CHROMIUM_ARGS, playwright_api

from bot.config import Settings
from bot.server import Tawasul
from storage.db import Database

CHARITY = "جمعية البر بالرياض"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    async with playwright_api.async_playwright() as playwright:
        yield await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # What browsers move to: no cookie of ours in a frame on another site.
            args=[*CHROMIUM_ARGS, "--test-third-party-cookie-phaseout"],
        )


async def charity_site(chat_url: list[str]) -> TestServer:
    """The charity's own website: a page with the chat in an iframe. Served on
    ``localhost``, another site than the bot's ``127.0.0.1``."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(
            text=(
                '<!doctype html><html lang="ar"><title>الجمعية</title>'
                f'<iframe id="chat" src="{chat_url[0]}" title="المحادثة" '
                'width="390" height="700"></iframe></html>'
            ),
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", page)
    site = TestServer(app, host="127.0.0.1")
    await site.start_server()
    return site


async def test_a_visitor_chats_through_the_frame_on_the_charitys_site(
    browser: Any, sqlite_database: Database, tmp_path: Path
) -> None:
    chat_url: list[str] = []
    site = await charity_site(chat_url)
    settings = Settings(
        server={
            "media_dir": str(tmp_path / "media"),
            "chat_embed_origins": [f"http://localhost:{site.port}"],
        },
        organization={"name": CHARITY},
    )
    bot = TestServer(Tawasul(settings, sqlite_database).app(), host="127.0.0.1")
    await bot.start_server()
    chat_url.append(str(bot.make_url("/chat")))
    try:
        context = await browser.new_context(locale="ar")
        page = await context.new_page()
        await page.goto(f"http://localhost:{site.port}/")
        frame = page.frame_locator("#chat")
        await frame.get_by_role("heading", name=CHARITY).wait_for()
        await frame.get_by_role("button", name="ابدأ").click()
        menu = frame.get_by_role("button", name="طلب دعم جديد")
        await menu.wait_for()
        await menu.click()
        agree = frame.get_by_role("button", name="أوافق", exact=True)  # the privacy notice
        await agree.wait_for()
        await agree.click()
        await frame.get_by_text("(١/٨)").wait_for()
        box = frame.get_by_role("textbox")
        await box.fill("محمد أحمد علي الزهراني")
        await box.press("Enter")
        await frame.get_by_text("(٢/٨)").wait_for()
        # The browser kept no cookie of ours but the partitioned one (under the charity's
        # site); in the frame the page may not use storage, so the session went in the
        # page's header.
        kept = await context.cookies(str(bot.make_url("/")))
        assert {cookie["name"] for cookie in kept} == {"tawasul_chat_embed"}
        # Another tab on the charity's site: the partitioned cookie names the session,
        # and the page shows the conversation so far.
        again = await context.new_page()
        await again.goto(f"http://localhost:{site.port}/")
        frame = again.frame_locator("#chat")
        await frame.locator(".bubble.me", has_text="محمد أحمد علي الزهراني").wait_for()
        await context.close()
    finally:
        await bot.close()
        await site.close()


async def test_a_site_not_listed_cannot_frame_the_chat(
    browser: Any, sqlite_database: Database, tmp_path: Path
) -> None:
    chat_url: list[str] = []
    site = await charity_site(chat_url)
    settings = Settings(server={"media_dir": str(tmp_path / "media")})
    bot = TestServer(Tawasul(settings, sqlite_database).app(), host="127.0.0.1")
    await bot.start_server()
    chat_url.append(str(bot.make_url("/chat")))
    try:
        context = await browser.new_context(locale="ar")
        page = await context.new_page()
        async with page.expect_response(lambda r: r.url.endswith("/chat")) as answer:
            await page.goto(f"http://localhost:{site.port}/")
        assert "frame-ancestors 'self'" in (await answer.value).headers["content-security-policy"]
        # Chromium shows its own error page in the frame instead of the chat.
        await page.wait_for_load_state("load")
        frame = page.frame(url=lambda url: url.endswith("/chat"))
        assert frame is None or await frame.locator("#composer").count() == 0
        await context.close()
    finally:
        await bot.close()
        await site.close()


def test_embed_origins_are_checked_when_the_configuration_is_read() -> None:
    settings = Settings(server={"chat_embed_origins": ["https://Charity.org.sa/"]})
    assert settings.server.chat_embed_origins == ["https://charity.org.sa"]
    for bad in ("charity.org.sa", "https://charity.org.sa/chat", "https://*.charity.org.sa"):
        with pytest.raises(ValueError, match="chat_embed_origins"):
            Settings(server={"chat_embed_origins": [bad]})
