"""Dashboard logins: argon2 passwords, hashed session tokens, CSRF tokens, roles, throttling.

The session cookie holds a random token; ``staff_session`` keeps only its SHA-256,
so a copy of the database opens no session. Each session has its own CSRF token,
put in every form and checked on every POST.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address

from bot.passwords import hash_password, verify_password
from storage.db import Database
from storage.models import Staff, StaffRole
from storage.repositories import (
    AuditRepository,
    LoginCounterRepository,
    SessionRepository,
    StaffRepository,
)

COOKIE = "tawasul_staff"
# Before login: the login form's own CSRF token (double submit), on the login path only.
LOGIN_COOKIE = "tawasul_staff_login"
SESSION_LIFETIME = timedelta(hours=12)
COOKIE_PATH = "/staff"
LOGIN_PATH = "/staff/login"

# Agents and researchers work requests and handoffs; managers also see reports;
# admins also manage staff.
ROLE_RANK: dict[str, int] = {
    StaffRole.AGENT: 1,
    StaffRole.RESEARCHER: 1,
    StaffRole.MANAGER: 2,
    StaffRole.ADMIN: 3,
}


@dataclass(frozen=True, slots=True)
class Limit:
    """How many attempts under one key go through at once, then the wait before each
    next one: ``first_wait``, doubled with every attempt, at most ``longest_wait``."""

    free: int
    first_wait: timedelta
    longest_wait: timedelta

    def wait(self, attempts: int) -> timedelta | None:
        if attempts < self.free:
            return None
        return min(self.first_wait * (1 << min(attempts - self.free, 30)), self.longest_wait)


# An account from one address: the guesser's own key, so it may grow long.
PAIR_LIMIT = Limit(5, timedelta(seconds=1), timedelta(minutes=15))
# An account from anywhere, and one address for any account, as seen by an address that
# has not logged in to that account lately: guesses spread over many addresses, or over
# many accounts, slow down too, but a staff member's usual address never waits for them.
ACCOUNT_LIMIT = Limit(20, timedelta(seconds=1), timedelta(minutes=15))
ADDRESS_LIMIT = Limit(50, timedelta(seconds=1), timedelta(minutes=5))
# A counter nobody touched for a day starts again; an address stays known for 30 days
# after a good password.
FORGET_AFTER = timedelta(days=1)
KNOWN_FOR = timedelta(days=30)


class LoginRefused(PermissionError):
    """Too many attempts lately: the next is admitted after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins")
        self.retry_after = retry_after


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPv4Network | IPv6Network]
) -> str:
    """The address a request came from: the peer, unless it is one of our ``trusted``
    proxies, then the last address in ``X-Forwarded-For`` that is not (each proxy appends
    the one it heard from; anything left of that could be written by the client)."""
    try:
        address = ip_address(peer or "")
    except ValueError:
        return peer or ""
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    while hops and any(address in network for network in trusted):
        try:
            address = ip_address(hops.pop())
        except ValueError:
            break  # a hop we cannot read: the proxy's own address is all we know
    return str(address)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def well_formed(token: str | None) -> bool:
    """A token we could have minted: 43 URL-safe characters (32 random bytes)."""
    return (
        token is not None
        and len(token) == 43
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)
    )


@dataclass(frozen=True, slots=True)
class Viewer:
    """The staff member behind a request, with their session's CSRF token."""

    staff: Staff
    csrf_token: str
    token_hash: str

    @property
    def username(self) -> str:
        return self.staff.username

    @property
    def role(self) -> str:
        return self.staff.role

    def may(self, role: str) -> bool:
        """Whether the viewer's role reaches ``role`` (agent < manager < admin)."""
        return ROLE_RANK.get(self.staff.role, 0) >= ROLE_RANK[role]


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    # Checked for unknown usernames, so that a wrong name takes as long as a wrong password.
    return hash_password(new_token())


