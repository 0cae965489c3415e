"""/staff/feedback: filters by role, a complaint closed to agents (403), an answer from the
box reaching the beneficiary's chat at once, and the status moved on."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from channels import WebVisitor
from test_dashboard import audit, browser, login, office, page_token

from bot.server import Tawasul

__all__ = ["office"]  # the fixture, shared with the dashboard's own tests


async def _give(visitor: WebVisitor, kind: str, text: str) -> str:
    """Menu 6 from the web chat: the reference told."""
    await visitor.send("٦")
    await visitor.send(kind)
    reply = await visitor.send(text)
    if kind == "٢":  # a complaint: may a manager contact them?
        reply = await visitor.send("٢")
    return "FB-" + reply.split("FB-")[1][:6]


async def test_roles_filters_and_an_answer_that_reaches_the_chat(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = WebVisitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    suggestion = await _give(visitor, "١", "نقترح مواعيد مسائية للعاملين")
    complaint = await _give(visitor, "٢", "لم يرد أحد على اتصالي منذ أسبوع")

    assert (await login(client, "amal")).status == 303  # an agent
    listing = await (await client.get("/staff/feedback")).text()
    assert suggestion in listing and complaint not in listing
    assert "مواعيد مسائية" in listing
    refused = await client.get(f"/staff/feedback/{complaint}")
    assert refused.status == 403 and "للمديرين والمسؤولين فقط" in await refused.text()
    assert (await client.get("/staff/feedback?kind=complaint")).status == 400
    assert (await client.get("/staff/feedback/FB-000099")).status == 404
    token = await page_token(client, f"/staff/feedback/{suggestion}")
    posted = await client.post(
        f"/staff/feedback/{complaint}/answer", data={"csrf": token, "text": "x"}
    )
    assert posted.status == 403
    assert await audit(tawasul.database, "feedback_answer") == []

    async with browser(client) as manager:
        assert (await login(manager, "mona")).status == 303
        listing = await (await manager.get("/staff/feedback?kind=complaint")).text()
        assert complaint in listing and suggestion not in listing
        page = await manager.get(f"/staff/feedback/{complaint}")
        html = await page.text()
        assert page.status == 200 and "لم يرد أحد على اتصالي" in html
        token = await page_token(manager, f"/staff/feedback/{complaint}")
        empty = await manager.post(
            f"/staff/feedback/{complaint}/answer", data={"csrf": token, "text": "  "}
        )
        assert empty.status == 400
        answered = await manager.post(
            f"/staff/feedback/{complaint}/answer",
            data={"csrf": token, "text": "نعتذر، سيتصل بك المشرف اليوم."},
            allow_redirects=False,
        )
        assert answered.status == 303
        assert answered.headers["Location"] == f"/staff/feedback/{complaint}?done=answer"
        shown = await (await manager.get(f"/staff/feedback/{complaint}?done=answer")).text()
        assert "أُرسل الرد." in shown and "تم الرد" in shown
        moved = await manager.post(
            f"/staff/feedback/{complaint}/status",
            data={"csrf": token, "status": "closed", "note": ""},
            allow_redirects=False,
        )
        assert moved.status == 303
        closed = await (await manager.get("/staff/feedback?status=closed")).text()
        assert complaint in closed

    # The answer is in the chat already: the visitor's next poll reads it.
    reply = await visitor.send("شكراً")
    assert "سيتصل بك المشرف اليوم" in reply
    (entry,) = await audit(tawasul.database, "feedback_answer")
    assert (entry.username, entry.target) == ("mona", complaint)
