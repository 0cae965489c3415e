"""The case page on the dashboard: what the beneficiary sent, kept or not, and what failed.

A beneficiary files a request over WhatsApp (the Twilio stand-in, the real client) with a
photo the server keeps and one it refuses to fetch; staff read the case page and open the
attachment through it, as a browser does.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, WhatsApp, make_settings, settled
from fakes.twilio_api import FakeTwilio
from test_dashboard import PASSWORD, login

from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from storage.db import Database
from storage.repositories import StaffRepository

PHOTO = b"\xff\xd8\xff\xe0 a photo of the lease" + bytes(range(256))
CASE = "/staff/requests/REQ-000001"


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any], WhatsApp]]:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "agent", password_hash=hash_password(PASSWORD), now=utcnow()
        )
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield tawasul, client, WhatsApp(client, twilio, database)


async def file_with_attachments(phone: WhatsApp, twilio: FakeTwilio) -> None:
    """The intake up to its documents step, a kept photo and one from elsewhere, then done."""
    for line in INTAKE_WHATSAPP[:9]:
        await phone.send(line)
    kept = twilio.add_media("lease.jpg", PHOTO, "image/jpeg")
    await phone.send("", NumMedia="1", MediaUrl0=kept, MediaContentType0="image/jpeg")
    elsewhere = "https://cdn.example.net/contract.pdf"  # never fetched: not Twilio's
    await phone.send("", NumMedia="1", MediaUrl0=elsewhere, MediaContentType0="application/pdf")
    for line in INTAKE_WHATSAPP[9:]:
        await phone.send(line)


@asynccontextmanager
async def staff(client: TestClient[Any, Any]) -> AsyncIterator[TestClient[Any, Any]]:
    """A staff member's browser on the same server, logged in as amal. The server says
    https (``server.public_url``), so its cookies are Secure: the jar sends them anyway."""
    origin = str(client.server.make_url("/")).rstrip("/")
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[origin])
    browser: TestClient[Any, Any] = TestClient(client.server, cookie_jar=jar)
    await browser.start_server()
    try:
        assert (await browser.get(CASE, allow_redirects=False)).status == 303  # staff only
        assert (await login(browser, "amal")).status == 303
        yield browser
    finally:
        await browser.close()


def links(page: str) -> list[tuple[str, str]]:
    """(href, shown text) of the attachment links on a case page."""
    found = re.findall(r'<a class="doc" href="([^"]+)"[^>]*>📎 ([^<]*)</a>', page)
    return [(href, html.unescape(shown)) for href, shown in found]


async def test_the_case_page_links_kept_attachments_and_names_the_others(
    office: tuple[Tawasul, TestClient[Any, Any], WhatsApp], twilio: FakeTwilio
) -> None:
    _tawasul, client, phone = office
    await file_with_attachments(phone, twilio)
    async with staff(client) as browser:
        response = await browser.get(CASE)
        assert response.status == 200
        page = await response.text()
        found = links(page)
        photo = await browser.get(found[0][0]) if found else None
        kept = await photo.read() if photo is not None else b""

    # The kept photo: linked where it was sent and as a document of the request, both
    # times to the same file in the media folder, which serves its bytes.
    assert len(found) == 2 and len({href for href, _ in found}) == 1, found
    href = found[0][0]
    assert re.fullmatch(r"/staff/media/[0-9a-f]{16,}\.jpg", href), href
    assert {shown for _, shown in found} == {"مرفق"}  # WhatsApp sends no file name
    assert photo is not None and photo.status == 200 and kept == PHOTO
    assert photo.headers["Content-Type"] == "image/jpeg"

    # The one from another host: named, not linked, and its address not on the page.
    assert page.count("مرفق لم يُحفظ لدينا: مرفق") == 2
    assert "cdn.example.net" not in page


async def test_the_case_page_shows_a_message_that_did_not_reach_the_beneficiary(
    office: tuple[Tawasul, TestClient[Any, Any], WhatsApp], twilio: FakeTwilio
) -> None:
    tawasul, client, phone = office
    for line in INTAKE_WHATSAPP:
        await phone.send(line)
    async with staff(client) as browser:
        assert "لم تصل" not in await (await browser.get(CASE)).text()
        twilio.fail(status=400, code=21610)  # the beneficiary has blocked the number
        await tawasul.desk.set_status("REQ-000001", "under_review", by="amal")
        await settled(tawasul.database, "whatsapp")  # sent, refused, and stored as failed
        page = await (await browser.get(CASE)).text()
    [badge] = re.findall(r'<p class="badge danger">([^<]*)</p>', page)
    assert html.unescape(badge).startswith("لم تصل: ") and "21610" in badge
