"""Dashboard logins: argon2 passwords, hashed session tokens, CSRF tokens, roles, throttling.

The session cookie holds a random token; ``staff_session`` keeps only its SHA-256,
so a copy of the database opens no session. Each session has its own CSRF token,
put in every form and checked on every POST.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from bot.passwords import hash_password, verify_password
from storage.db import Database
from storage.models import Staff, StaffRole
from storage.repositories import AuditRepository, SessionRepository, StaffRepository

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

# Wrong passwords tolerated per username, and per remote address, in one window.
FAILURES_PER_USER = 10
FAILURES_PER_ADDRESS = 50
FAILURE_WINDOW_SECONDS = 15 * 60


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


class LoginThrottle:
    """Counts recent wrong passwords per username and per address, in memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, username: str, address: str) -> bool:
        return (
            self._count(f"u:{username}") >= FAILURES_PER_USER
            or self._count(f"a:{address}") >= FAILURES_PER_ADDRESS
        )

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        for key in (f"u:{username}", f"a:{address}"):
            self._failures.setdefault(key, deque()).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > 10_000:  # bounded, whatever is thrown at it
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username}", None)

    def _count(self, key: str) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        horizon = self._clock() - FAILURE_WINDOW_SECONDS
        while times and times[0] < horizon:
            times.popleft()
        return len(times)


class Sessions:
    """Logging in and out, and finding the viewer behind a session token."""

    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._db = database
        self._clock = clock
        self.throttle = LoginThrottle()

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

        Raises:
            PermissionError: too many wrong passwords lately for this name or address.
        """
        name = username.strip().lower()[:64]
        if self.throttle.blocked(name, address):
            raise PermissionError("too many failed logins")
        async with self._db.session() as session:
            staff = await StaffRepository(session).get(name)
        stored = staff.password_hash if staff is not None else None
        # argon2 takes tens of milliseconds of CPU: off the event loop.
        ok = await asyncio.to_thread(verify_password, stored or _decoy_hash(), password)
        now = self._clock()
        async with self._db.session() as session, session.begin():
            audit = AuditRepository(session)
            if not ok or staff is None or stored is None:
                self.throttle.failed(name, address)
                await audit.add(
                    staff, "login_failed", None, {"address": address}, now=now, username=name
                )
                return None
            self.throttle.succeeded(name)
            token = new_token()
            sessions = SessionRepository(session)
            await sessions.delete_expired(now)
            await sessions.create(
                staff, token_hash(token), new_token(), now=now, expires_at=now + SESSION_LIFETIME
            )
            await audit.add(staff, "login", None, {"address": address}, now=now)
        return token

    async def logout(self, viewer: Viewer) -> None:
        async with self._db.session() as session, session.begin():
            await SessionRepository(session).delete(viewer.token_hash)
            await AuditRepository(session).add(viewer.staff, "logout", now=self._clock())
