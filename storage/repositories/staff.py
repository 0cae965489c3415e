"""Staff: members, dashboard sessions, login counters and the audit log of what they did."""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AuditEntry, LoginCounter, Staff, StaffRole, StaffSession, id_of
from storage.repositories._shared import _insert, _plain

_USERNAME = re.compile(r"[a-z0-9_.-]{2,40}")


def _username(value: str) -> str:
    """``value`` as a stored username (lowercase); ValueError when it cannot be one."""
    username = value.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"invalid username {value!r}: 2 to 40 of a-z, 0-9, '_', '.' and '-'")
    return username


class StaffRepository:
    """Staff members. They are deactivated, never deleted: the case files name them."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        username: str,
        role: str,
        *,
        telegram_id: int | None = None,
        password_hash: str | None = None,
        now: datetime,
    ) -> Staff:
        """Register a staff member; ``username`` is stored lowercase.

        A removed member's username comes back as the same person (same id, so their
        history stays theirs), with the role, Telegram id and password given here.

        Raises:
            ValueError: the username or role is not valid, or an active member already
                has the username or the Telegram id ("already exists").
        """
        name = _username(username)
        if role not in set(StaffRole):
            raise ValueError(f"unknown role {role!r}: one of {', '.join(StaffRole)}")
        same_name = await self._session.scalar(select(Staff).where(col(Staff.username) == name))
        if same_name is not None and same_name.active:
            raise ValueError(f"staff member {name!r} already exists")
        if telegram_id is not None:
            holder = await self._session.scalar(
                select(Staff).where(col(Staff.telegram_id) == telegram_id)
            )
            if holder is not None and holder is not same_name:
                raise ValueError(
                    f"telegram id {telegram_id} already exists (staff member {holder.username!r})"
                )
        if same_name is not None:
            same_name.role = role
            same_name.telegram_id = telegram_id
            same_name.password_hash = password_hash
            same_name.active = True
            await self._session.flush()
            return same_name
        # Two registrations racing past the checks: the unique indexes decide, and the
        # loser still gets the ValueError rather than an IntegrityError.
        insert = _insert(self._session, Staff).values(
            username=name,
            role=role,
            telegram_id=telegram_id,
            password_hash=password_hash,
            active=True,
            created_at=now,
        )
        staff_id = await self._session.scalar(
            insert.on_conflict_do_nothing().returning(col(Staff.id))
        )
        if staff_id is None:
            raise ValueError(f"staff member {name!r} or telegram id {telegram_id} already exists")
        staff = await self._session.get(Staff, staff_id)
        assert staff is not None
        return staff

    async def list(self, *, include_inactive: bool = False) -> builtins.list[Staff]:
        """Staff members by username; only active ones unless asked."""
        query = select(Staff).order_by(col(Staff.username))
        if not include_inactive:
            query = query.where(col(Staff.active))
        return builtins.list((await self._session.scalars(query)).all())

    async def get(self, username: str) -> Staff | None:
        """The active member with this username (any case), or None."""
        try:
            name = _username(username)
        except ValueError:
            return None
        return await self._session.scalar(
            select(Staff).where(col(Staff.username) == name, col(Staff.active))
        )

    async def by_telegram_id(self, telegram_id: int) -> Staff | None:
        """The active member with this Telegram user id: who wrote in the staff group."""
        return await self._session.scalar(
            select(Staff).where(col(Staff.telegram_id) == telegram_id, col(Staff.active))
        )

    async def by_id(self, staff_id: int) -> Staff | None:
        """The member with this id, active or not (history names removed members too)."""
        return await self._session.get(Staff, staff_id)

    async def remove(self, username: str) -> bool:
        """Deactivate an active member; False when there is none by that name.

        The row stays for the history that refers to it. Its Telegram id is freed
        (another account may be registered with it) and its password cleared.
        """
        staff = await self.get(username)
        if staff is None:
            return False
        staff.active = False
        staff.telegram_id = None
        staff.password_hash = None
        await self._session.flush()
        return True


class AuditRepository:
    """The audit log: every staff action, who did it, on what, when. Only ever added to."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        staff: Staff | None,
        action: str,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        *,
        now: datetime,
        username: str | None = None,
    ) -> AuditEntry:
        """Record ``action`` (``login``, ``status_change``…) by ``staff`` on ``target``.

        ``username`` names the actor when there is no staff row (a failed login with an
        unknown name); otherwise the member's own username is kept beside their id, so
        the entry still reads right if the name is later given to someone else.
        ``detail`` holds plain JSON values, never a password or a message's text.
        """
        entry = AuditEntry(
            staff_id=staff.id if staff is not None else None,
            username=staff.username if staff is not None else username,
            action=action,
            target=target,
            detail=_plain(detail or {}),
            created_at=now,
        )
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def recent(
        self, *, limit: int = 100, action: str | None = None
    ) -> builtins.list[AuditEntry]:
        """The latest entries, newest first; only ``action`` ones when given."""
        query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
        if action is not None:
            query = query.where(col(AuditEntry.action) == action)
        return builtins.list((await self._session.scalars(query)).all())

    async def exists(self, *, action: str, target: str) -> bool:
        """Whether any entry records ``action`` on ``target``."""
        query = select(col(AuditEntry.id)).where(
            col(AuditEntry.action) == action, col(AuditEntry.target) == target
        )
        return await self._session.scalar(query.limit(1)) is not None


