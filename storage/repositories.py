"""Repositories: the reads and writes the engine and staff tools need, one class per concern.

Each repository wraps the session of one unit of work. The engine runs one message
in one transaction and commits it itself; repositories only flush (to learn ids),
never commit. Every time is passed in (``now``) rather than read from the clock, so
tests and the scheduler decide what "now" is.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col

from flows.lifecycle import SUBMITTED, UNDECIDED
from flows.types import (
    Address,
    Choice,
    ConversationState,
    InboundMessage,
    Language,
    Media,
    OpenHandoff,
    OtherRequest,
    OutboundMessage,
    RecordRating,
    RequestSummary,
    SaveIntake,
    TemplateRef,
)
from storage.models import (
    DIRECTION_IN,
    DIRECTION_OUT,
    FOLLOWUP_CANCELLED,
    FOLLOWUP_PENDING,
    HANDOFF_CLOSED,
    HANDOFF_OPEN,
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_PENDING,
    MESSAGE_READ,
    MESSAGE_RECEIVED,
    MESSAGE_SENDING,
    MESSAGE_SENT,
    AuditEntry,
    Beneficiary,
    ChannelIdentity,
    Conversation,
    Document,
    FollowUp,
    Handoff,
    LoginCounter,
    Message,
    MessageKind,
    Note,
    Rating,
    Staff,
    StaffPost,
    StaffRole,
    StaffSession,
    StatusChange,
    StoredMedia,
    SupportRequest,
    id_of,
)

__all__ = [
    "CASE_EVENT_KINDS",
    "REQUIRED_ANSWERS",
    "AuditRepository",
    "CaseEvent",
    "CaseFileRepository",
    "ConversationRepository",
    "FollowUpRepository",
    "HandoffRepository",
    "IdentityRepository",
    "MessageRepository",
    "OutboxItem",
    "RatingRepository",
    "RatingRow",
    "RequestRepository",
    "SessionRepository",
    "StaffRepository",
    "reference_for",
]


# What a signed request must hold; ``description`` may be short but is stored as given.
REQUIRED_ANSWERS = ("name", "national_id", "mobile", "city", "need")


@dataclass(frozen=True, slots=True)
class SentMark:
    """A message the platform accepted: when, and the platform's id for it."""

    message_id: int
    at: datetime
    platform_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbound message waiting to be sent, with everything the sender needs."""

    id: int
    identity_id: int
    address: Address
    message: OutboundMessage
    kind: str
    attempts: int
    # Filled by ``MessageRepository.due`` for the sender's rules (age, opt-out, the
    # WhatsApp window); the engine's own items leave them as they are.
    created_at: datetime | None = None
    opted_out: bool = False
    last_inbound_at: datetime | None = None


def reference_for(request_id: int) -> str:
    """The reference a beneficiary quotes: ``REQ-`` and the id, at least six digits."""
    return f"REQ-{request_id:06d}"


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
_IDENTITY_BY_ADDRESS = select(ChannelIdentity).where(
    col(ChannelIdentity.channel) == bindparam("channel"),
    col(ChannelIdentity.user_id) == bindparam("user_id"),
)
# What the outbox sender reads of a message.
_OUTBOX_COLUMNS = (
    "id",
    "identity_id",
    "channel",
    "kind",
    "attempts",
    "created_at",
    "text",
    "language",
    "choices",
    "inline",
    "template",
)
_LOAD_STATE = (
    select(
        _CONVERSATION.c.flow, _CONVERSATION.c.step, _CONVERSATION.c.data, _CONVERSATION.c.language
    )
    .where(_CONVERSATION.c.identity_id == bindparam("identity_id"))
    .with_for_update()
)


@dataclass(frozen=True, slots=True)
class _HotStatements:
    inbound: Any  # INSERT of an inbound message, nothing on a redelivery; its id
    outbound: Any  # INSERT of an outbound message; its id
    state: Any  # the conversation's upsert


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
    return _HotStatements(inbound, outbound, state)


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


def _owns(identity: ChannelIdentity, request: SupportRequest) -> bool:
    """Whether ``identity`` may see ``request``: only the identity that filed it may."""
    return request.identity_id == identity.id


class IdentityRepository:
    """Channel identities: who wrote, on which channel."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_or_create(self, address: Address, now: datetime) -> ChannelIdentity:
        """The identity behind ``address``, created on first contact; notes ``now`` as its
        last inbound time."""
        where = {"channel": address.channel, "user_id": address.user_id}
        identity = await self._session.scalar(_IDENTITY_BY_ADDRESS, where)
        if identity is None:
            # Two processes may see the same newcomer at once; the unique index decides
            # and the loser reads the winner's row instead of failing the message.
            insert = _insert(self._session, ChannelIdentity).values(
                channel=address.channel,
                user_id=address.user_id,
                language="ar",
                opted_out=False,
                unreachable=False,
                created_at=now,
                last_inbound_at=now,
            )
            await self._session.execute(
                insert.on_conflict_do_nothing(index_elements=["channel", "user_id"])
            )
            identity = (await self._session.scalars(_IDENTITY_BY_ADDRESS, where)).one()
        identity.last_inbound_at = now
        # Whoever writes to us can be reached again (they unblocked the bot, say).
        if identity.unreachable:
            identity.unreachable = False
        return identity

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
        row = (await self._session.execute(_LOAD_STATE, {"identity_id": identity_id})).one_or_none()
        if row is None:
            return ConversationState()
        flow, step, data, language = row
        return ConversationState(
            flow=flow, step=step, data=dict(data or {}), language=_language(language)
        )

    async def save(self, identity_id: int, state: ConversationState, now: datetime) -> None:
        """Store ``state`` (one upsert), bump its version and keep the identity's language.

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
        await self._session.execute(_hot(self._session).state, values)
        # Usually already in the session from get_or_create: no query, and an UPDATE
        # only when the language really changed.
        identity = await self._session.get(ChannelIdentity, identity_id)
        if identity is not None and identity.language != state.language:
            identity.language = state.language


class MessageRepository:
    """The message log and the outbox."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def received(self, channel: str, platform_message_id: str) -> bool:
        """Whether an inbound message with this platform id is stored already."""
        found = await self._session.scalar(
            select(col(Message.id))
            .where(
                col(Message.channel) == channel,
                col(Message.platform_message_id) == platform_message_id,
                col(Message.direction) == DIRECTION_IN,
            )
            .limit(1)
        )
        return found is not None

    async def log_inbound(self, identity_id: int, message: InboundMessage) -> int | None:
        """Store an inbound message; its id, or None when the platform redelivered one
        stored before (the unique index on channel and platform id decides, in one
        statement, whichever process stored it)."""
        media: list[dict[str, Any]] = [
            {"url": item.url, "content_type": item.content_type, "filename": item.filename}
            for item in message.media
        ]
        if message.location:
            # A shared place is kept with the attachments, so the case file shows it.
            media.append({"location": [message.location.latitude, message.location.longitude]})
        row = self._row(identity_id, message.address.channel, DIRECTION_IN, MESSAGE_RECEIVED)
        row.update(
            platform_message_id=message.platform_message_id,
            text=message.text,
            payload=message.payload,
            media=media,
            created_at=message.received_at,
        )
        insert = _hot(self._session).inbound
        result = await self._session.execute(insert, row)
        message_id: int | None = result.scalar_one_or_none()
        return message_id

    async def enqueue(
        self,
        identity_id: int,
        channel: str,
        message: OutboundMessage,
        now: datetime,
        *,
        kind: str = MessageKind.REPLY,
        request_id: int | None = None,
    ) -> int:
        """Put an outbound message in the outbox (status ``pending``); returns its id.

        ``request_id`` ties a status notice to its request in the case file.
        """
        template = message.template
        row = self._row(identity_id, channel, DIRECTION_OUT, MESSAGE_PENDING)
        row.update(
            kind=kind,
            text=message.text,
            choices=[{"payload": c.payload, "label": c.label} for c in message.choices],
            inline=message.inline,
            template=(
                None
                if template is None
                else {"kind": template.kind, "variables": dict(template.variables)}
            ),
            language=message.language,
            created_at=now,
            request_id=request_id,
        )
        insert = _hot(self._session).outbound
        message_id: int = (await self._session.execute(insert, row)).scalar_one()
        return message_id

    async def enqueue_to(
        self,
        identity_id: int,
        messages: Sequence[OutboundMessage],
        now: datetime,
        *,
        kind: str,
        request_id: int | None = None,
    ) -> builtins.list[int]:
        """``enqueue`` each message on the channel of the identity ``identity_id`` (a
        notice, a staff member's words, a reminder); none when it does not exist."""
        identity = await self._session.get(ChannelIdentity, identity_id)
        if identity is None:
            return []
        return [
            await self.enqueue(
                identity_id, identity.channel, message, now, kind=kind, request_id=request_id
            )
            for message in messages
        ]

    @staticmethod
    def _row(identity_id: int, channel: str, direction: str, status: str) -> dict[str, Any]:
        # Core inserts (no ORM object: this is the hot path) name every column.
        return {
            "identity_id": identity_id,
            "channel": channel,
            "direction": direction,
            "kind": MessageKind.REPLY,
            "platform_message_id": None,
            "text": "",
            "payload": None,
            "media": [],
            "choices": [],
            "inline": False,
            "template": None,
            "language": None,
            "status": status,
            "error": None,
            "attempts": 0,
            "sent_at": None,
            "last_attempt_at": None,
            "request_id": None,
        }

    async def pending(self, *, channel: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Outbound messages still to send, oldest first.

        On PostgreSQL the rows returned stay locked until the session's transaction
        ends, and rows another transaction holds are skipped.
        """
        query = (
            select(Message, col(ChannelIdentity.channel), col(ChannelIdentity.user_id))
            .join(ChannelIdentity, col(ChannelIdentity.id) == col(Message.identity_id))
            .where(col(Message.status) == MESSAGE_PENDING)
            .order_by(col(Message.id))
            .limit(limit)
            # PostgreSQL: two senders holding their transaction while they send never
            # take the same message; SQLite has one writer and ignores the clause.
            .with_for_update(of=Message, skip_locked=True)
        )
        if channel is not None:
            query = query.where(col(Message.channel) == channel)
        rows = (await self._session.execute(query)).all()
        return [
            OutboxItem(
                id=id_of(message),
                identity_id=message.identity_id,
                address=Address(identity_channel, user_id),
                message=_outbound(message),
                kind=message.kind,
                attempts=message.attempts,
            )
            for message, identity_channel, user_id in rows
        ]

    async def mark_sent(
        self, message_id: int, now: datetime, platform_message_id: str | None = None
    ) -> None:
        """The platform accepted the message; keep its id for delivery receipts."""
        await self.mark_all_sent([SentMark(message_id, now, platform_message_id)])

    async def mark_all_sent(self, marks: Sequence[SentMark]) -> None:
        """Several accepted messages at once (one statement, run for each)."""
        table = _MESSAGE
        statement = (
            update(table)
            .where(table.c.id == bindparam("mark_id"))
            .values(
                status=MESSAGE_SENT,
                sent_at=bindparam("mark_at"),
                last_attempt_at=bindparam("mark_at"),
                error=None,
                attempts=table.c.attempts + 1,
                platform_message_id=func.coalesce(
                    bindparam("mark_platform_id", type_=String), table.c.platform_message_id
                ),
            )
        )
        params = [
            {"mark_id": m.message_id, "mark_at": m.at, "mark_platform_id": m.platform_message_id}
            for m in marks
        ]
        await self._session.execute(statement, params)

    async def mark_failed(self, message_id: int, now: datetime, error: str) -> None:
        """The message cannot be sent (blocked, invalid number, too old): stop trying.

        ``error`` is a short reason or platform code, shown to staff.
        """
        await self._update(
            message_id,
            {
                "status": MESSAGE_FAILED,
                "last_attempt_at": now,
                "error": error,
                "attempts": col(Message.attempts) + 1,
            },
        )

    async def mark_delivery(
        self, channel: str, platform_message_id: str, status: str, error: str | None = None
    ) -> bool:
        """Apply a delivery receipt (``delivered``, ``read`` or ``failed``) by platform id.

        Receipts arrive out of order; a status never moves backwards (a late
        "delivered" does not undo "read"). Returns whether a message changed.
        """
        earlier = {
            MESSAGE_DELIVERED: (MESSAGE_PENDING, MESSAGE_SENT),
            MESSAGE_READ: (MESSAGE_PENDING, MESSAGE_SENT, MESSAGE_DELIVERED),
            MESSAGE_FAILED: (MESSAGE_PENDING, MESSAGE_SENT),
        }
        if status not in earlier:
            raise ValueError(f"not a delivery status: {status!r}")
        statement = (
            update(Message)
            .where(
                col(Message.channel) == channel,
                col(Message.platform_message_id) == platform_message_id,
                col(Message.direction) == DIRECTION_OUT,
                col(Message.status).in_(earlier[status]),
            )
            .values(status=status, **({"error": error} if error else {}))
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def recipient(self, channel: str, platform_message_id: str) -> Address | None:
        """Who an outbound message went to, by the platform's id for it."""
        row = (
            await self._session.execute(
                select(col(ChannelIdentity.channel), col(ChannelIdentity.user_id))
                .join(Message, col(Message.identity_id) == col(ChannelIdentity.id))
                .where(
                    col(Message.channel) == channel,
                    col(Message.platform_message_id) == platform_message_id,
                )
            )
        ).first()
        return Address(row[0], row[1]) if row else None

    async def sent_to(
        self, identity_id: int, after_id: int, limit: int = 50
    ) -> list[tuple[int, OutboundMessage]]:
        """Outbound messages the sender has released to one identity after ``after_id``,
        oldest first: what a pull channel (the website chat) hands its visitor."""
        query = (
            select(Message)
            .where(
                col(Message.identity_id) == identity_id,
                col(Message.direction) == DIRECTION_OUT,
                col(Message.id) > after_id,
                col(Message.status).in_((MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_READ)),
            )
            .order_by(col(Message.id))
            .limit(limit)
        )
        return [(id_of(row), _outbound(row)) for row in (await self._session.scalars(query)).all()]

    async def history(self, identity_id: int, limit: int = 50) -> list[Message]:
        """The last ``limit`` messages in and out of one identity, oldest first."""
        query = (
            select(Message)
            .where(col(Message.identity_id) == identity_id)
            .order_by(col(Message.id).desc())
            .limit(limit)
        )
        rows = list((await self._session.scalars(query)).all())
        rows.reverse()
        return rows

    # --- the outbox sender: claims, so that two senders never take one message ---

    async def due(
        self,
        channels: Collection[str],
        *,
        first: Sequence[str] = (),
        only: Collection[str] | None = None,
        ids: Collection[int] | None = None,
        per_beneficiary: int = 4,
        skip: Collection[int] = (),
        limit: int = 100,
    ) -> list[OutboxItem]:
        """Outbound messages waiting on ``channels``, picked per beneficiary: at most
        ``per_beneficiary`` of each one's oldest, and none of a beneficiary whose oldest
        unsettled message is being sent. Heads first: every beneficiary's next message
        before anyone's second; within that, the kinds in ``first`` in that order, then
        oldest first. So one busy chat fills at most ``per_beneficiary`` of ``limit``.

        Args:
            first: kinds that go before the rest (replies before bulk messages).
            only: only these kinds (the others wait, as at night).
            ids: only these messages.
            skip: identities to leave out (the sender holds them back for now).

        The address is the message's own channel with the identity's user id, so a
        WhatsApp message moved to SMS goes to the same number.
        """
        table = _MESSAGE
        # Each beneficiary's unsettled messages, numbered in the order they must go, with
        # the status of the first (``sending``: its sender may still be on the platform).
        window = {"partition_by": table.c.identity_id, "order_by": table.c.id}
        queue = select(
            table.c.id.label("queued_id"),
            func.row_number().over(**window).label("place"),
            func.first_value(table.c.status).over(**window).label("head_status"),
        ).where(
            table.c.direction == DIRECTION_OUT,
            table.c.status.in_((MESSAGE_PENDING, MESSAGE_SENDING)),
        )
        if only is not None:
            queue = queue.where(table.c.kind.in_(only))
        if skip:
            queue = queue.where(table.c.identity_id.not_in(skip))
        queued = queue.subquery("queued")
        order: builtins.list[Any] = [queued.c.place, table.c.id]
        if first:
            whens = ((table.c.kind == kind, n) for n, kind in enumerate(first))
            order.insert(0, case(*whens, else_=len(first)))
        # Columns, not ORM objects: the sender only reads them, and loading objects
        # cost more than the query itself on every pass.
        query = (
            select(
                *(table.c[name] for name in _OUTBOX_COLUMNS),
                col(ChannelIdentity.user_id),
                col(ChannelIdentity.opted_out),
                col(ChannelIdentity.last_inbound_at),
            )
            .join(queued, queued.c.queued_id == table.c.id)
            .join(ChannelIdentity, col(ChannelIdentity.id) == table.c.identity_id)
            .where(
                table.c.status == MESSAGE_PENDING,
                table.c.channel.in_(channels),
                queued.c.place <= per_beneficiary,
                queued.c.head_status == MESSAGE_PENDING,
            )
            .order_by(*order)
            .limit(limit)
        )
        if ids is not None:
            query = query.where(table.c.id.in_(ids))
        rows = (await self._session.execute(query)).all()
        return [
            OutboxItem(
                id=row.id,
                identity_id=row.identity_id,
                address=Address(row.channel, row.user_id),
                message=_outbound(row),
                kind=row.kind,
                attempts=row.attempts,
                created_at=row.created_at,
                opted_out=row.opted_out,
                last_inbound_at=row.last_inbound_at,
            )
            for row in rows
        ]

    async def unsettled(
        self, identity_ids: Collection[int], *, only: Collection[str] | None = None
    ) -> dict[int, builtins.list[int]]:
        """Per identity, its outbound messages still pending or being sent, oldest first:
        the order in which they must reach the beneficiary."""
        if not identity_ids:
            return {}
        query = (
            select(col(Message.identity_id), col(Message.id))
            .where(
                col(Message.identity_id).in_(identity_ids),
                col(Message.direction) == DIRECTION_OUT,
                col(Message.status).in_((MESSAGE_PENDING, MESSAGE_SENDING)),
            )
            .order_by(col(Message.id))
        )
        if only is not None:
            query = query.where(col(Message.kind).in_(only))
        queues: dict[int, builtins.list[int]] = {}
        for identity_id, message_id in (await self._session.execute(query)).all():
            if message_id is not None:  # always: a stored row has its id
                queues.setdefault(identity_id, []).append(message_id)
        return queues

    async def claim_all(self, claims: Mapping[int, str], now: datetime) -> set[int]:
        """Take pending messages to send them now, each on its channel (its own, or SMS in
        place of WhatsApp): status ``sending``. Returns those taken; another sender has
        the others."""
        by_channel: dict[str, builtins.list[int]] = {}
        for message_id, channel in claims.items():
            by_channel.setdefault(channel, []).append(message_id)
        claimed: set[int] = set()
        for channel, ids in by_channel.items():
            result = await self._session.execute(
                update(Message)
                .where(col(Message.id).in_(ids), col(Message.status) == MESSAGE_PENDING)
                .values(status=MESSAGE_SENDING, last_attempt_at=now, channel=channel)
                .returning(col(Message.id))
                .execution_options(synchronize_session=False)
            )
            claimed.update(message_id for message_id in result.scalars() if message_id)
        return claimed

    async def mark_over_limit(self, message_id: int, note: str) -> None:
        """An inbound message kept but not answered (its sender was over the limit)."""
        await self._update(message_id, {"error": note})

    async def release(self, message_id: int, now: datetime, error: str) -> None:
        """A claimed message was refused for now: pending again, the attempt counted."""
        await self._update(
            message_id,
            {
                "status": MESSAGE_PENDING,
                "error": error,
                "last_attempt_at": now,
                "attempts": col(Message.attempts) + 1,
            },
        )

    async def recover_interrupted(
        self,
        claimed_before: datetime,
        *,
        keep: Collection[int] = (),
        channels: Collection[str] | None = None,
    ) -> int:
        """Messages claimed before ``claimed_before`` and never settled (their sender
        stopped mid-send) are pending again, the attempt counted; how many.

        Whether the platform got them is unknown: they will be sent again. ``keep``
        are this sender's own, still on their way; ``channels`` limits it to those.
        """
        statement = (
            update(Message)
            .where(
                col(Message.status) == MESSAGE_SENDING,
                col(Message.last_attempt_at) < claimed_before,
            )
            .values(
                status=MESSAGE_PENDING,
                error="interrupted while sending",
                attempts=col(Message.attempts) + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if keep:
            statement = statement.where(col(Message.id).not_in(keep))
        if channels is not None:
            statement = statement.where(col(Message.channel).in_(channels))
        result = await self._session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def still_sending(self, message_id: int, now: datetime) -> None:
        """A claimed message is still on its way (a long split one, part after part):
        its claim is renewed, so no other sender takes it for an interrupted one."""
        await self._session.execute(
            update(Message)
            .where(col(Message.id) == message_id, col(Message.status) == MESSAGE_SENDING)
            .values(last_attempt_at=now)
            .execution_options(synchronize_session=False)
        )

    async def reopen_failed(
        self, channel: str, platform_message_id: str, *, below_attempts: int
    ) -> int | None:
        """A message the platform accepted and then reported failed: pending again, to be
        sent another way, unless it was tried ``below_attempts`` times already; its id
        (None when it stays failed or no failed message has that id)."""
        message_id = await self._session.scalar(
            select(col(Message.id)).where(
                col(Message.channel) == channel,
                col(Message.platform_message_id) == platform_message_id,
                col(Message.direction) == DIRECTION_OUT,
                col(Message.status) == MESSAGE_FAILED,
                col(Message.attempts) < below_attempts,
            )
        )
        if message_id is not None:
            await self._update(message_id, {"status": MESSAGE_PENDING})
        return message_id

    async def _update(self, message_id: int, values: Mapping[str, Any]) -> None:
        statement = (
            update(Message)
            .where(col(Message.id) == message_id)
            .values(**values)
            # The outbox sender works on ids, not loaded rows: nothing to synchronise.
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(statement)


def _outbound(message: Any) -> OutboundMessage:
    """The outbound message stored in ``message``: a ``Message``, or a row of its columns."""
    template = message.template
    return OutboundMessage(
        text=message.text,
        language=_language(message.language),
        choices=tuple(Choice(str(c["payload"]), str(c["label"])) for c in message.choices),
        inline=message.inline,
        template=(
            None
            if template is None
            else TemplateRef(str(template["kind"]), dict(template.get("variables") or {}))
        ),
    )


class RequestRepository:
    """Support requests, their applicants, documents and status history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        identity: ChannelIdentity,
        intake: SaveIntake,
        *,
        channel: str,
        signed_message_id: str | None,
        now: datetime,
    ) -> SupportRequest:
        """Store a signed request for its applicant, with its documents and first status.

        The applicant is found by national ID, or created. When the ID is already
        known from requests filed by another identity the request is marked
        ``linked_existing`` for staff, and the applicant's stored details are left
        as they are: the new answers stay in the request, for staff to compare.
        ``identity`` must belong to this session; it now speaks for the applicant.

        Raises:
            ValueError: an answer in ``REQUIRED_ANSWERS`` is missing or empty.
        """
        answers = {key: str(value).strip() for key, value in intake.answers.items()}
        missing = [key for key in REQUIRED_ANSWERS if not answers.get(key)]
        if missing:
            # A request nobody can be reached about or identified by must never be stored.
            raise ValueError(f"intake answers missing: {', '.join(missing)}")
        beneficiary = await self._applicant(answers, now)
        beneficiary_id = id_of(beneficiary)
        identity_id = id_of(identity)
        linked_existing = await self._filed_by_other(beneficiary_id, identity_id)
        identity.beneficiary_id = beneficiary_id

        request = SupportRequest(
            beneficiary_id=beneficiary_id,
            identity_id=identity_id,
            channel=channel,
            answers=answers,
            need=answers["need"],
            status=SUBMITTED,
            decision_due_at=intake.decision_due_at,
            signed_at=intake.signed_at,
            signed_channel=channel,
            signed_message_id=signed_message_id,
            linked_existing=linked_existing,
            created_at=now,
            updated_at=now,
        )
        self._session.add(request)
        await self._session.flush()
        request_id = id_of(request)
        request.reference = reference_for(request_id)
        self._session.add_all(
            [
                Document(
                    request_id=request_id,
                    url=document.url,
                    content_type=document.content_type,
                    filename=document.filename,
                    created_at=now,
                )
                for document in intake.documents
            ]
        )
        self._session.add(
            StatusChange(
                request_id=request_id, from_status=None, to_status=SUBMITTED, created_at=now
            )
        )
        await self._session.flush()
        return request

    async def summaries_for(self, identity: ChannelIdentity) -> list[RequestSummary]:
        """The requests this sender filed, newest first. Never anyone else's.

        Typing a national ID proves nothing, so requests of the same applicant filed
        from another phone or channel are linked for staff but not shown here; the
        second factor for those is the channels' business.
        """
        query = (
            select(
                col(SupportRequest.reference),
                col(SupportRequest.status),
                col(SupportRequest.need),
                col(SupportRequest.created_at),
                col(SupportRequest.decision_due_at),
            )
            .where(
                col(SupportRequest.identity_id) == id_of(identity),
                col(SupportRequest.reference).is_not(None),
            )
            .order_by(col(SupportRequest.id).desc())
        )
        rows = (await self._session.execute(query)).all()
        return [
            RequestSummary(
                reference=reference or "",
                status=status,
                need=need,
                created_at=created_at,
                decision_due_at=decision_due_at,
            )
            for reference, status, need, created_at, decision_due_at in rows
        ]

    async def filed_elsewhere(self, identity: ChannelIdentity, number: int) -> OtherRequest | None:
        """Request number ``number`` when another identity filed it, with the last four
        digits of its applicant's national ID (the second factor); else None."""
        request = await self.get_by_reference(reference_for(number))
        if request is None or request.identity_id == identity.id or request.reference is None:
            return None
        summary = RequestSummary(
            reference=request.reference,
            status=request.status,
            need=request.need,
            created_at=request.created_at,
            decision_due_at=request.decision_due_at,
        )
        return OtherRequest(summary, str(request.answers.get("national_id", ""))[-4:])

    async def get_by_reference(self, reference: str) -> SupportRequest | None:
        """The request with this reference (``req-000012`` works too), or None."""
        query = select(SupportRequest).where(
            col(SupportRequest.reference) == reference.strip().upper()
        )
        return await self._session.scalar(query)

    async def change_status(
        self,
        request: SupportRequest,
        to_status: str,
        *,
        now: datetime,
        by: str | None = None,
        note: str | None = None,
    ) -> StatusChange:
        """Move ``request`` to ``to_status`` and record the change.

        Whether the move is allowed is the caller's rule to check, not storage's.
        """
        change = StatusChange(
            request_id=id_of(request),
            from_status=request.status,
            to_status=to_status,
            by=by,
            note=note,
            created_at=now,
        )
        request.status = to_status
        request.updated_at = now
        self._session.add(change)
        await self._session.flush()
        return change

    async def add_note(
        self, request: SupportRequest, author: str, text: str, now: datetime
    ) -> Note:
        """A staff note in the request's case file."""
        note = Note(request_id=id_of(request), author=author, text=text, created_at=now)
        self._session.add(note)
        await self._session.flush()
        return note

    async def add_document(
        self,
        request: SupportRequest,
        media: Media,
        *,
        now: datetime,
        message_id: int | None = None,
    ) -> Document:
        """Attach a photo or PDF sent after the request was filed (an answer to staff).

        ``message_id`` is our id of the inbound message that carried it, when known.
        """
        document = Document(
            request_id=id_of(request),
            message_id=message_id,
            url=media.url,
            content_type=media.content_type,
            filename=media.filename,
            created_at=now,
        )
        self._session.add(document)
        await self._session.flush()
        return document

    async def for_identity(self, identity_id: int) -> builtins.list[SupportRequest]:
        """The requests this identity filed, newest first (for staff; the beneficiary's
        own view is ``summaries_for``)."""
        query = (
            select(SupportRequest)
            .where(col(SupportRequest.identity_id) == identity_id)
            .order_by(col(SupportRequest.id).desc())
        )
        return builtins.list((await self._session.scalars(query)).all())

    async def applicant_identities(self, request: SupportRequest) -> builtins.list[ChannelIdentity]:
        """Everyone who speaks for the request's applicant: the identity that filed it
        first, then the others linked to the same beneficiary, those on the request's
        own channel before the rest, each group oldest first.

        The others are linked only because someone typed the same national ID there,
        which proves nothing (see ``summaries_for``); what they may be told is the
        caller's decision. ``opted_out`` and ``unreachable`` are on the rows.
        """
        filed = select(col(SupportRequest.identity_id)).where(
            col(SupportRequest.beneficiary_id) == request.beneficiary_id
        )
        query = select(ChannelIdentity).where(
            or_(
                col(ChannelIdentity.id) == request.identity_id,
                col(ChannelIdentity.beneficiary_id) == request.beneficiary_id,
                col(ChannelIdentity.id).in_(filed),
            )
        )
        identities = (await self._session.scalars(query)).all()
        return sorted(
            identities,
            key=lambda identity: (
                identity.id != request.identity_id,
                identity.channel != request.channel,
                id_of(identity),
            ),
        )

    async def documents(self, request_id: int) -> builtins.list[Document]:
        """The request's documents, in the order they were sent."""
        query = (
            select(Document)
            .where(col(Document.request_id) == request_id)
            .order_by(col(Document.id))
        )
        return builtins.list((await self._session.scalars(query)).all())

    async def notes(self, request_id: int) -> builtins.list[Note]:
        """Staff notes on the request, oldest first."""
        query = select(Note).where(col(Note.request_id) == request_id).order_by(col(Note.id))
        return builtins.list((await self._session.scalars(query)).all())

    async def list(
        self,
        *,
        status: str | None = None,
        overdue_at: datetime | None = None,
        need: str | None = None,
        channel: str | None = None,
        search: str | None = None,
        fold: Callable[[str], str] = str.casefold,
    ) -> builtins.list[SupportRequest]:
        """Requests for staff, oldest first. Every filter given must match.

        Args:
            status: only requests in this status.
            overdue_at: only requests still undecided whose decision date is before
                this time.
            need: only requests for this need (its persisted name).
            channel: only requests filed on this channel.
            search: a reference (``req-000012`` and ``12`` work too), or part of the applicant's
                name as they gave it, compared as ``fold`` makes both.
            fold: how text is made comparable; the caller passes the conversation's
                folding (Arabic letter variants, diacritics, digits of any script and
                case ignored, so "فاطمه" finds "فاطمة"), which storage does not know.
        """
        query = select(SupportRequest).order_by(col(SupportRequest.id))
        if status is not None:
            query = query.where(col(SupportRequest.status) == status)
        if overdue_at is not None:
            query = query.where(
                col(SupportRequest.status).in_(UNDECIDED),
                col(SupportRequest.decision_due_at) < overdue_at,
            )
        if need is not None:
            query = query.where(col(SupportRequest.need) == need)
        if channel is not None:
            query = query.where(col(SupportRequest.channel) == channel)
        requests = (await self._session.scalars(query)).all()
        wanted = (search or "").strip()
        if not wanted:
            return builtins.list(requests)
        # JSON is queried differently on each backend and neither folds Arabic letter
        # variants; a charity's requests number in the thousands, so Python does it.
        reference = fold(wanted).upper()
        if reference.isdecimal():  # not isdigit(): "²" is a digit int() refuses
            reference = reference_for(int(reference))  # "12" is how people say REQ-000012
        name = fold(wanted)
        return [
            request
            for request in requests
            if request.reference == reference
            or (name and name in fold(str(request.answers.get("name", ""))))
        ]

    async def _applicant(self, answers: Mapping[str, str], now: datetime) -> Beneficiary:
        national_id = answers.get("national_id") or None
        if national_id is not None:
            query = select(Beneficiary).where(col(Beneficiary.national_id) == national_id)
            found = await self._session.scalar(query)
            if found is not None:
                return found
        beneficiary = Beneficiary(
            national_id=national_id,
            full_name=answers.get("name", ""),
            mobile=answers.get("mobile", ""),
            city=answers.get("city", ""),
            created_at=now,
        )
        self._session.add(beneficiary)
        await self._session.flush()
        return beneficiary

    async def _filed_by_other(self, beneficiary_id: int, identity_id: int) -> bool:
        query = (
            select(col(SupportRequest.id))
            .where(
                col(SupportRequest.beneficiary_id) == beneficiary_id,
                col(SupportRequest.identity_id) != identity_id,
            )
            .limit(1)
        )
        return await self._session.scalar(query) is not None


class RatingRepository:
    """Satisfaction ratings."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, identity: ChannelIdentity, rating: RecordRating, *, channel: str, now: datetime
    ) -> Rating:
        """Store a rating; a score outside 1-5 is refused by the database (IntegrityError).

        ``rating.request_reference`` is linked only when the sender may see that
        request: a reference typed by someone else is ignored, not trusted.
        """
        request: SupportRequest | None = None
        if rating.request_reference:
            found = await RequestRepository(self._session).get_by_reference(
                rating.request_reference
            )
            if found is not None and _owns(identity, found):
                request = found
        row = Rating(
            identity_id=id_of(identity),
            beneficiary_id=request.beneficiary_id if request else identity.beneficiary_id,
            request_id=id_of(request) if request else None,
            channel=channel,
            context=rating.context,
            score=rating.score,
            comment=rating.comment,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def report(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> builtins.list[RatingRow]:
        """Every rating given in ``[since, until)``, oldest first, with the need and
        reference of the request it is about (None when it is about no request).

        Grouping by month happens in the organisation's time zone, which neither
        backend's SQL spells alike; a charity's ratings number in the thousands, so
        the caller groups them (see ``bot.dashboard.reports``).
        """
        query = (
            select(
                col(Rating.created_at),
                col(Rating.score),
                col(Rating.comment),
                col(Rating.channel),
                col(Rating.context),
                col(SupportRequest.need),
                col(SupportRequest.reference),
            )
            .outerjoin(SupportRequest, col(SupportRequest.id) == col(Rating.request_id))
            .order_by(col(Rating.created_at), col(Rating.id))
        )
        if since is not None:
            query = query.where(col(Rating.created_at) >= since)
        if until is not None:
            query = query.where(col(Rating.created_at) < until)
        rows = (await self._session.execute(query)).all()
        return [
            RatingRow(at, score, comment, channel, context, need, reference)
            for at, score, comment, channel, context, need, reference in rows
        ]


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


# Events at the same instant come in the order things happen within one message: what
# the beneficiary wrote, what it caused, and last the bot's answer.
CASE_EVENT_KINDS = (
    "message_in",
    "declaration",
    "document",
    "status_change",
    "note",
    "rating",
    "handoff_opened",
    "handoff_claimed",
    "handoff_closed",
    "message_out",
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(CASE_EVENT_KINDS)}


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One entry of a request's case file.

    ``actor`` is the staff member's username (or a note's author) where a person
    acted, else None. ``detail`` holds plain JSON values only (no datetimes), so an
    export can write it as it is.
    """

    at: datetime
    kind: str
    actor: str | None
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


class CaseFileRepository:
    """A request's case file: everything that happened around it, in one timeline."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def events(self, request: SupportRequest) -> builtins.list[CaseEvent]:
        """The request's timeline, oldest first; ties by kind (``CASE_EVENT_KINDS``)
        then by row id.

        The filer's whole conversation is its context: every message in and out of
        the identity that filed it since its first one, with its ratings and
        handoffs; plus anything else tied to the request (a notice sent to another
        of the applicant's identities, a handoff about it). Six queries, whatever
        the length.

        Texts: a message's text; ``"submitted -> under_review"``; a note's text;
        ``"4/5"`` or ``"4/5: comment"``; a handoff's reason; a document's file name
        (else its URL); ``"signed"`` for the declaration.
        """
        request_id = id_of(request)
        identity_id = request.identity_id
        ranked: builtins.list[tuple[datetime, int, int, CaseEvent]] = []

        def add(at: datetime, kind: str, row_id: int, event: CaseEvent) -> None:
            ranked.append((at, _KIND_RANK[kind], row_id, event))

        messages = await self._session.scalars(
            select(Message)
            .where(
                or_(
                    col(Message.identity_id) == identity_id,
                    col(Message.request_id) == request_id,
                )
            )
            .order_by(col(Message.id))
        )
        for message in messages:
            kind = "message_in" if message.direction == DIRECTION_IN else "message_out"
            message_id = id_of(message)
            add(
                message.created_at,
                kind,
                message_id,
                CaseEvent(
                    message.created_at,
                    kind,
                    None,
                    message.text,
                    {
                        "id": message_id,
                        "channel": message.channel,
                        "kind": message.kind,
                        "status": message.status,
                        "media": message.media,
                        "platform_message_id": message.platform_message_id,
                        "payload": message.payload,
                        "error": message.error,
                        "request_id": message.request_id,
                    },
                ),
            )

        changes = await self._session.scalars(
            select(StatusChange).where(col(StatusChange.request_id) == request_id)
        )
        for change in changes:
            text = f"{change.from_status} -> {change.to_status}"
            if change.from_status is None:
                text = change.to_status
            add(
                change.created_at,
                "status_change",
                id_of(change),
                CaseEvent(
                    change.created_at,
                    "status_change",
                    change.by,
                    text,
                    {"from": change.from_status, "to": change.to_status, "note": change.note},
                ),
            )

        notes = await self._session.scalars(select(Note).where(col(Note.request_id) == request_id))
        for note in notes:
            add(
                note.created_at,
                "note",
                id_of(note),
                CaseEvent(note.created_at, "note", note.author, note.text, {"id": id_of(note)}),
            )

        ratings = await self._session.scalars(
            select(Rating).where(
                or_(col(Rating.identity_id) == identity_id, col(Rating.request_id) == request_id)
            )
        )
        for rating in ratings:
            text = f"{rating.score}/5" + (f": {rating.comment}" if rating.comment else "")
            add(
                rating.created_at,
                "rating",
                id_of(rating),
                CaseEvent(
                    rating.created_at,
                    "rating",
                    None,
                    text,
                    {
                        "id": id_of(rating),
                        "score": rating.score,
                        "context": rating.context,
                        "comment": rating.comment,
                        "channel": rating.channel,
                        "request_id": rating.request_id,
                    },
                ),
            )

        claimer, closer = aliased(Staff), aliased(Staff)
        handoffs = await self._session.execute(
            select(Handoff, col(claimer.username), col(closer.username))
            .outerjoin(claimer, col(claimer.id) == col(Handoff.claimed_by))
            .outerjoin(closer, col(closer.id) == col(Handoff.closed_by))
            .where(
                or_(
                    col(Handoff.identity_id) == identity_id,
                    col(Handoff.request_id) == request_id,
                )
            )
        )
        for handoff, claimed_by, closed_by in handoffs:
            handoff_id = id_of(handoff)
            detail = {
                "id": handoff_id,
                "reason": handoff.reason,
                "urgent": handoff.urgent,
                "request_id": handoff.request_id,
            }
            moments = [
                ("handoff_opened", handoff.opened_at, None),
                ("handoff_claimed", handoff.claimed_at, claimed_by),
                ("handoff_closed", handoff.closed_at, closed_by),
            ]
            for kind, at, actor in moments:
                if at is not None:
                    add(at, kind, handoff_id, CaseEvent(at, kind, actor, handoff.reason, detail))

        documents = await self._session.scalars(
            select(Document).where(col(Document.request_id) == request_id)
        )
        for document in documents:
            add(
                document.created_at,
                "document",
                id_of(document),
                CaseEvent(
                    document.created_at,
                    "document",
                    None,
                    document.filename or document.url,
                    {
                        "id": id_of(document),
                        "url": document.url,
                        "content_type": document.content_type,
                        "filename": document.filename,
                        "message_id": document.message_id,
                    },
                ),
            )

        add(
            request.signed_at,
            "declaration",
            request_id,
            CaseEvent(
                request.signed_at,
                "declaration",
                None,
                "signed",
                {
                    "channel": request.signed_channel,
                    "platform_message_id": request.signed_message_id,
                },
            ),
        )
        ranked.sort(key=lambda item: item[:3])
        return [event for *_, event in ranked]


# --- the staff dashboard: ratings for reports, the audit log, login sessions ---


@dataclass(frozen=True, slots=True)
class RatingRow:
    """One rating as the satisfaction report reads it."""

    at: datetime
    score: int
    comment: str | None
    channel: str
    context: str  # service | handoff
    need: str | None  # of the request it is about; None when about no request
    reference: str | None


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
        # The table, not the model: a plain executemany, without the ORM's bulk bookkeeping.
        insert = _insert(self._session, FollowUp.__table__)  # type: ignore[attr-defined]
        fresh = {name: insert.excluded[name] for name in rows[0] if name != "key"}
        await self._session.execute(
            insert.on_conflict_do_update(index_elements=["key"], set_=fresh), rows
        )

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
        statement = (
            update(FollowUp)
            .where(col(FollowUp.key).in_(keys), col(FollowUp.status) == FOLLOWUP_PENDING)
            .values(status=FOLLOWUP_CANCELLED, done_at=now)
            .returning(col(FollowUp.key))
            .execution_options(synchronize_session="fetch")
        )
        return builtins.list((await self._session.scalars(statement)).all())

    async def cancel_for(
        self, identity_id: int, kinds: builtins.list[str], now: datetime
    ) -> builtins.list[str]:
        """Cancel the identity's pending follow-ups of these kinds; returns their keys."""
        statement = (
            update(FollowUp)
            .where(
                col(FollowUp.identity_id) == identity_id,
                col(FollowUp.kind).in_(kinds),
                col(FollowUp.status) == FOLLOWUP_PENDING,
            )
            .values(status=FOLLOWUP_CANCELLED, done_at=now)
            .returning(col(FollowUp.key))
            .execution_options(synchronize_session="fetch")
        )
        return builtins.list((await self._session.scalars(statement)).all())

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


class MediaRepository:
    """Attachments kept in the media folder, by sender, and where their senders are."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def sender(self, address: Address) -> tuple[int, ConversationState] | None:
        """The identity behind ``address`` and the step it is at (without its data, and
        without locking it: the engine may be stepping it), or None for a new sender."""
        query = (
            select(col(ChannelIdentity.id), col(Conversation.flow), col(Conversation.step))
            .outerjoin(Conversation, col(Conversation.identity_id) == col(ChannelIdentity.id))
            .where(
                col(ChannelIdentity.channel) == address.channel,
                col(ChannelIdentity.user_id) == address.user_id,
            )
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        identity_id, flow, step = row
        assert identity_id is not None
        if flow is None:
            return identity_id, ConversationState()
        return identity_id, ConversationState(flow=flow, step=step)

    async def usage(self, identity_id: int, since: datetime) -> tuple[int, int]:
        """How many files, and bytes, were kept for ``identity_id`` since ``since``."""
        query = select(func.count(), func.coalesce(func.sum(col(StoredMedia.size)), 0)).where(
            col(StoredMedia.identity_id) == identity_id, col(StoredMedia.created_at) >= since
        )
        files, size = (await self._session.execute(query)).one()
        return int(files), int(size)

    async def add(
        self, identity_id: int, reference: str, content_type: str, size: int, now: datetime
    ) -> None:
        self._session.add(
            StoredMedia(
                identity_id=identity_id,
                reference=reference,
                content_type=content_type[:200],
                size=size,
                created_at=now,
            )
        )
        await self._session.flush()
