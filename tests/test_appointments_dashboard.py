"""The dashboard's appointments over HTTP: the week view, a field visit scheduled from it
and told to the beneficiary at once, and the calendar feed behind a token of one's own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_dashboard import PASSWORD, TEAM, file_request, login, page_token, settings

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
