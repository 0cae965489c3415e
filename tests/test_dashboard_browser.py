"""The staff dashboard in a real headless Chromium, against the whole server and its web chat.

Screenshots of the main pages (phone width, right to left) are written to
tests/screenshots/ for review; the folder is not kept in git.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from test_dashboard import PASSWORD, Visitor, add_ratings, file_request, settings
from test_dashboard import browser as another_browser

from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from storage.db import Database
from storage.models import Handoff, SupportRequest
from storage.repositories import StaffRepository

playwright_api = pytest.importorskip("playwright.async_api", reason="pip install -e '.[dev]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    SCREENSHOTS.mkdir(exist_ok=True)
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def office(
    sqlite_database: Database, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any], str]]:
    async with sqlite_database.session() as session, session.begin():
        for username, role in (("mona", "manager"), ("amal", "agent")):
            await StaffRepository(session).add(
                username, role, password_hash=hash_password(PASSWORD), now=utcnow()
            )
    tawasul = Tawasul(settings(tmp_path), sqlite_database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield tawasul, client, str(client.make_url("")).rstrip("/")


async def new_page(browser: Any, **options: Any) -> Any:
    context = await browser.new_context(viewport=PHONE, locale="ar", **options)
    return await context.new_page()


async def log_in(page: Any, base: str, username: str, password: str = PASSWORD) -> Any:
    """Fill the login form; returns the response to the POST."""
    if "/staff/login" not in page.url:
        await page.goto(base + "/staff/login")
    await page.get_by_label("اسم المستخدم").fill(username)
    await page.get_by_label("كلمة المرور").fill(password)
    async with page.expect_response(lambda r: r.url.endswith("/staff/login")) as posted:
        await page.get_by_role("button", name="دخول").click()
    return await posted.value


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_a_web_chat_request_is_found_and_moved_on_in_the_browser(
    browser: Any, office: tuple[Tawasul, TestClient[Any, Any], str]
) -> None:
    tawasul, client, base = office
    visitor = await file_request(client, tawasul.database)
    page = await new_page(browser)

    # Logged out: the dashboard sends you to the login page.
    await page.goto(base + "/staff/")
    assert "/staff/login?next=" in page.url
    assert await page.get_attribute("html", "dir") == "rtl"
    await shot(page, "login")
    refused = await log_in(page, base, "mona", "not the password")
    assert refused.status == 401
    await page.get_by_text("اسم المستخدم أو كلمة المرور غير صحيحة").wait_for()
    assert (await log_in(page, base, "mona")).status == 303
    await page.wait_for_url(base + "/staff/")

    # Find the request filed through the website chat, by name.
    await page.get_by_label("بحث").fill("الزهراني")
    await page.get_by_role("button", name="عرض").click()
    await page.get_by_role("link", name="REQ-000001").wait_for()
    await shot(page, "requests")
    await page.get_by_role("link", name="REQ-000001").click()
    await page.get_by_role("heading", name="ملف الطلب REQ-000001").wait_for()
    assert await page.get_by_text("******0008").count() >= 1
    assert await page.get_by_text("1000000008").count() == 0

    # A form whose CSRF token is gone is refused, and nothing changes.
    await page.select_option("#new-status", "under_review")
    await page.eval_on_selector(
        "form[action$='/status'] input[name=csrf]", "input => input.remove()"
    )
    async with page.expect_response(lambda r: r.url.endswith("/status")) as forged:
        await page.get_by_role("button", name="غيّر الحالة وأبلغ المستفيد").click()
    assert (await forged.value).status == 403
    await page.get_by_text("انتهت صلاحية هذا النموذج").wait_for()
    async with tawasul.database.session() as session:
        assert (await session.scalars(select(SupportRequest))).one().status == "submitted"

    # Change the status; the notice reaches the beneficiary's chat.
    await page.goto(base + "/staff/requests/REQ-000001")
    await page.select_option("#new-status", "under_review")
    await page.get_by_label("ملاحظة تصل إلى المستفيد").fill("بدأت اللجنة دراسة طلبك")
    await page.get_by_role("button", name="غيّر الحالة وأبلغ المستفيد").click()
    await page.get_by_text("تغيّرت الحالة وأُبلغ المستفيد").wait_for()
    await shot(page, "case")
    chat = await visitor.wait_for("بدأت اللجنة دراسة طلبك")
    assert "REQ-000001" in chat

    # The same page in English, left to right.
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("heading", name="Case file REQ-000001").wait_for()
    assert await page.get_attribute("html", "dir") == "ltr"
    await shot(page, "case-en")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await shot(page, "case-en-desktop")


async def test_the_inbox_answers_a_handoff_and_hears_the_beneficiary_live(
    browser: Any, office: tuple[Tawasul, TestClient[Any, Any], str]
) -> None:
    tawasul, client, base = office
    visitor = Visitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("السلام عليكم")
    await visitor.send("٤")  # talk to a staff member
    page = await new_page(browser)
    await log_in(page, base, "amal")
    await page.get_by_role("link", name="المحادثات").click()
    card = page.locator("article.handoff")
    await card.wait_for()
    await card.get_by_role("button", name="استلام").click()
    await page.get_by_text("استلمت المحادثة").wait_for()
    await card.get_by_label("ردّك").fill("أهلاً بك، أنا أمل من الجمعية. كيف أساعدك؟")
    await card.get_by_role("button", name="أرسل").click()
    await page.get_by_text("أُرسلت رسالتك").wait_for()
    assert "أنا أمل من الجمعية" in await visitor.wait_for("أنا أمل من الجمعية")

    # The beneficiary answers: it appears in the open page, without reloading it.
    await page.locator("#live-status[data-state=on]").wait_for()
    await visitor.post("شكراً، أحتاج مساعدة في الإيجار")
    conversation = card.locator("ol.conversation")
    await conversation.get_by_text("شكراً، أحتاج مساعدة في الإيجار").wait_for()
    await visitor.post('<img src=x onerror="document.title=1">')
    await conversation.get_by_text("<img src=x").wait_for()  # shown as text, never as markup
    assert await conversation.locator("img").count() == 0
    await shot(page, "handoffs")
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    assert handoff.status == "open" and handoff.claimed_by is not None

    # A new conversation elsewhere: the page says the list changed.
    async with another_browser(client) as other_client:
        other = Visitor(other_client, tawasul.database)
        await other.open()
        await other.send("السلام عليكم")
        await other.send("٤")
    await page.get_by_text("تغيّرت قائمة المحادثات").wait_for()


async def test_reports_draw_charts_and_each_refusal_holds_in_the_browser(
    browser: Any, office: tuple[Tawasul, TestClient[Any, Any], str]
) -> None:
    tawasul, _client, base = office
    await add_ratings(tawasul.database)
    manager = await new_page(browser)
    await log_in(manager, base, "mona")
    await manager.get_by_role("link", name="الرضا").click()
    await manager.select_option("#period", "all")
    await manager.get_by_role("button", name="عرض").click()
    bars = manager.locator("svg.chart rect.bar")
    await bars.first.wait_for()
    assert await bars.count() >= 9
    assert await manager.locator("svg.chart").count() == 5
    await manager.get_by_text("شكراً لكم").wait_for()
    await shot(manager, "reports")

    # An agent: no reports, no staff administration.
    agent = await new_page(browser)
    await log_in(agent, base, "amal")
    assert await agent.get_by_role("link", name="الرضا").count() == 0
    for path in ("/staff/admin/staff", "/staff/reports"):
        response = await agent.goto(base + path)
        assert response.status == 403, path
        await agent.get_by_text("ليست لديك صلاحية لهذه الصفحة").wait_for()
    await shot(agent, "forbidden")

    # Logged out: pages lead to the login, the live stream answers 401.
    stranger = await new_page(browser)
    await stranger.goto(base + "/staff/handoffs")
    assert stranger.url == base + "/staff/login?next=%2Fstaff%2Fhandoffs"
    events = await stranger.request.get(base + "/staff/handoffs/events")
    assert events.status == 401
