"""Accessibility: axe-core (WCAG 2.1 A and AA) on every dashboard page and the web chat,
in a real Chromium; no serious or critical finding.

axe-core comes from npm (``.ci/run`` installs it into ./node_modules); without it these
tests skip and say so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from test_dashboard import add_ratings, file_request
from test_dashboard_browser import browser, log_in, new_page, office  # noqa: F401

from bot.server import Tawasul
from storage.repositories import StaffRepository

ROOT = Path(__file__).resolve().parent.parent
AXE = Path(os.environ.get("TAWASUL_AXE_JS", ROOT / "node_modules/axe-core/axe.min.js"))
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
AXE_INSTALLED = AXE.is_file()

Office = tuple[Tawasul, TestClient[Any, Any], str]


async def findings(page: Any) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line each."""
    if not AXE_INSTALLED:
        pytest.skip(f"axe-core is not installed ({AXE}); npm install axe-core")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        f"{page.url} {v['id']} ({v['impact']}): "
        + json.dumps([n["target"] for n in v["nodes"]][:3], ensure_ascii=False)
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


async def test_every_dashboard_page_and_the_chat_pass_axe(
    browser: Any,  # noqa: F811
    office: Office,  # noqa: F811
) -> None:
    tawasul, client, base = office
    async with tawasul.database.session() as session, session.begin():
        mona = await StaffRepository(session).get("mona")
        assert mona is not None
        mona.role = "admin"  # sees every page
    visitor = await file_request(client, tawasul.database)
    for line in ("٦", "١", "نقترح مواعيد مسائية", "١"):  # about REQ-000001
        told = await visitor.send(line)
    assert "FB-000001" in told
    await visitor.send("٤")  # an open handoff, so the inbox has a conversation
    await add_ratings(tawasul.database)

    found: list[str] = []
    page = await new_page(browser, bypass_csp=True)  # to add axe to the page
    await page.goto(base + "/staff/login")
    found += await findings(page)
    await log_in(page, base, "mona")
    for path in (
        "/staff/",
        "/staff/requests/REQ-000001",
        "/staff/handoffs",
        "/staff/reports?period=all",
        "/staff/feedback",
        "/staff/feedback/FB-000001",
        "/staff/appointments",
        "/staff/admin/staff",
        "/staff/password",
        "/staff/requests/REQ-999999",  # the "not found" page
        "/staff/?lang=en",
    ):
        await page.goto(base + path)
        found += await findings(page)
    chat = await new_page(browser, bypass_csp=True)
    await chat.goto(base + "/chat")
    await chat.get_by_role("textbox").first.fill("مرحبا")
    await chat.keyboard.press("Enter")
    await chat.get_by_text("طلب دعم جديد").first.wait_for()
    found += await findings(chat)
    assert found == [], "\n".join(found)
