"""Follow-ups: the planned reminders and checks, their state and who claims them."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import prepared
from storage.models import FOLLOWUP_CANCELLED, FOLLOWUP_PENDING, FollowUp, Rating
from storage.repositories._shared import _dialect, _keep_loaded, _plain

# The columns ``schedule_many`` writes; all but the key are started afresh on a conflict.
_PLANNED = (
    "key",
    "kind",
    "due_at",
    "status",
    "attempts",
    "detail",
    "identity_id",
    "request_id",
    "handoff_id",
    "created_at",
    "done_at",
)


_FOLLOWUP = FollowUp.__table__  # type: ignore[attr-defined]

# The cancels, built once and run with parameters: a finished draft, a rating, a decided
# request each run one, and building the statement cost more than running it. On the
# table, so the session's objects of the rows are brought in line by hand (``_cancelled``).
_CANCEL_KEYS = (
    update(_FOLLOWUP)
    .where(
        _FOLLOWUP.c.key.in_(bindparam("cancel_keys", expanding=True)),
        _FOLLOWUP.c.status == FOLLOWUP_PENDING,
    )
    .values(status=FOLLOWUP_CANCELLED, done_at=bindparam("cancelled_at"))
    .returning(_FOLLOWUP.c.id, _FOLLOWUP.c.key)
)
_CANCEL_KINDS = (
    update(_FOLLOWUP)
    .where(
        _FOLLOWUP.c.identity_id == bindparam("of_identity"),
        _FOLLOWUP.c.kind.in_(bindparam("cancel_kinds", expanding=True)),
        _FOLLOWUP.c.status == FOLLOWUP_PENDING,
    )
    .values(status=FOLLOWUP_CANCELLED, done_at=bindparam("cancelled_at"))
    .returning(_FOLLOWUP.c.id, _FOLLOWUP.c.key)
)


@functools.cache
def _upsert(dialect: str) -> Any:
    """``schedule_many``'s statement, built once per dialect (a turn that files a request
    or moves a draft's reminder runs it). The table, not the model: a plain executemany,
    without the ORM's bulk bookkeeping."""
    table = FollowUp.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    fresh = {name: insert.excluded[name] for name in _PLANNED if name != "key"}
    return insert.on_conflict_do_update(index_elements=["key"], set_=fresh)


