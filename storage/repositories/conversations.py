"""Conversations: channel identities and the conversation state the engine loads and saves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import Address, ConversationState
from storage import prepared
from storage.models import ChannelIdentity, Identity
from storage.models import id_of as _id
from storage.repositories._shared import (
    _CONVERSATION,
    _IDENTITY,
    _hot,
    _keep_loaded,
    _language,
    _plain,
)

# One statement of the hot path: the identity's "last heard from" noted, "unreachable"
# forgotten (whoever writes can be reached again), and its row read back. The UPDATE
# also locks the row until the transaction ends: the engine's per-beneficiary lock,
# taken before anything of theirs is read, so that two processes given two messages of
# one beneficiary at once handle them one after the other (SQLite has one writer).
_TOUCH = (
    update(_IDENTITY)
    .where(
        _IDENTITY.c.channel == bindparam("at_channel"),
        _IDENTITY.c.user_id == bindparam("at_user_id"),
    )
    .values(last_inbound_at=bindparam("at_now"), unreachable=False)
)
_TOUCH_IDENTITY = _TOUCH.returning(*_IDENTITY.c)
_TOUCH_IDENTITY_ID = _TOUCH.returning(_IDENTITY.c.id)

# The same, its row loaded by the ORM as the session's object for the identity (no
# second query, no constructor or merge: an object built and merged by hand cost more
# than the statement). The session's changes are flushed first and the object, if the
# session holds it already (a batch with two of its messages), takes the row as stored.
_TOUCH_IDENTITY_LOADED = (
    select(ChannelIdentity)
    .from_statement(_TOUCH_IDENTITY)
    .execution_options(populate_existing=True)
)

# The inbox's per-beneficiary lock: the identity's row, not an ORM object (a turn reads
# it; the effects that read more than its id take the object, see ``full``).
_LOCK_IDENTITY = (
    select(*_IDENTITY.c).where(_IDENTITY.c.id == bindparam("identity_id")).with_for_update()
)
# The conversation's language kept on its identity, written only when it changed.
_KEEP_LANGUAGE = (
    update(_IDENTITY)
    .where(
        _IDENTITY.c.id == bindparam("identity_id"),
        _IDENTITY.c.language != bindparam("to_language"),
    )
    .values(language=bindparam("to_language"))
)

_LOAD_STATE = (
    select(
        _CONVERSATION.c.flow, _CONVERSATION.c.step, _CONVERSATION.c.data, _CONVERSATION.c.language
    )
    .where(_CONVERSATION.c.identity_id == bindparam("identity_id"))
    .with_for_update()
)


def _new_identity(address: Address, now: datetime) -> dict[str, object]:
    """A newcomer's identity row: Arabic until they choose, reachable, not opted out."""
    return {
        "channel": address.channel,
        "user_id": address.user_id,
        "language": "ar",
        "opted_out": False,
        "unreachable": False,
        "created_at": now,
        "last_inbound_at": now,
    }


