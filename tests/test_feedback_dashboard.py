"""/staff/feedback: filters by role, a complaint closed to agents (403), an answer from the
box reaching the beneficiary's chat at once, and the status moved on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from channels import WebVisitor
from test_dashboard import audit, browser, file_request, login, office, page_token

from bot.dashboard.feedback_report import group_feedback, summarise
from bot.server import Tawasul
from storage.feedback import FeedbackReportRow, FeedbackRepository
from storage.repositories import RequestRepository

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
    # Each page of a feedback read is in the audit log; the agent's refused one is not.
    reads = await audit(tawasul.database, "feedback_read")
    assert [(r.username, r.target, r.detail["where"]) for r in reads] == [
        ("amal", suggestion, "dashboard"),  # the page her form's token came from
        # the page, its form, the page again with the empty answer refused, after the answer
        *[("mona", complaint, "dashboard")] * 4,
    ]


async def test_the_report_beside_the_ratings_and_its_csv(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = WebVisitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    suggestion = await _give(visitor, "١", "نقترح مواعيد مسائية")
    await _give(visitor, "٢", "تأخر الرد")
    await _give(visitor, "٣", "شكراً لكم")
    await tawasul.feedback.answer(suggestion, "سندرس ذلك")

    assert (await login(client, "amal")).status == 303
    assert (await client.get("/staff/reports/feedback.csv")).status == 403

    async with browser(client) as manager:
        assert (await login(manager, "mona")).status == 303
        page = await (await manager.get("/staff/reports?lang=en")).text()
        assert "Suggestions, complaints and thanks" in page
        assert "3 received, 1 answered, 0 overdue now." in page
        assert "Median time to answer" in page and "By kind" in page
        exported = await manager.get("/staff/reports/feedback.csv?period=all")
        assert exported.status == 200
        lines = (await exported.text()).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("reference,received_at,kind,status,channel,need")
    assert [line.split(",")[2:5] for line in lines[1:]] == [
        ["suggestion", "answered", "web"],
        ["complaint", "received", "web"],
        ["thanks", "received", "web"],
    ]
    assert "نقترح" not in "\n".join(lines)  # numbers only, no words
    (entry,) = await audit(tawasul.database, "export_feedback")
    assert entry.username == "mona"


def test_the_median_time_to_answer_and_the_overdue_count() -> None:
    start = datetime(2030, 1, 6, 7, 0, tzinfo=UTC)

    def row(kind: str, hours: float | None, status: str, due_days: int) -> FeedbackReportRow:
        answered = start + timedelta(hours=hours) if hours is not None else None
        due = start + timedelta(days=due_days)
        return FeedbackReportRow("FB-1", kind, status, "web", None, start, answered, due)

    rows = [
        row("complaint", 2, "answered", 7),
        row("complaint", 30, "closed", 7),
        row("suggestion", 10, "in_progress", 7),  # answered, then replied to
        row("suggestion", None, "received", 1),  # late
        row("thanks", None, "received", 9),
    ]
    now = start + timedelta(days=2)
    everything = summarise(rows, now)
    assert (everything.total, everything.answered, everything.overdue) == (5, 3, 1)
    assert everything.median_hours == 10
    by_kind = {g.key: g for g in group_feedback(rows, lambda r: r.kind, str, now)}
    assert by_kind["complaint"].median_hours == 16
    assert by_kind["suggestion"].overdue == 1 and by_kind["thanks"].median_hours is None


async def test_a_complaint_about_a_request_shows_on_its_case_page_to_managers_only(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = await file_request(client, tawasul.database)
    await visitor.send("٦")
    await visitor.send("٢")
    offered = await visitor.send("لم يتصل بي الباحث")
    assert "REQ-000001" in offered  # the sender's own request, to choose
    await visitor.send("١")
    await visitor.send("٢")
    async with tawasul.database.session() as session:
        request = await RequestRepository(session).get_by_reference("REQ-000001")
        assert request is not None and request.id is not None
        notes = await RequestRepository(session).notes(request.id)
    assert notes == []  # a complaint is never a case note agents read

    assert (await login(client, "amal")).status == 303
    agent_view = await (await client.get("/staff/requests/REQ-000001")).text()
    assert 'href="/staff/feedback/FB-000001"' not in agent_view
    # The conversation is the case's context, but not the complaint's part of it.
    assert "لم يتصل بي الباحث" not in agent_view and "FB-000001" not in agent_view
    assert "نحتاج سلة غذائية" in agent_view  # the intake's part is there
    async with browser(client) as manager:
        assert (await login(manager, "mona")).status == 303
        await tawasul.feedback.answer("FB-000001", "سيتصل بك الباحث غداً", by="mona")
        case = await (await manager.get("/staff/requests/REQ-000001")).text()
        assert 'href="/staff/feedback/FB-000001"' in case and "شكوى" in case
        assert "لم يتصل بي الباحث" not in case and "سيتصل بك الباحث غداً" not in case
        complaint = await (await manager.get("/staff/feedback/FB-000001")).text()
    assert "لم يتصل بي الباحث" in complaint and "سيتصل بك الباحث غداً" in complaint


async def test_overdue_feedback_is_marked_and_counted(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = WebVisitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    late = await _give(visitor, "١", "نقترح مظلة أمام المقر")
    on_time = await _give(visitor, "١", "نقترح ماء بارداً للمنتظرين")
    async with tawasul.database.session() as session, session.begin():
        row = await FeedbackRepository(session).get(late)
        assert row is not None
        row.due_at = datetime.now(UTC) - timedelta(hours=1)  # its deadline passed
    assert (await login(client, "amal")).status == 303
    page = await (await client.get("/staff/feedback?lang=en")).text()
    assert "⏰ 1 past their answer date" in page
    assert page.count("Overdue</span>") == 1
    only = await (await client.get("/staff/feedback?overdue=1")).text()
    assert late in only and on_time not in only
    shown = await (await client.get(f"/staff/feedback/{late}?lang=en")).text()
    assert "Overdue" in shown