class Sessions:
    """Logging in and out, and finding the viewer behind a session token."""

    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._clock = clock
        self._admitted = 0

    async def viewer(self, token: str | None) -> Viewer | None:
        if not well_formed(token):
            return None
        assert token is not None
        digest = token_hash(token)
        async with self._db.session() as session:
            found = await SessionRepository(session).get(digest, self._clock())
        if found is None:
            return None
        row, staff = found
        return Viewer(staff, row.csrf_token, digest)

    async def login(self, username: str, password: str, address: str) -> str | None:
        """A new session's token when the password is right; None (audited) when not.

        The attempt is counted, in the database, before the password is checked: of
        parallel guesses only those the limits admit are checked at all.

        Raises:
            LoginRefused: too many attempts lately for this name, or from this address.
        """
        name = username.strip().lower()[:64]
        keys = _keys(name, address)
        await self._admit(keys)
        async with self._db.session() as session:
            staff = await StaffRepository(session).get(name)
        stored = staff.password_hash if staff is not None else None
        # argon2 takes tens of milliseconds of CPU: off the event loop.
        ok = await asyncio.to_thread(verify_password, stored or _decoy_hash(), password)
        now = self._clock()
        async with self._db.session() as session, session.begin():
            audit = AuditRepository(session)
            if not ok or staff is None or stored is None:
                await audit.add(
                    staff, "login_failed", None, {"address": address}, now=now, username=name
                )
                return None
            counters = LoginCounterRepository(session)
            found = await counters.lock([keys["pair"], keys["account"]], now)
            for counter in found.values():
                counter.attempts, counter.next_at = 0, None
            found[keys["pair"]].succeeded_at = now
            await counters.forget(idle_before=now - FORGET_AFTER, known_before=now - KNOWN_FOR)
            token = new_token()
            sessions = SessionRepository(session)
            await sessions.delete_expired(now)
            await sessions.create(
                staff, token_hash(token), new_token(), now=now, expires_at=now + SESSION_LIFETIME
            )
            await audit.add(staff, "login", None, {"address": address}, now=now)
        return token

    async def _admit(self, keys: dict[str, str]) -> None:
        """Count one attempt under every key that applies, or refuse it (counting nothing)."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            counters = await LoginCounterRepository(session).lock(list(keys.values()), now)
            pair = counters[keys["pair"]]
            known = pair.succeeded_at is not None and pair.succeeded_at > now - KNOWN_FOR
            limits = [(pair, PAIR_LIMIT)]
            if not known:
                limits += [
                    (counters[keys["account"]], ACCOUNT_LIMIT),
                    (counters[keys["address"]], ADDRESS_LIMIT),
                ]
            for counter, _ in limits:
                if counter.last_at < now - FORGET_AFTER:
                    counter.attempts, counter.next_at = 0, None
            waits = [c.next_at for c, _ in limits if c.next_at is not None and c.next_at > now]
            if waits:  # leaving the transaction by raising counts nothing
                raise LoginRefused(math.ceil((max(waits) - now).total_seconds()))
            for counter, limit in limits:
                counter.attempts += 1
                counter.last_at = now
                wait = limit.wait(counter.attempts)
                counter.next_at = now + wait if wait is not None else None
            self._admitted += 1
            if self._admitted % 1000 == 0:  # names guessed at random leave rows behind
                await LoginCounterRepository(session).forget(
                    idle_before=now - FORGET_AFTER, known_before=now - KNOWN_FOR
                )

    async def logout(self, viewer: Viewer) -> None:
        async with self._db.session() as session, session.begin():
            await SessionRepository(session).delete(viewer.token_hash)
            await AuditRepository(session).add(viewer.staff, "logout", now=self._clock())


def _keys(name: str, address: str) -> dict[str, str]:
    return {
        "pair": f"pair:{name}|{address}",
        "account": f"account:{name}",
        "address": f"address:{address}",
    }
