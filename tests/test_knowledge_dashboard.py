"""/staff/knowledge: the unanswered questions turned into entries, edits checked like an
import, audited, and live in the chat at once."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from channels import WebVisitor
from test_dashboard import audit, login, office, page_token

from bot.server import Tawasul
from storage.db import Database

__all__ = ["office"]  # the fixture, shared with the dashboard's own tests

QUESTION = "هل توفرون نقلاً للمواعيد الطبية؟"


async def _asked_without_answer(client: TestClient[Any, Any], database: Database) -> WebVisitor:
    visitor = WebVisitor(client, database)
    await visitor.open()
    await visitor.send("مرحبا")
    await visitor.send("٥")
    reply = await visitor.send(QUESTION)
    if "هل تقصد" in reply:  # a near question offered: "none of these" is the last choice
        reply = await visitor.send(str(reply.count("\n[")))
    assert "هل تود التحدث مع موظف؟" in reply
    return visitor


async def test_an_unanswered_question_becomes_an_entry_the_chat_answers_at_once(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = await _asked_without_answer(client, tawasul.database)
    assert (await login(client, "amal")).status == 303
    page = await client.get("/staff/knowledge")
    html = await page.text()
    assert page.status == 200 and QUESTION in html and "قاعدة الأسئلة والإجابات" in html
    link = re.search(r'href="(/staff/knowledge\?from=\d+)#entry-form"', html)
    assert link, "no button to turn the question into an entry"
    prefilled = await client.get(link.group(1))
    form_html = await prefilled.text()
    assert f'value="{QUESTION}"' in form_html
    token = await page_token(client, "/staff/knowledge")
    added = await client.post(
        "/staff/knowledge",
        data={
            "csrf": token,
            "question": QUESTION,
            "alternatives": "نقل للمستشفى\nتوصيل للمواعيد",
            "answer": "نعم، نوفر النقل لكبار السن. اتصل بـ{organization.name}.",
            "language": "ar",
            "topic": "transport",
            "unanswered": link.group(1).rsplit("=", 1)[1],
        },
        allow_redirects=False,
    )
    assert added.status == 303 and added.headers["Location"] == "/staff/knowledge?done=added"
    after = await (await client.get("/staff/knowledge?done=added")).text()
    assert "أُضيف السؤال." in after and "لا توجد أسئلة دون إجابة." in after
    await visitor.send("٢")  # another question
    answer = await visitor.send("توصيل للمواعيد الطبية")
    assert "نوفر النقل لكبار السن" in answer and "جمعية تواصل الخيرية" in answer
    (entry,) = await audit(tawasul.database, "knowledge_add")
    assert entry.username == "amal" and entry.target and entry.target.startswith("knowledge:")


async def test_edits_are_checked_like_an_import_and_nothing_changes_when_refused(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    assert (await login(client, "amal")).status == 303
    html = await (await client.get("/staff/knowledge")).text()
    token = await page_token(client, "/staff/knowledge")
    edit = re.search(r'href="/staff/knowledge/(\d+)#entry-form"', html)
    assert edit
    entry_id = edit.group(1)
    empty = await client.post(
        f"/staff/knowledge/{entry_id}",
        data={"csrf": token, "question": "ما الخدمات؟", "answer": "  ", "language": "ar"},
    )
    assert empty.status == 400 and "اكتب الإجابة." in await empty.text()
    duplicate = await client.post(
        "/staff/knowledge",
        data={"csrf": token, "question": "ما أوقات الدوام؟", "answer": "x", "language": "ar"},
    )
    assert duplicate.status == 400 and "موجود في" in await duplicate.text()
    unknown = await client.post(
        "/staff/knowledge",
        data={"csrf": token, "question": "سؤال جديد", "answer": "{org.name}", "language": "ar"},
    )
    assert unknown.status == 400 and "لا نعرف {org.name}" in await unknown.text()
    no_token = await client.post(
        f"/staff/knowledge/{entry_id}/remove", data={}, allow_redirects=False
    )
    assert no_token.status == 403
    assert await audit(tawasul.database, "knowledge_change") == []
    assert await audit(tawasul.database, "knowledge_remove") == []

    changed = await client.post(
        f"/staff/knowledge/{entry_id}",
        data={
            "csrf": token,
            "question": "ما الخدمات التي تقدمها الجمعية؟",
            "answer": "نقدم السلال الغذائية فقط هذا الشهر.",
            "language": "ar",
        },
        allow_redirects=False,
    )
    assert changed.status == 303
    visitor = WebVisitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    assert "السلال الغذائية فقط هذا الشهر" in await visitor.send("وش الخدمات اللي عندكم")
    removed = await client.post(
        f"/staff/knowledge/{entry_id}/remove", data={"csrf": token}, allow_redirects=False
    )
    assert removed.status == 303
    assert "السلال الغذائية فقط" not in await visitor.send("وش الخدمات اللي عندكم")
    assert len(await audit(tawasul.database, "knowledge_change")) == 1
    assert len(await audit(tawasul.database, "knowledge_remove")) == 1
