"""/staff/knowledge in a real headless Chromium: an unanswered question answered by staff."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from channels import WebVisitor
from test_dashboard_browser import browser, log_in, new_page, office, shot

from bot.server import Tawasul

__all__ = ["browser", "office"]  # fixtures shared with the dashboard's browser tests

QUESTION = "هل عندكم مواقف سيارات للزوار؟"


async def test_staff_answer_an_unanswered_question_from_the_page(
    browser: Any, office: tuple[Tawasul, TestClient[Any, Any], str]
) -> None:
    tawasul, client, base = office
    visitor = WebVisitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    await visitor.send("٥")
    reply = await visitor.send(QUESTION)
    if "هل تقصد" in reply:  # a near question offered: "none of these" is the last choice
        reply = await visitor.send(str(reply.count("\n[")))
    assert "هل تود التحدث مع موظف؟" in reply

    page = await new_page(browser)
    problems: list[str] = []  # script errors (a CSP refusal among them) and failed loads
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None,
    )
    await log_in(page, base, "amal")
    await page.get_by_role("link", name="الأسئلة الشائعة").click()
    await page.get_by_role("heading", name="أسئلة لم نجد لها إجابة").wait_for()
    await page.get_by_role("link", name="أضف إجابته").click()
    assert await page.get_by_label("السؤال", exact=True).input_value() == QUESTION
    await page.get_by_label("صيغ أخرى للسؤال").fill("مواقف\nوين اوقف السيارة")
    await page.get_by_label("الإجابة", exact=True).fill("نعم، أمام المقر الرئيسي.")
    await page.get_by_role("button", name="حفظ").click()
    await page.get_by_text("أُضيف السؤال.").wait_for()
    await page.get_by_text("لا توجد أسئلة دون إجابة.").wait_for()
    await shot(page, "knowledge")
    assert problems == []

    await visitor.send("٢")
    assert "أمام المقر الرئيسي" in await visitor.send("وين اوقف السيارة؟")
