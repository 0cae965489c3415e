"""Handoffs: a beneficiary's conversation passed to staff, taken, answered and closed."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import OpenHandoff
from storage.models import HANDOFF_CLOSED, HANDOFF_OPEN, Handoff, StaffPost
from storage.repositories._shared import _insert


class HandoffRepository:
    """Conversations handed to staff."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_open(self, identity_id: int) -> Handoff | None:
        """The identity's open handoff, if any."""
        query = select(Handoff).where(
            col(Handoff.identity_id) == identity_id, col(Handoff.status) == HANDOFF_OPEN
        )
        return await self._session.scalar(query)

    async def open(
        self,
        identity_id: int,
        handoff: OpenHandoff,
        now: datetime,
        *,
        request_id: int | None = None,
    ) -> Handoff:
        """Open a handoff, or return the one already open (made urgent if this one is).

        ``request_id`` is the request it is about, when known; it fills in an open
        handoff that had none.
        """
        current = await self.get_open(identity_id)
        if current is not None:
            if handoff.urgent and not current.urgent:
                current.urgent = True
            if request_id is not None and current.request_id is None:
                current.request_id = request_id
            return current
        row = Handoff(
            identity_id=identity_id,
            reason=handoff.reason,
            urgent=handoff.urgent,
            status=HANDOFF_OPEN,
            opened_at=now,
            request_id=request_id,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, handoff_id: int) -> Handoff | None:
        """The handoff with this id, open or closed."""
        return await self._session.get(Handoff, handoff_id)

    async def list_open(self) -> builtins.list[Handoff]:
        """Open handoffs, claimed or not: urgent ones first, then the longest waiting."""
        query = (
            select(Handoff)
            .where(col(Handoff.status) == HANDOFF_OPEN)
            .order_by(col(Handoff.urgent).desc(), col(Handoff.opened_at), col(Handoff.id))
        )
        return builtins.list((await self._session.scalars(query)).all())

    async def claim(self, handoff_id: int, staff_id: int, now: datetime) -> bool:
        """Give an open, unclaimed handoff to ``staff_id``; True if this call did.

        One conditional UPDATE: of two staff pressing "take" at once exactly one gets
        True (PostgreSQL re-checks the condition after the first commits; SQLite has
        one writer), and a loaded ``Handoff`` in this session is kept in step.
        """
        statement = (
            update(Handoff)
            .where(
                col(Handoff.id) == handoff_id,
                col(Handoff.status) == HANDOFF_OPEN,
                col(Handoff.claimed_by).is_(None),
            )
            .values(claimed_by=staff_id, claimed_at=now)
            .returning(col(Handoff.id))
            .execution_options(synchronize_session="fetch")
        )
        return (await self._session.execute(statement)).first() is not None

    async def close(
        self, handoff_id: int, now: datetime, *, staff_id: int | None = None
    ) -> Handoff | None:
        """Close the handoff if it is open; returns it closed, or None when it was not
        open (closed already, by someone else or by the beneficiary, or unknown).

        ``staff_id`` is who closed it; None when the beneficiary left or the system did.
        """
        statement = (
            update(Handoff)
            .where(col(Handoff.id) == handoff_id, col(Handoff.status) == HANDOFF_OPEN)
            .values(status=HANDOFF_CLOSED, closed_at=now, closed_by=staff_id)
            .returning(col(Handoff.id))
            .execution_options(synchronize_session="fetch")
        )
        if (await self._session.execute(statement)).first() is None:
            return None
        return await self._session.get(Handoff, handoff_id)

    async def record_post(self, handoff_id: int, platform_message_id: str, now: datetime) -> None:
        """Remember a message posted to the staff group about this handoff, so that a
        reply to it reaches the beneficiary. Recording the same post twice is harmless."""
        insert = _insert(self._session, StaffPost).values(
            platform_message_id=platform_message_id, handoff_id=handoff_id, created_at=now
        )
        await self._session.execute(
            insert.on_conflict_do_nothing(index_elements=["platform_message_id"])
        )

    async def by_post(self, platform_message_id: str) -> Handoff | None:
        """The handoff a staff-group message was about, open or closed."""
        query = (
            select(Handoff)
            .join(StaffPost, col(StaffPost.handoff_id) == col(Handoff.id))
            .where(col(StaffPost.platform_message_id) == platform_message_id)
        )
        return await self._session.scalar(query)

    async def posts(self, handoff_id: int) -> builtins.list[str]:
        """The staff-group messages about this handoff, oldest first (to edit them when
        it is claimed or closed, or to reply in their thread)."""
        post = col(StaffPost.platform_message_id)
        query = (
            select(post)
            .where(col(StaffPost.handoff_id) == handoff_id)
            # Posted at the same instant: "tg:-100:9" before "tg:-100:10".
            .order_by(col(StaffPost.created_at), func.length(post), post)
        )
        return builtins.list((await self._session.scalars(query)).all())

    async def first_post(self, handoff_id: int) -> str | None:
        """The first staff-group message about this handoff (the thread to reply in)."""
        posts = await self.posts(handoff_id)
        return posts[0] if posts else None