class FollowUpRepository:
    """Scheduled follow-ups: the truth behind the scheduler's jobs (see ``bot.followups``).

    One row per matter, found by its ``key`` (``checkin:request:12``): scheduling a key
    again replaces what was due, whatever became of it before, and a finished matter
    cancels its row.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str, *, for_update: bool = False) -> FollowUp | None:
        """The follow-up with this key, whatever its status.

        ``for_update`` keeps it locked until the transaction ends, so that two runs of
        one follow-up take turns and what the run reads next (the conversation) cannot
        change under it: on PostgreSQL the row (``FOR UPDATE``); SQLite has no row
        locks and takes a transaction's write lock only at its first write, so an
        UPDATE that changes nothing takes that lock at once.
        """
        query = select(FollowUp).where(col(FollowUp.key) == key)
        if for_update:
            if _dialect(self._session) == "sqlite":
                await self._session.execute(
                    update(FollowUp)
                    .where(col(FollowUp.key) == key)
                    .values(key=col(FollowUp.key))
                    .execution_options(synchronize_session=False)
                )
            query = query.with_for_update()
        return await self._session.scalar(query)

    async def schedule(
        self,
        key: str,
        kind: str,
        due_at: datetime,
        *,
        now: datetime,
        identity_id: int | None = None,
        request_id: int | None = None,
        handoff_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Make ``key`` pending as ``kind`` at ``due_at``: a new row, or the old one
        started afresh (its attempts, outcome and detail forgotten). One upsert."""
        plan = {
            "key": key,
            "kind": kind,
            "due_at": due_at,
            "identity_id": identity_id,
            "request_id": request_id,
            "handoff_id": handoff_id,
            "detail": detail,
        }
        await self.schedule_many([plan], now=now)

    async def schedule_many(self, plans: Sequence[Mapping[str, Any]], *, now: datetime) -> None:
        """``schedule`` for many keys in one statement.

        Each plan holds ``schedule``'s arguments by name: ``key``, ``kind`` and ``due_at``,
        the others when they apply. No key may come twice.
        """
        if not plans:
            return
        rows = [
            {
                "key": plan["key"],
                "kind": plan["kind"],
                "due_at": plan["due_at"],
                "status": FOLLOWUP_PENDING,
                "attempts": 0,
                "detail": _plain(plan.get("detail") or {}),
                "identity_id": plan.get("identity_id"),
                "request_id": plan.get("request_id"),
                "handoff_id": plan.get("handoff_id"),
                "created_at": now,
                "done_at": None,
            }
            for plan in plans
        ]
        await prepared.many(self._session, _upsert(_dialect(self._session)), rows)

    async def move(self, key: str, due_at: datetime) -> None:
        """Change when a pending follow-up is due (nothing happens to a finished one)."""
        await self._session.execute(
            update(FollowUp)
            .where(col(FollowUp.key) == key, col(FollowUp.status) == FOLLOWUP_PENDING)
            .values(due_at=due_at)
            .execution_options(synchronize_session="fetch")
        )

    async def cancel(self, keys: builtins.list[str], now: datetime) -> builtins.list[str]:
        """Cancel the pending ones among ``keys``; returns the keys that were pending."""
        if not keys:
            return []
        return await self._cancel(_CANCEL_KEYS, {"cancel_keys": keys, "cancelled_at": now}, now)

    async def cancel_for(
        self, identity_id: int, kinds: builtins.list[str], now: datetime
    ) -> builtins.list[str]:
        """Cancel the identity's pending follow-ups of these kinds; returns their keys."""
        where = {"of_identity": identity_id, "cancel_kinds": kinds, "cancelled_at": now}
        return await self._cancel(_CANCEL_KINDS, where, now)

    async def _cancel(
        self, statement: Any, parameters: dict[str, Any], now: datetime
    ) -> builtins.list[str]:
        """Run a cancel as the ORM's update would: the session's changes flushed first, its
        objects of the cancelled rows updated after (as if loaded so)."""
        session = self._session
        rows = await prepared.rows(session, statement, parameters)  # flushes first
        for row in rows:
            _keep_loaded(session, FollowUp, row[0], status=FOLLOWUP_CANCELLED, done_at=now)
        return [row[1] for row in rows]

    async def pending(self, *, due_by: datetime | None = None) -> builtins.list[FollowUp]:
        """Pending follow-ups, soonest first; only those due by ``due_by`` when given."""
        query = (
            select(FollowUp)
            .where(col(FollowUp.status) == FOLLOWUP_PENDING)
            .order_by(col(FollowUp.due_at), col(FollowUp.id))
        )
        if due_by is not None:
            query = query.where(col(FollowUp.due_at) <= due_by)
        return builtins.list((await self._session.scalars(query)).all())

    async def due_times(self, keys: Collection[str] | None = None) -> dict[str, datetime]:
        """When each pending follow-up is due, by key: all of them, or those among ``keys``.

        Two columns, no objects: start-up reads every pending follow-up this way.
        """
        if keys is None:
            query = select(col(FollowUp.key), col(FollowUp.due_at)).where(
                col(FollowUp.status) == FOLLOWUP_PENDING
            )
            return {key: due for key, due in await self._session.execute(query)}
        found: dict[str, datetime] = {}
        wanted = builtins.list(keys)
        # Found by key and the status checked here: asked for both, SQLite would go through
        # every pending row (by the status index) once per batch. The batches are bounded
        # because every key is a bound parameter, and both backends cap those.
        for first in range(0, len(wanted), 5_000):
            batch = select(col(FollowUp.key), col(FollowUp.due_at), col(FollowUp.status)).where(
                col(FollowUp.key).in_(wanted[first : first + 5_000])
            )
            for key, due, status in await self._session.execute(batch):
                if status == FOLLOWUP_PENDING:
                    found[key] = due
        return found

    async def rated(self, identity_id: int, request_id: int, since: datetime) -> bool:
        """Whether a rating answers a prompt about ``request_id``: one about that request,
        or one about the service with no request named, from ``identity_id`` since
        ``since`` (rated from the menu after the delivery)."""
        query = (
            select(col(Rating.id))
            .where(
                or_(
                    col(Rating.request_id) == request_id,
                    (col(Rating.identity_id) == identity_id)
                    & (col(Rating.context) == "service")
                    & col(Rating.request_id).is_(None)
                    & (col(Rating.created_at) >= since),
                )
            )
            .limit(1)
        )
        return await self._session.scalar(query) is not None
