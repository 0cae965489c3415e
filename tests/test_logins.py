"""Dashboard logins under attack: counted before the hash, growing waits, kept in the database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import count
from sqlalchemy import select
from sqlmodel import col

from bot.config import Settings
from bot.dashboard.auth import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    PAIR_LIMIT,
    LoginRefused,
    Sessions,
    client_address,
)
from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from storage.db import Database
from storage.models import AuditEntry, LoginCounter
from storage.repositories import StaffRepository

PASSWORD = "a long enough password"
WRONG = "not the password at all"
ATTACKER = "203.0.113.66"
OFFICE = "198.51.100.7"


class Clock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def staffed(database: Database) -> Database:
    async with database.session() as session, session.begin():
        for username in ("amal", "mona"):
            await StaffRepository(session).add(
                username, "agent", password_hash=hash_password(PASSWORD), now=utcnow()
            )
    return database


async def failed_logins(database: Database) -> int:
    """Passwords checked and found wrong: each has its audit entry, and only those."""
    return await count(database, AuditEntry, col(AuditEntry.action) == "login_failed")


async def attempt(sessions: Sessions, name: str, password: str, address: str) -> str:
    """What one attempt came to: "in", "wrong" or "refused"."""
    try:
        token = await sessions.login(name, password, address)
    except LoginRefused:
        return "refused"
    return "in" if token else "wrong"


async def test_a_hundred_parallel_wrong_passwords_are_counted_first_and_refused_after_the_limit(
    staffed: Database,
) -> None:
    sessions = Sessions(staffed, Clock())
    outcomes = await asyncio.gather(
        *(attempt(sessions, "amal", WRONG, ATTACKER) for _ in range(100))
    )
    assert outcomes.count("wrong") == PAIR_LIMIT.free
    assert outcomes.count("refused") == 100 - PAIR_LIMIT.free
    assert await failed_logins(staffed) == PAIR_LIMIT.free  # the hash was checked 5 times
    # Now even the right password waits its turn from there.
    assert await attempt(sessions, "amal", PASSWORD, ATTACKER) == "refused"


async def test_the_wait_doubles_with_each_attempt_and_a_good_password_clears_it(
    staffed: Database,
) -> None:
    clock = Clock()
    sessions = Sessions(staffed, clock)
    for _ in range(PAIR_LIMIT.free):
        assert await attempt(sessions, "amal", WRONG, ATTACKER) == "wrong"
    waits = []
    for _ in range(6):
        with pytest.raises(LoginRefused) as refused:
            await sessions.login("amal", WRONG, ATTACKER)
        waits.append(refused.value.retry_after)
        clock.advance(seconds=refused.value.retry_after)
        assert await attempt(sessions, "amal", WRONG, ATTACKER) == "wrong"
    assert waits == [1, 2, 4, 8, 16, 32]
    clock.advance(minutes=20)
    assert await attempt(sessions, "amal", PASSWORD, ATTACKER) == "in"
    # Counted from zero again: the free attempts are back.
    for _ in range(PAIR_LIMIT.free):
        assert await attempt(sessions, "amal", WRONG, ATTACKER) == "wrong"
    assert await attempt(sessions, "amal", WRONG, ATTACKER) == "refused"
    clock.advance(days=1, seconds=1)  # a day of quiet forgets
    assert await attempt(sessions, "amal", WRONG, ATTACKER) == "wrong"


async def test_an_address_flooding_one_account_locks_no_other_account_nor_the_owner_elsewhere(
    staffed: Database,
) -> None:
    clock = Clock()
    sessions = Sessions(staffed, clock)
    # Mona logged in from the office before (the office is then known for her).
    assert await attempt(sessions, "mona", PASSWORD, OFFICE) == "in"
    # From the office (one address for everyone behind its proxy) someone floods amal,
    # and then guesses at many names.
    flood = [attempt(sessions, "amal", WRONG, OFFICE) for _ in range(100)]
    flood += [attempt(sessions, f"user{n}", WRONG, OFFICE) for n in range(ADDRESS_LIMIT.free)]
    await asyncio.gather(*flood)
    assert await attempt(sessions, "stranger", WRONG, OFFICE) == "refused"  # slowed down
    assert await attempt(sessions, "mona", PASSWORD, OFFICE) == "in"  # not Mona
    assert await attempt(sessions, "amal", PASSWORD, "192.0.2.10") == "in"  # nor amal at home


async def test_guesses_at_one_account_from_many_addresses_slow_down_too(
    staffed: Database,
) -> None:
    sessions = Sessions(staffed, Clock())
    guesses = [attempt(sessions, "amal", WRONG, f"192.0.2.{n}") for n in range(1, 60)]
    outcomes = await asyncio.gather(*guesses)
    assert outcomes.count("wrong") == ACCOUNT_LIMIT.free
    assert await attempt(sessions, "amal", PASSWORD, "192.0.2.200") == "refused"


async def test_the_counters_survive_a_restart(staffed: Database) -> None:
    clock = Clock()
    sessions = Sessions(staffed, clock)
    for _ in range(PAIR_LIMIT.free):
        assert await attempt(sessions, "amal", WRONG, ATTACKER) == "wrong"
    url = staffed.url
    await staffed.dispose()
    restarted = Database(url, keyring=staffed.keyring)  # a new process: nothing in memory
    try:
        again = Sessions(restarted, clock)
        assert await attempt(again, "amal", WRONG, ATTACKER) == "refused"
        async with restarted.session() as session:
            rows = (await session.scalars(select(LoginCounter))).all()
        assert {row.key: row.attempts for row in rows}[f"pair:amal|{ATTACKER}"] == 5
    finally:
        await restarted.dispose()


def test_the_client_address_comes_from_trusted_proxies_only() -> None:
    proxies = [ip_network("10.0.0.0/8"), ip_network("::1")]
    assert client_address("203.0.113.5", ["1.2.3.4"], proxies) == "203.0.113.5"  # forged
    assert client_address("10.0.0.2", ["1.2.3.4"], proxies) == "1.2.3.4"
    # The client wrote the left part itself; the proxies appended the rest.
    assert client_address("10.0.0.2", ["6.6.6.6, 1.2.3.4, 10.0.0.9"], proxies) == "1.2.3.4"
    assert client_address("10.0.0.2", ["6.6.6.6", "1.2.3.4"], proxies) == "1.2.3.4"
    assert client_address("::1", ["2001:db8::7"], proxies) == "2001:db8::7"
    assert client_address("10.0.0.2", ["not an address"], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", [], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", ["1.2.3.4"], []) == "10.0.0.2"  # none trusted


@pytest.fixture
async def dashboard(
    staffed: Database, tmp_path: Path
) -> AsyncIterator[tuple[Database, TestClient[Any, Any]]]:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media"), "trusted_proxies": ["127.0.0.1/32"]}
    )
    tawasul = Tawasul(settings, staffed, clock=Clock())  # waits end only when the test says
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield staffed, client


async def post_login(client: TestClient[Any, Any], password: str, forwarded: str) -> Any:
    page = await client.get("/staff/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    form = {"csrf": token.group(1), "username": "amal", "password": password}
    headers = {"X-Forwarded-For": forwarded}
    return await client.post("/staff/login", data=form, headers=headers, allow_redirects=False)


async def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(
    dashboard: tuple[Database, TestClient[Any, Any]],
) -> None:
    database, client = dashboard
    for _ in range(PAIR_LIMIT.free):
        assert (await post_login(client, WRONG, ATTACKER)).status == 401
    refused = await post_login(client, WRONG, ATTACKER)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "تطول مدة الانتظار" in await refused.text()
    # Another member of staff behind the same proxy logs in at once.
    assert (await post_login(client, PASSWORD, OFFICE)).status == 303
    async with database.session() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    assert {entry.detail["address"] for entry in entries} == {ATTACKER, OFFICE}
