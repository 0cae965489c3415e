"""Passwords on the dashboard: a member changes their own, an admin sets a member's; audited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from test_dashboard import PASSWORD, browser, login, office, page_token, settings  # noqa: F401

from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from storage.db import Database
from storage.models import AuditEntry
from storage.repositories import StaffRepository

NEW = "a brand new password 42"

Office = tuple[Tawasul, TestClient[Any, Any]]


async def audit(database: Database) -> list[tuple[str | None, str, str | None]]:
    async with database.session() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [(row.username, row.action, row.target) for row in rows]


async def test_a_member_changes_their_own_password_and_other_sessions_end(
    office: Office,  # noqa: F811 (the fixture imported above)
    database: Database,
) -> None:
    _, client = office
    assert (await login(client, "amal")).status == 303
    async with browser(client) as phone:
        assert (await login(phone, "amal")).status == 303
        assert (await phone.get("/staff/", allow_redirects=False)).status == 200
        token = await page_token(client, "/staff/password")
        form = {"csrf": token, "current": "not it at all", "new": NEW, "again": NEW}
        wrong = await client.post("/staff/password", data=form)
        assert wrong.status == 400 and "غير صحيحة" in await wrong.text()
        form |= {"current": PASSWORD, "again": NEW + "x"}
        differ = await client.post("/staff/password", data=form)
        assert differ.status == 400 and "مختلفتان" in await differ.text()
        form |= {"again": "short", "new": "short"}
        short = await client.post("/staff/password", data=form)
        assert short.status == 400
        form |= {"new": NEW, "again": NEW}
        done = await client.post("/staff/password", data=form, allow_redirects=False)
        assert done.status == 303, await done.text()
        assert (await client.get("/staff/", allow_redirects=False)).status == 200  # still in
        assert (await phone.get("/staff/", allow_redirects=False)).status in (302, 303)
    async with browser(client) as laptop:
        assert (await login(laptop, "amal")).status != 303  # the old password is gone
        assert (await login(laptop, "amal", NEW)).status == 303
    assert ("amal", "password_change", "amal") in await audit(database)


async def test_an_admin_sets_a_member_s_password_and_an_agent_may_not(
    office: Office,  # noqa: F811 (the fixture imported above)
    database: Database,
) -> None:
    _, client = office
    assert (await login(client, "adel")).status == 303
    token = await page_token(client, "/staff/admin/staff")
    reset = await client.post(
        "/staff/admin/staff/amal/password",
        data={"csrf": token, "password": NEW},
        allow_redirects=False,
    )
    assert reset.status == 303
    assert ("adel", "password_reset", "amal") in await audit(database)
    async with browser(client) as other:
        assert (await login(other, "amal", NEW)).status == 303
        agent_token = await page_token(other, "/staff/")
        refused = await other.post(
            "/staff/admin/staff/mona/password",
            data={"csrf": agent_token, "password": NEW},
            allow_redirects=False,
        )
        assert refused.status == 403


async def test_behind_a_proxy_a_login_from_the_public_url_is_accepted(
    database: Database, tmp_path: Path
) -> None:
    """nginx-shaped: the browser is on https://bot.example.org, the proxy forwards to
    127.0.0.1:PORT without rewriting Host."""
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "agent", password_hash=hash_password(PASSWORD), now=utcnow()
        )
    tawasul = Tawasul(settings(tmp_path, public_url="https://bot.example.org"), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        page = await client.get("/staff/login")
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None and client.host == "127.0.0.1"
        form = {"csrf": token[1], "username": "amal", "password": PASSWORD}
        # The cookie is Secure (https public URL): the proxy's TLS would carry it back.
        cookie = f"tawasul_staff_login={page.cookies['tawasul_staff_login'].value}"
        evil = await client.post(
            "/staff/login",
            data=form,
            headers={"Origin": "https://evil.example", "Cookie": cookie},
            allow_redirects=False,
        )
        assert evil.status == 403
        plain = await client.post(
            "/staff/login",
            data=form,
            headers={"Origin": "http://bot.example.org", "Cookie": cookie},  # not its scheme
            allow_redirects=False,
        )
        assert plain.status == 403
        ours = await client.post(
            "/staff/login",
            data=form,
            headers={"Origin": "https://bot.example.org", "Cookie": cookie},
            allow_redirects=False,
        )
        assert ours.status == 303, await ours.text()
