"""What the repositories share: dialect-aware inserts, the hot statements, value helpers."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import SQLModel

from flows.types import Language
from storage.models import ChannelIdentity, Conversation, Message


def _insert(
    session: AsyncSession, model: type[SQLModel] | Table
) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that knows ON CONFLICT, in the session's dialect (both spell it alike)."""
    if _dialect(session) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


# The hot path's statements (one message: identity, log, state, replies) are built once
# per dialect and run with parameters: building them anew costs more than running them.
_MESSAGE = Message.__table__  # type: ignore[attr-defined]


_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_IDENTITY = ChannelIdentity.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _HotStatements:
    inbound: Any  # INSERT of an inbound message, nothing on a redelivery; its id
    outbound: Any  # INSERT of an outbound message; its id
    state: Any  # the conversation's upsert
    identity: Any  # INSERT of a newcomer's identity, nothing when another made it; its id


def _hot(session: AsyncSession) -> _HotStatements:
    return _hot_statements(_dialect(session))


@functools.cache
def _hot_statements(dialect: str) -> _HotStatements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inbound = (
        insert(_MESSAGE)
        .on_conflict_do_nothing(index_elements=["channel", "platform_message_id"])
        .returning(_MESSAGE.c.id)
    )
    outbound = insert(_MESSAGE).returning(_MESSAGE.c.id)
    state = insert(_CONVERSATION)
    state = state.on_conflict_do_update(
        index_elements=["identity_id"],
        set_={
            **{name: state.excluded[name] for name in ("flow", "step", "data", "language")},
            "updated_at": state.excluded.updated_at,
            "version": _CONVERSATION.c.version + 1,
        },
    )
    identity = (
        insert(_IDENTITY)
        .on_conflict_do_nothing(index_elements=["channel", "user_id"])
        .returning(_IDENTITY.c.id)
    )
    return _HotStatements(inbound, outbound, state, identity)


def _keep_loaded(session: AsyncSession, model: type[SQLModel], row_id: int, **values: Any) -> None:
    """A statement wrote ``values`` to the row ``row_id``: the session's object of it, if
    it holds one, takes them as if loaded so (nothing written again, nothing expired)."""
    loaded = session.sync_session.identity_map.get(identity_key(model, row_id))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _language(value: str | None) -> Language:
    return "en" if value == "en" else "ar"


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types: flows may hand over tuples and read-only mappings."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
