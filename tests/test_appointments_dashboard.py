"""The dashboard's appointments over HTTP: the week view, a field visit scheduled from it
and told to the beneficiary at once, and the calendar feed behind a token of one's own."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_dashboard import PASSWORD, TEAM, file_request, login, page_token, settings

from bot import outbox
from bot.dashboard.calendar_feed import calendar_token, calendar_tokens
from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from storage.db import Database
from storage.repositories import StaffRepository


@pytest.fixture
async def client(database: Database, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """The dashboard's team logged out, a server with the web chat."""
    async with database.session() as session, session.begin():
        for username, role in TEAM:
            await StaffRepository(session).add(
                username, role, password_hash=hash_password(PASSWORD), now=utcnow()
            )
    tawasul = Tawasul(settings(tmp_path), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as test_client:
        yield test_client


def tomorrow() -> str:
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Riyadh")) + timedelta(days=1)
    return local.date().isoformat()


async def test_week_view_visit_scheduling_and_the_calendar_feed(
    client: TestClient[Any, Any], database: Database
) -> None:
    visitor = await file_request(client, database)
    assert (await login(client, "mona")).status == 303
    page = await client.get("/staff/appointments?lang=en")
    text = await page.text()
    assert page.status == 200 and "Previous week" in text
    assert "No appointments." in text

    case = await (await client.get("/staff/requests/REQ-000001")).text()
    assert 'action="/staff/appointments/visits"' in case
    assert 'name="request" value="REQ-000001"' in case
    token = await page_token(client, "/staff/appointments")
    form = {"csrf": token, "request": "REQ-000099", "at": f"{tomorrow()}T10:00"}
    refused = await client.post("/staff/appointments/visits", data=form, allow_redirects=False)
    assert refused.status == 400 and "no request" in await refused.text()
    form["request"] = "REQ-000001"
    done = await client.post("/staff/appointments/visits", data=form, allow_redirects=False)
    assert done.status == 303 and "done=visit" in done.headers["Location"]
    week = await (await client.get(done.headers["Location"] + "&lang=en")).text()
    assert "APT-000001" in week and "Field visit" in week and "REQ-000001" in week
    assert "The visit was proposed" in week
    told = await visitor.wait_for("APT-000001")
    assert "زيارة ميدانية" in told and "mona" in told

    token = await page_token(client, "/staff/appointments")
    settle = {"csrf": token, "reference": "APT-000001", "outcome": "done", "note": "زرناهم"}
    recorded = await client.post("/staff/appointments/settle", data=settle, allow_redirects=False)
    assert recorded.status == 303 and "done=settled" in recorded.headers["Location"]
    again = await client.post("/staff/appointments/settle", data=settle, allow_redirects=False)
    assert again.status == 400 and "done already" in await again.text()
    case = await (await client.get("/staff/requests/REQ-000001")).text()
    assert "field visit APT-000001: done. زرناهم" in case

    feed = re.search(r'href="([^"]*calendar\.ics\?[^"]+)"', week)
    assert feed is not None
    path = "/staff/calendar.ics?" + feed.group(1).split("?", 1)[1].replace("&amp;", "&")
    calendar = await client.get(path)
    body = await calendar.text()
    assert calendar.status == 200 and calendar.content_type == "text/calendar"
    assert "BEGIN:VEVENT" in body and "Field visit APT-000001 (REQ-000001)" in body
    wrong = await client.get(path[:-3] + "000")
    assert wrong.status == 403
    assert (await client.get("/staff/calendar.ics?user=amal&token=x")).status == 403


async def test_a_bad_week_is_refused(client: TestClient[Any, Any]) -> None:
    await login(client, "amal")
    assert (await client.get("/staff/appointments?week=someday")).status == 400
    assert (await client.get("/staff/appointments?week=2030-01-09")).status == 200


def feed_path(page: str, username: str) -> str:
    """The path of ``username``'s calendar link on a page."""
    found = re.search(rf'href="[^"]*(/staff/calendar\.ics\?user={username}&amp;token=\w+)"', page)
    assert found is not None, f"no calendar link for {username}"
    return found.group(1).replace("&amp;", "&")


async def test_a_member_without_a_password_has_a_calendar_too(
    client: TestClient[Any, Any], database: Database
) -> None:
    async with database.session() as session, session.begin():
        member = await StaffRepository(session).add(
            "sara", "researcher", telegram_id=42, now=utcnow()
        )
        accepted = calendar_tokens(member, database.keyring)
    # No password: only the keyed token (a digest of public names would be guessable).
    assert len(accepted) == 1
    await file_request(client, database)
    assert (await login(client, "adel")).status == 303
    token = await page_token(client, "/staff/appointments")
    form = {"csrf": token, "request": "REQ-000001", "at": f"{tomorrow()}T10:00", "by": "sara"}
    done = await client.post("/staff/appointments/visits", data=form, allow_redirects=False)
    assert done.status == 303

    # The admin's page of the members shows each one's link, to hand to them.
    members = await (await client.get("/staff/admin/staff?lang=en")).text()
    path = feed_path(members, "sara")
    calendar = await client.get(path)
    body = await calendar.text()
    assert calendar.status == 200 and "Field visit APT-000001 (REQ-000001)" in body
    assert "Tawasul: sara" in body
    # Another member's token does not open hers.
    mona = feed_path(members, "mona").split("token=")[1]
    assert (await client.get(f"/staff/calendar.ics?user=sara&token={mona}")).status == 403


async def test_a_link_made_before_the_keyed_token_still_works_until_a_new_password(
    client: TestClient[Any, Any], database: Database
) -> None:
    async with database.session() as session:
        mona = await StaffRepository(session).get("mona")
    assert mona is not None and mona.password_hash
    material = f"tawasul-calendar\0mona\0{mona.password_hash}".encode()
    earlier = hashlib.sha256(material).hexdigest()[:40]
    assert earlier != calendar_token(mona, database.keyring)
    assert (await client.get(f"/staff/calendar.ics?user=mona&token={earlier}")).status == 200
    assert (await login(client, "adel")).status == 303
    shown = feed_path(await (await client.get("/staff/admin/staff")).text(), "mona")
    assert (await client.get(shown)).status == 200

    token = await page_token(client, "/staff/admin/staff")
    reset = {"csrf": token, "password": "another long password"}
    changed = await client.post(
        "/staff/admin/staff/mona/password", data=reset, allow_redirects=False
    )
    assert changed.status == 303
    for path in (f"/staff/calendar.ics?user=mona&token={earlier}", shown):
        assert (await client.get(path)).status == 403  # a new password revokes both


@pytest.fixture
def woken_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox looks again only when woken (set before the server starts)."""
    monkeypatch.setattr(outbox, "IDLE_CHECK", 3600.0)


async def test_a_visit_from_the_dashboard_wakes_the_outbox(
    woken_only: None, client: TestClient[Any, Any], database: Database
) -> None:
    visitor = await file_request(client, database)  # each message wakes it: replies go
    assert (await login(client, "mona")).status == 303
    token = await page_token(client, "/staff/appointments")
    form = {"csrf": token, "request": "REQ-000001", "at": f"{tomorrow()}T10:00"}
    done = await client.post("/staff/appointments/visits", data=form, allow_redirects=False)
    assert done.status == 303
    told = await visitor.wait_for("APT-000001")
    assert "زيارة ميدانية" in told
