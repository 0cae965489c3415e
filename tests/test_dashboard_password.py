"""Passwords on the dashboard: a member changes their own, an admin sets a member's; audited."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from test_dashboard import PASSWORD, browser, login, office, page_token  # noqa: F401

from bot.server import Tawasul
from storage.db import Database
from storage.models import AuditEntry

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
