"""The staff dashboard over HTTP: logins, CSRF, roles, the case file, the inbox, reports, media."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import WebVisitor, count
from sqlalchemy import select
from sqlmodel import col
from transcript import INTAKE_AR

from bot.config import Settings
from bot.dashboard import reports
from bot.dashboard.auth import COOKIE
from bot.dashboard.live import LiveInbox
from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from flows import mask_ids
from storage.db import Database
from storage.models import (
    AuditEntry,
    Handoff,
    Message,
    Rating,
    Staff,
    StaffSession,
    StatusChange,
    SupportRequest,
)
from storage.repositories import RatingRow, StaffRepository

PASSWORD = "a long enough password"
# (username, role) of the staff every test starts with.
TEAM = (("amal", "agent"), ("mona", "manager"), ("adel", "admin"))


class Visitor(WebVisitor):
    """A web chat visitor who may also write without waiting for an answer (in a handoff
    the bot keeps quiet), and read whatever has arrived since."""

    async def post(self, text: str) -> None:
        self.count += 1
        posted = await self.client.post(
            "/api/chat/messages", json={"text": text, "id": f"m{self.count}"}
        )
        assert posted.status == 202, await posted.text()

    async def received(self, wait: float = 0.5) -> str:
        polled = await self.client.get(f"/api/chat/messages?after={self.last}&wait={wait}")
        body = await polled.json()
        self.last = body["last"]
        return "\n\n".join(message["text"] for message in body["messages"])

    async def wait_for(self, words: str, seconds: float = 10.0) -> str:
        seen: list[str] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            seen.append(await self.received())
            if words in "\n".join(seen):
                return "\n".join(seen)
        raise AssertionError(f"{words!r} never reached the chat; it got {seen!r}")


@pytest.fixture
async def office(
    database: Database, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    async with database.session() as session, session.begin():
        for username, role in TEAM:
            await StaffRepository(session).add(
                username, role, password_hash=hash_password(PASSWORD), now=utcnow()
            )
    tawasul = Tawasul(settings(tmp_path), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield tawasul, client


def settings(tmp_path: Path, **server: str) -> Settings:
    """Only the web chat; notices sent at once whatever the time of day (no quiet hours)."""
    return Settings(
        server={"media_dir": str(tmp_path / "media"), **server},
        organization={"quiet_hours": "00:00-00:00"},
        whatsapp={"messages_per_second": 50.0},
    )


@asynccontextmanager
async def browser(client: TestClient[Any, Any]) -> AsyncIterator[TestClient[Any, Any]]:
    """Another browser (its own cookies) on the same server, which stays up after it."""
    other: TestClient[Any, Any] = TestClient(client.server)
    await other.start_server()
    try:
        yield other
    finally:
        await other.session.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD) -> Any:
    page = await client.get("/staff/login")
    assert page.status == 200
    form = {"csrf": csrf_of(await page.text()), "username": username, "password": password}
    return await client.post("/staff/login", data=form, allow_redirects=False)


async def page_token(client: TestClient[Any, Any], path: str) -> str:
    page = await client.get(path)
    assert page.status == 200, path
    return csrf_of(await page.text())


async def file_request(client: TestClient[Any, Any], database: Database) -> Visitor:
    """A beneficiary files REQ-000001 through the website chat."""
    visitor = Visitor(client, database)
    await visitor.open()
    for line in INTAKE_AR:
        reply = await visitor.send(line)
    assert "REQ-000001" in reply
    return visitor


async def audit(database: Database, action: str) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list((await session.scalars(query.order_by(col(AuditEntry.id)))).all())


# --- logging in and out ---


async def test_login_opens_a_session_kept_only_as_a_hash_and_logout_ends_it(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    response = await login(client, "Amal")
    assert response.status == 303 and response.headers["Location"] == "/staff/"
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # served over plain http here
    token = response.cookies[COOKIE].value
    async with tawasul.database.session() as session:
        stored = (await session.scalars(select(StaffSession))).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token
    assert stored.expires_at - stored.created_at == timedelta(hours=12)
    home = await client.get("/staff/")
    assert home.status == 200 and "amal" in await home.text()
    assert [entry.username for entry in await audit(tawasul.database, "login")] == ["amal"]

    logout = await client.post(
        "/staff/logout", data={"csrf": csrf_of(await home.text())}, allow_redirects=False
    )
    assert logout.status == 303
    assert await count(tawasul.database, StaffSession) == 0
    again = await client.get("/staff/", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].startswith("/staff/login")
    assert len(await audit(tawasul.database, "logout")) == 1


async def test_login_goes_back_to_the_page_asked_for_and_never_to_another_site(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    _, client = office
    first = await client.get("/staff/handoffs", allow_redirects=False)
    assert first.headers["Location"] == "/staff/login?next=%2Fstaff%2Fhandoffs"
    for target, expected in (
        ("/staff/handoffs", "/staff/handoffs"),
        ("https://evil.example/staff/", "/staff/"),
        ("//evil.example/staff/", "/staff/"),
    ):
        client.session.cookie_jar.clear()
        page = await client.get("/staff/login")
        form = {
            "csrf": csrf_of(await page.text()),
            "username": "amal",
            "password": PASSWORD,
            "next": target,
        }
        response = await client.post("/staff/login", data=form, allow_redirects=False)
        assert response.headers["Location"] == expected


async def test_the_session_cookie_is_secure_behind_https(
    database: Database, tmp_path: Path
) -> None:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "agent", password_hash=hash_password(PASSWORD), now=utcnow()
        )
    https = settings(tmp_path, public_url="https://bot.example.org")
    async with TestClient(TestServer(Tawasul(https, database).app(), host="127.0.0.1")) as c:
        page = await c.get("/staff/login")
        login_cookie = page.headers["Set-Cookie"]
        assert "Secure" in login_cookie and "Path=/staff/login" in login_cookie
        form = {"csrf": csrf_of(await page.text()), "username": "amal", "password": PASSWORD}
        # The test client keeps Secure cookies to itself over http: send it by hand.
        response = await c.post(
            "/staff/login",
            data=form,
            allow_redirects=False,
            headers={"Cookie": login_cookie.split(";")[0]},
        )
        assert response.status == 303
        assert any(
            c.startswith(COOKIE + "=") and "Secure" in c
            for c in response.headers.getall("Set-Cookie")
        )


async def test_a_wrong_password_is_401_with_a_generic_error_and_audited_without_it(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    wrong = await login(client, "amal", "not the password at all")
    unknown = await login(client, "nobody", "not the password at all")
    for response in (wrong, unknown):
        assert response.status == 401
        text = await response.text()
        assert "اسم المستخدم أو كلمة المرور غير صحيحة" in text
        assert COOKIE + "=" not in response.headers.get("Set-Cookie", "")
    assert await count(tawasul.database, StaffSession) == 0
    failed = await audit(tawasul.database, "login_failed")
    assert [entry.username for entry in failed] == ["amal", "nobody"]
    assert failed[0].staff_id is not None and failed[1].staff_id is None
    assert all("not the password" not in json.dumps(e.detail) for e in failed)


# Throttling (counted before the hash, growing waits, kept over a restart, real client
# addresses behind proxies) has its own file, on a clock the tests move: test_logins.py.


# --- CSRF, roles, logged-out requests ---


async def test_a_post_without_the_csrf_token_is_403_and_changes_nothing(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "amal")
        token = await page_token(staff, "/staff/requests/REQ-000001")
        outbox_before = await count(tawasul.database, Message)
        form = {"status": "under_review", "note": ""}
        for sent in (form, {**form, "csrf": "x" * 43}):
            response = await staff.post("/staff/requests/REQ-000001/status", data=sent)
            assert response.status == 403
            assert "انتهت صلاحية هذا النموذج" in await response.text()
        # The right token from a page of another site is refused too.
        forged = await staff.post(
            "/staff/requests/REQ-000001/status",
            data={**form, "csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status == 403
        async with tawasul.database.session() as session:
            request = (await session.scalars(select(SupportRequest))).one()
        assert request.status == "submitted"
        assert await count(tawasul.database, Message) == outbox_before
        assert await count(tawasul.database, StatusChange) == 1  # only "submitted"
        assert await audit(tawasul.database, "status_change") == []
        # The login form has its own token.
        staff.session.cookie_jar.clear()
        bare = await staff.post("/staff/login", data={"username": "amal", "password": PASSWORD})
        assert bare.status == 403 and await count(tawasul.database, StaffSession) == 1


async def test_each_role_reaches_only_its_pages(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    pages = ("/staff/", "/staff/handoffs", "/staff/reports", "/staff/admin/staff")
    reach = {"amal": (200, 200, 403, 403), "mona": (200, 200, 200, 403), "adel": (200,) * 4}
    for username, expected in reach.items():
        client.session.cookie_jar.clear()
        await login(client, username)
        assert tuple([(await client.get(p)).status for p in pages]) == expected, username
    # An agent cannot add staff even with a valid token.
    client.session.cookie_jar.clear()
    await login(client, "amal")
    token = await page_token(client, "/staff/")
    added = await client.post(
        "/staff/admin/staff",
        data={"csrf": token, "username": "eve", "role": "admin", "password": PASSWORD},
    )
    assert added.status == 403
    assert "ليست لديك صلاحية" in await added.text()
    assert (await client.get("/staff/reports.csv")).status == 403
    assert (await client.get("/staff/requests.csv")).status == 403
    async with tawasul.database.session() as session:
        assert await StaffRepository(session).get("eve") is None


async def test_logged_out_requests_go_to_the_login_and_the_event_stream_is_401(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    _, client = office
    for path in (
        "/staff/",
        "/staff/handoffs",
        "/staff/reports",
        "/staff/admin/staff",
        "/staff/requests/REQ-000001",
        "/staff/requests.csv",
        "/staff/media/0123abcd.png",
    ):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/staff/login?next="), path
    posted = await client.post(
        "/staff/requests/REQ-000001/status", data={"status": "closed"}, allow_redirects=False
    )
    assert posted.status == 303 and posted.headers["Location"] == "/staff/login"
    events = await client.get("/staff/handoffs/events")
    assert events.status == 401 and (await events.json())["error"] == "login required"
    # A made-up or expired cookie is no session either.
    client.session.cookie_jar.update_cookies({COOKIE: "A" * 43})
    assert (await client.get("/staff/", allow_redirects=False)).status == 303


# --- requests and the case file ---


async def test_a_status_change_from_the_form_reaches_the_beneficiary_and_is_audited(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "amal")
        listing = await (await staff.get("/staff/?q=الزهراني")).text()
        assert "REQ-000001" in listing and "محمد أحمد علي الزهراني" in listing
        case = await (await staff.get("/staff/requests/REQ-000001")).text()
        assert "******0008" in case and "1000000008" not in case and "١٠٠٠٠٠٠٠٠٨" not in case
        assert 'value="under_review"' in case and 'value="accepted"' not in case
        response = await staff.post(
            "/staff/requests/REQ-000001/status",
            data={"csrf": csrf_of(case), "status": "under_review", "note": "نراجع طلبك"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == "/staff/requests/REQ-000001?done=status"
        done = await (await staff.get(response.headers["Location"])).text()
        assert "تغيّرت الحالة وأُبلغ المستفيد" in done
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
        change = (await session.scalars(select(StatusChange).order_by(col(StatusChange.id)))).all()
        notice = (
            await session.scalars(
                select(Message).where(
                    col(Message.direction) == "out", col(Message.request_id) == request.id
                )
            )
        ).one()
    assert request.status == "under_review"
    assert change[-1].by == "amal" and change[-1].note == "نراجع طلبك"
    assert notice.kind == "proactive" and "REQ-000001" in notice.text
    assert "REQ-000001" in await visitor.wait_for("نراجع طلبك")
    [entry] = await audit(tawasul.database, "status_change")
    assert (entry.username, entry.target) == ("amal", "REQ-000001")
    assert entry.detail == {"from": "submitted", "to": "under_review"}


async def test_a_move_the_lifecycle_forbids_is_refused_on_the_page(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "amal")
        token = await page_token(staff, "/staff/requests/REQ-000001")
        refused = await staff.post(
            "/staff/requests/REQ-000001/status", data={"csrf": token, "status": "delivered"}
        )
        assert refused.status == 400 and "cannot go from submitted to delivered" in (
            await refused.text()
        )
        question = await staff.post(
            "/staff/requests/REQ-000001/status", data={"csrf": token, "status": "needs_info"}
        )
        assert question.status == 400 and "يحتاج سؤالاً" in await question.text()
        missing = await staff.get("/staff/requests/REQ-999999")
        assert missing.status == 404
    assert await count(tawasul.database, StatusChange) == 1


async def test_notes_and_a_reply_from_the_case_file(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "amal")
        token = await page_token(staff, "/staff/requests/REQ-000001")
        await staff.post(
            "/staff/requests/REQ-000001/note", data={"csrf": token, "note": "اتصلت بالأسرة"}
        )
        written = await staff.post(
            "/staff/requests/REQ-000001/reply",
            data={"csrf": token, "text": "هل ما زال العنوان نفسه؟"},
            allow_redirects=False,
        )
        assert written.headers["Location"].endswith("?done=reply")
        assert "هل ما زال العنوان نفسه؟" in await visitor.wait_for("هل ما زال العنوان نفسه؟")
        # Their answer comes back to staff, not to a bot flow: the handoff is theirs.
        await visitor.post("نعم نفس العنوان")
        inbox = await eventually_text(staff, "/staff/handoffs", "نعم نفس العنوان")
        assert "amal" in inbox
        case = await (await staff.get("/staff/requests/REQ-000001")).text()
        assert "اتصلت بالأسرة" in case and "نعم نفس العنوان" in case
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
        amal = await StaffRepository(session).get("amal")
    assert handoff.reason == "outreach" and handoff.status == "open"
    assert amal is not None and handoff.claimed_by == amal.id
    assert [e.action for e in await audit(tawasul.database, "note")] == ["note"]
    assert [e.target for e in await audit(tawasul.database, "reply")] == [f"handoff:{handoff.id}"]


async def eventually_text(client: TestClient[Any, Any], path: str, words: str) -> str:
    for _ in range(100):
        text = await (await client.get(path)).text()
        if words in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{words!r} never showed on {path}")


async def test_the_requests_list_filters_and_exports(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "mona")
        for query, shown in (
            ("", True),
            ("?status=submitted", True),
            ("?status=accepted", False),
            ("?need=food_basket&channel=web", True),
            ("?channel=whatsapp", False),
            ("?q=1", True),
            ("?q=REQ-000002", False),
            ("?q=فاطمه", False),
            ("?overdue=1", False),  # due in two weeks
            ("?status=bogus", True),  # an unknown value is no filter
        ):
            text = await (await staff.get("/staff/" + query)).text()
            assert ("REQ-000001" in text) is shown, query
        export = await staff.get("/staff/requests.csv?status=submitted")
        assert export.status == 200 and export.content_type == "text/csv"
        assert "attachment" in export.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
        assert [(r["reference"], r["national_id"]) for r in rows] == [("REQ-000001", "******0008")]
        case_export = await staff.get("/staff/requests/REQ-000001/export.json")
        assert json.loads(await case_export.text())["reference"] == "REQ-000001"
    actions = [e.action for e in await audit(tawasul.database, "export_requests")]
    assert actions == ["export_requests"] and len(await audit(tawasul.database, "export")) == 1


# --- the handoff inbox ---


async def read_event(stream: Any, kind: str) -> dict[str, Any]:
    """The data of the next server-sent event of ``kind``."""
    current = None
    async with asyncio.timeout(10):
        while line := (await stream.content.readline()).decode():
            if line.startswith("event: "):
                current = line.removeprefix("event: ").strip()
            elif line.startswith("data: ") and current == kind:
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return data
    raise AssertionError("the event stream ended")


async def test_the_inbox_takes_answers_and_closes_a_handoff_with_messages_live(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = Visitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("السلام عليكم")
    async with browser(client) as staff:
        await login(staff, "amal")
        stream = await staff.get("/staff/handoffs/events")
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        await visitor.send("٤")  # talk to a staff member
        opened = await read_event(stream, "handoff")
        assert opened["change"] == "opened"
        await visitor.post("رقم هويتي 1000000008 وأحتاج مساعدة")
        said = await read_event(stream, "message")
        assert said["handoff"] == opened["id"] and said["direction"] == "in"
        assert said["text"] == "رقم هويتي ******0008 وأحتاج مساعدة"
        stream.close()

        inbox = await (await staff.get("/staff/handoffs")).text()
        assert f'data-handoff="{opened["id"]}"' in inbox and "******0008" in inbox
        assert "1000000008" not in inbox
        token = csrf_of(inbox)
        take = await staff.post(
            f"/staff/handoffs/{opened['id']}/take", data={"csrf": token}, allow_redirects=False
        )
        assert take.headers["Location"].startswith("/staff/handoffs?done=taken")
        await visitor.wait_for("معك الآن أحد موظفي علاقات المستفيدين")
        await staff.post(
            f"/staff/handoffs/{opened['id']}/reply",
            data={"csrf": token, "text": "أهلاً، كيف نخدمك؟"},
        )
        assert "أهلاً، كيف نخدمك؟" in await visitor.wait_for("أهلاً، كيف نخدمك؟")
        closed = await staff.post(
            f"/staff/handoffs/{opened['id']}/close", data={"csrf": token}, allow_redirects=False
        )
        assert closed.headers["Location"] == "/staff/handoffs?done=closed"
        await visitor.wait_for("٥")  # offered to rate the conversation, 1 to 5
        assert "لا توجد محادثات مفتوحة" in await (await staff.get("/staff/handoffs")).text()
    for action in ("take", "reply", "close"):
        assert [e.username for e in await audit(tawasul.database, action)] == ["amal"], action


async def test_a_second_staff_member_cannot_take_a_taken_handoff(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    visitor = Visitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("السلام عليكم")
    await visitor.send("٤")
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    async with browser(client) as amal, browser(client) as mona:
        await login(amal, "amal")
        await login(mona, "mona")
        first = await amal.post(
            f"/staff/handoffs/{handoff.id}/take",
            data={"csrf": await page_token(amal, "/staff/handoffs")},
            allow_redirects=False,
        )
        second = await mona.post(
            f"/staff/handoffs/{handoff.id}/take",
            data={"csrf": await page_token(mona, "/staff/handoffs")},
            allow_redirects=False,
        )
        assert "done=taken" in first.headers["Location"]
        assert "done=already_taken" in second.headers["Location"]


# --- reports ---


async def add_ratings(database: Database) -> None:
    """Ratings over two months and two channels, one comment a spreadsheet would run."""
    async with database.session() as session, session.begin():
        from storage.models import ChannelIdentity

        identity = ChannelIdentity(channel="web", user_id="someone")
        session.add(identity)
        await session.flush()
        assert identity.id is not None
        may = datetime(2026, 5, 10, 9, tzinfo=UTC)
        june = datetime(2026, 6, 2, 9, tzinfo=UTC)
        for score, channel, at, comment in (
            (5, "web", may, "شكراً لكم"),
            (4, "web", may, None),
            (2, "whatsapp", june, '=HYPERLINK("http://evil")'),
            (5, "whatsapp", june, "الموظف رائع، هويتي 2000000004"),
        ):
            session.add(
                Rating(
                    identity_id=identity.id,
                    channel=channel,
                    score=score,
                    comment=comment,
                    created_at=at,
                )
            )


async def test_the_satisfaction_report_draws_svg_charts_and_exports(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    await add_ratings(tawasul.database)
    await login(client, "mona")
    page = await client.get("/staff/reports?period=all")
    html = await page.text()
    assert page.status == 200
    assert html.count("<svg") == 5  # the distribution, then by month, channel, need, context
    assert html.count('<rect class="bar') >= 5 + 4
    assert "مايو" in html and "يونيو" in html and "٤٫٠" in html  # the average, in Arabic digits
    assert "شكراً لكم" in html and "******0004" in html and "2000000004" not in html
    english = await (await client.get("/staff/reports?period=all&lang=en")).text()
    assert 'dir="ltr"' in english and "Ratings: 4 · average: 4.0 of 5" in english
    export = await client.get("/staff/reports.csv?period=all")
    rows = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
    assert [r["score"] for r in rows] == ["5", "4", "2", "5"]
    assert rows[2]["comment"].startswith("'=")  # stays text in a spreadsheet
    assert len(await audit(tawasul.database, "export_ratings")) == 1


def test_charts_are_mirrored_for_right_to_left() -> None:
    group = reports.Group("web", "محادثة الموقع", (0, 0, 1, 1, 2))
    ltr = reports.stacked_chart("x", [group], rtl=False, language="en", bar_title=lambda g: g.label)
    rtl = reports.stacked_chart("x", [group], rtl=True, language="ar", bar_title=lambda g: g.label)
    assert [b.score for b in ltr.bars] == [3, 4, 5]
    assert ltr.bars[0].x < ltr.bars[-1].x and rtl.bars[0].x > rtl.bars[-1].x
    assert sum(b.width for b in rtl.bars) == pytest.approx(sum(b.width for b in ltr.bars))
    assert reports.number(group.average, "ar") == "٤٫٢" and reports.number(4.25, "en") == "4.2"


def test_report_periods_start_on_local_month_starts() -> None:
    now = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # already 1 March in Riyadh... 03:30
    start = reports.period_start("m3", now, "Asia/Riyadh")
    assert start is not None and start.isoformat() == "2026-01-01T00:00:00+03:00"
    assert reports.period_start("all", now, "Asia/Riyadh") is None
    rows = [RatingRow(now, 5, None, "web", "service", None, None)]
    [month] = reports.group_ratings(
        rows, lambda r: reports.month_key(r.at, "Asia/Riyadh"), str, by_key=True
    )
    assert month.key == "2026-03"


# --- staff administration ---


async def test_an_admin_adds_and_removes_staff(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    await login(client, "adel")
    token = await page_token(client, "/staff/admin/staff")
    short = await client.post(
        "/staff/admin/staff",
        data={"csrf": token, "username": "nour", "role": "agent", "password": "short"},
    )
    assert short.status == 400
    added = await client.post(
        "/staff/admin/staff",
        data={"csrf": token, "username": "Nour", "role": "agent", "password": PASSWORD},
        allow_redirects=False,
    )
    assert added.headers["Location"] == "/staff/admin/staff?done=staff_added"
    async with browser(client) as nour:
        assert (await login(nour, "nour")).status == 303
        assert (await nour.get("/staff/", allow_redirects=False)).status == 200
        removed = await client.post(
            "/staff/admin/staff/nour/remove", data={"csrf": token}, allow_redirects=False
        )
        assert removed.status == 303
        # Logged out at once, and cannot log in again.
        assert (await nour.get("/staff/", allow_redirects=False)).status == 303
        assert (await login(nour, "nour")).status == 401
    myself = await client.post("/staff/admin/staff/adel/remove", data={"csrf": token})
    assert myself.status == 400
    page = await (await client.get("/staff/admin/staff")).text()
    assert "nour" not in page.split("سجل الإجراءات")[0]  # not among the members any more
    [add] = await audit(tawasul.database, "staff_add")
    [remove] = await audit(tawasul.database, "staff_remove")
    assert (add.username, add.target, remove.target) == ("adel", "nour", "nour")
    async with tawasul.database.session() as session:
        assert (await session.scalars(select(Staff).where(col(Staff.username) == "nour"))).one()


# --- attachments ---


async def test_media_is_served_only_to_staff_and_only_from_the_media_folder(
    office: tuple[Tawasul, TestClient[Any, Any]], tmp_path: Path
) -> None:
    tawasul, client = office
    media = tmp_path / "media"
    media.mkdir()
    (media / "0123abcd.png").write_bytes(b"\x89PNG fake image")
    (media / "page.html").write_text("<script>alert(1)</script>")
    (media / ".hidden.png").write_bytes(b"hidden")
    (tmp_path / "secret.txt").write_text("outside")
    (media / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert (await client.get("/staff/media/0123abcd.png", allow_redirects=False)).status == 303
    await login(client, "amal")
    image = await client.get("/staff/media/0123abcd.png")
    assert image.status == 200 and await image.read() == b"\x89PNG fake image"
    assert image.headers["Content-Type"] == "image/png"
    assert "sandbox" in image.headers["Content-Security-Policy"]
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    page = await client.get("/staff/media/page.html")
    assert page.headers["Content-Type"] == "application/octet-stream"
    assert page.headers["Content-Disposition"].startswith("attachment")
    for path in (
        "/staff/media/..%2Fsecret.txt",
        "/staff/media/%2E%2E%2Fsecret.txt",
        "/staff/media/..%5Csecret.txt",
        "/staff/media/.hidden.png",
        "/staff/media/link.txt",
        "/staff/media/missing.png",
        "/staff/media/../secret.txt",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert "outside" not in await response.text()
    assert tawasul.media.folder == media


# --- small parts ---


def test_national_ids_are_masked_in_any_digits() -> None:
    assert mask_ids("هويتي ١٠٠٠٠٠٠٠٠٨ و 2000000004") == "هويتي ******0008 و ******0004"
    assert mask_ids("جوالي 0551234567 والرقم 31234567890") == "جوالي 0551234567 والرقم 31234567890"


async def test_a_slow_page_is_told_to_reload_rather_than_shown_a_gap() -> None:
    inbox = LiveInbox(queue_size=2)
    with inbox.subscribe() as queue:
        for number in range(5):
            inbox.publish("message", handoff=1, text=str(number))
        event = queue.get_nowait()
        assert event is not None and event.data == {"change": "resync"}
        inbox.close()
        assert queue.get_nowait() is None
    with inbox.subscribe() as late:
        assert late.get_nowait() is None