class IdentityRepository:
    """Channel identities: who wrote, on which channel."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_or_create(self, address: Address, now: datetime) -> ChannelIdentity:
        """The identity behind ``address``, created on first contact; notes ``now`` as its
        last inbound time. Its row stays locked until the transaction ends (PostgreSQL)."""
        where = {"at_channel": address.channel, "at_user_id": address.user_id, "at_now": now}
        identity: ChannelIdentity | None = (
            await self._session.execute(_TOUCH_IDENTITY_LOADED, where)
        ).scalar()
        if identity is not None:
            return identity
        # Two processes may see the same newcomer at once; the unique index decides
        # and the loser reads the winner's row instead of failing the message.
        await prepared.rows(
            self._session, _hot(self._session).identity, _new_identity(address, now)
        )
        created: ChannelIdentity = (
            await self._session.execute(_TOUCH_IDENTITY_LOADED, where)
        ).scalar_one()
        return created

    async def touch(self, address: Address, now: datetime) -> int:
        """``get_or_create``'s id alone, without loading the identity (storing a message
        for the inbox needs no more)."""
        where = {"at_channel": address.channel, "at_user_id": address.user_id, "at_now": now}
        found = await prepared.rows(self._session, _TOUCH_IDENTITY_ID, where)
        if not found:  # a newcomer (or one another process is creating now)
            found = await prepared.rows(
                self._session, _hot(self._session).identity, _new_identity(address, now)
            )
        if found:
            identity_id: int = found[0][0]
            return identity_id
        return _id(await self.get_or_create(address, now))

    async def lock(self, identity_id: int) -> Identity | None:
        """The identity's row, locked until the transaction ends (PostgreSQL; SQLite has
        one writer): the per-beneficiary lock of a turn taken from the inbox."""
        found = await prepared.rows(self._session, _LOCK_IDENTITY, {"identity_id": identity_id})
        return found[0] if found else None

    async def full(self, identity: Identity) -> ChannelIdentity:
        """``identity`` as the session's object, up to date in this transaction (from the
        session's identity map when it is there already)."""
        loaded = await self.get(_id(identity))
        if loaded is None:  # its row is locked by this transaction: it cannot be gone
            raise LookupError("the identity of this turn is gone")
        return loaded

    async def find(self, address: Address) -> ChannelIdentity | None:
        """The identity behind ``address`` if it ever wrote, without creating one."""
        return await self._session.scalar(
            select(ChannelIdentity).where(
                col(ChannelIdentity.channel) == address.channel,
                col(ChannelIdentity.user_id) == address.user_id,
            )
        )

    async def set_unreachable(self, address: Address) -> None:
        """The platform says this beneficiary cannot be reached here (blocked, unsubscribed)."""
        await self._session.execute(
            update(ChannelIdentity)
            .where(
                col(ChannelIdentity.channel) == address.channel,
                col(ChannelIdentity.user_id) == address.user_id,
            )
            .values(unreachable=True)
            .execution_options(synchronize_session=False)
        )

    async def get(self, identity_id: int) -> ChannelIdentity | None:
        """The identity with this id (from the session's identity map when loaded already)."""
        return await self._session.get(ChannelIdentity, identity_id)

    async def set_opted_out(self, identity_id: int, opted_out: bool) -> None:
        """STOP (True) or START (False): whether proactive messages may reach this identity."""
        await self._session.execute(
            update(ChannelIdentity)
            .where(col(ChannelIdentity.id) == identity_id)
            .values(opted_out=opted_out)
            .execution_options(synchronize_session="fetch")
        )


class ConversationRepository:
    """Conversation state between two messages."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def load(self, identity_id: int) -> ConversationState:
        """The stored state, or a fresh one (main menu) when there is none.

        On PostgreSQL the row stays locked (``FOR UPDATE``) until the unit of work
        ends, so two workers cannot step one conversation at once; SQLite serialises
        writers anyway and ignores the clause.
        """
        found = await prepared.rows(self._session, _LOAD_STATE, {"identity_id": identity_id})
        if not found:
            return ConversationState()
        flow, step, data, language = found[0]
        return ConversationState(
            flow=flow, step=step, data=dict(data or {}), language=_language(language)
        )

    async def save(
        self,
        identity_id: int,
        state: ConversationState,
        now: datetime,
        *,
        language_was: str | None = None,
    ) -> None:
        """Store ``state`` (one upsert), bump its version and keep the identity's language
        (no statement for it when ``language_was``, the identity's as read in this
        transaction, is the state's already).

        Staff actions that change a conversation from outside the engine (closing a
        handoff, asking for more information) use this too, after ``load`` in the same
        transaction so that the row lock keeps the engine from stepping it meanwhile.
        """
        values = {
            "identity_id": identity_id,
            "flow": state.flow,
            "step": state.step,
            "data": _plain(state.data),
            "language": state.language,
            "updated_at": now,
            "version": 1,
        }
        await prepared.rows(self._session, _hot(self._session).state, values)
        if language_was != state.language:
            language = {"identity_id": identity_id, "to_language": state.language}
            await prepared.rows(self._session, _KEEP_LANGUAGE, language)
            _keep_loaded(self._session, ChannelIdentity, identity_id, language=state.language)