class SessionRepository:
    """Dashboard logins. The cookie holds a random token; only its hash is stored here."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        staff: Staff,
        token_hash: str,
        csrf_token: str,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> StaffSession:
        row = StaffSession(
            token_hash=token_hash,
            staff_id=id_of(staff),
            csrf_token=csrf_token,
            created_at=now,
            expires_at=expires_at,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, token_hash: str, now: datetime) -> tuple[StaffSession, Staff] | None:
        """The unexpired session with this hash and its member, if still active."""
        query = (
            select(StaffSession, Staff)
            .join(Staff, col(Staff.id) == col(StaffSession.staff_id))
            .where(
                col(StaffSession.token_hash) == token_hash,
                col(StaffSession.expires_at) > now,
                col(Staff.active),
            )
        )
        row = (await self._session.execute(query)).first()
        return (row[0], row[1]) if row is not None else None

    async def delete(self, token_hash: str) -> None:
        await self._session.execute(
            delete(StaffSession).where(col(StaffSession.token_hash) == token_hash)
        )

    async def delete_for(self, staff_id: int, *, keep: str | None = None) -> None:
        """Log a member out everywhere (they were removed, or their password changed),
        except in the session whose hash is ``keep``."""
        query = delete(StaffSession).where(col(StaffSession.staff_id) == staff_id)
        if keep is not None:
            query = query.where(col(StaffSession.token_hash) != keep)
        await self._session.execute(query)

    async def delete_expired(self, now: datetime) -> None:
        await self._session.execute(delete(StaffSession).where(col(StaffSession.expires_at) <= now))


class LoginCounterRepository:
    """Login attempt counters, each row locked for the transaction that reads it."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, keys: Sequence[str], now: datetime) -> dict[str, LoginCounter]:
        """The counters of ``keys`` (new ones at zero), locked until the transaction ends.

        Rows are created and locked in key order, so two logins never wait on each other
        in a cycle; SQLite's write lock (``BEGIN IMMEDIATE``) serialises them anyway.
        """
        found: dict[str, LoginCounter] = {}
        for key in sorted(set(keys)):
            await self._session.execute(
                _insert(self._session, LoginCounter)
                .values(key=key, attempts=0, last_at=now)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            query = select(LoginCounter).where(col(LoginCounter.key) == key).with_for_update()
            found[key] = (
                await self._session.scalars(query.execution_options(populate_existing=True))
            ).one()
        return found

    async def forget(self, *, idle_before: datetime, known_before: datetime) -> None:
        """Drop counters untouched since ``idle_before`` that remember no good password
        since ``known_before``."""
        await self._session.execute(
            delete(LoginCounter).where(
                col(LoginCounter.last_at) < idle_before,
                or_(
                    col(LoginCounter.succeeded_at).is_(None),
                    col(LoginCounter.succeeded_at) < known_before,
                ),
            )
        )
