"""Messages and the outbox: the message log, delivery marks, attachments kept on disk."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, String, Update, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import (
    Address,
    Choice,
    ConversationState,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
    TemplateRef,
)
from storage import prepared
from storage.models import (
    DIRECTION_IN,
    DIRECTION_OUT,
    MESSAGE_DELIVERED,
    MESSAGE_FAILED,
    MESSAGE_PENDING,
    MESSAGE_QUEUED,
    MESSAGE_READ,
    MESSAGE_RECEIVED,
    MESSAGE_SENDING,
    MESSAGE_SENT,
    ChannelIdentity,
    Conversation,
    Message,
    MessageKind,
    StoredMedia,
    id_of,
)
from storage.repositories._shared import _IDENTITY, _MESSAGE, _hot, _language


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


@functools.cache
def _due_query(first: tuple[str, ...], only: bool, skip: bool, ids: bool) -> Select[Any]:
    """``MessageRepository.due``'s query, built once per shape (building it cost more than
    running it, on every pass of the outbox); its values are parameters."""
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
    if only:
        queue = queue.where(table.c.kind.in_(bindparam("due_only", expanding=True)))
    if skip:
        queue = queue.where(table.c.identity_id.not_in(bindparam("due_skip", expanding=True)))
    queued = queue.subquery("queued")
    order: builtins.list[Any] = [queued.c.place, table.c.id]
    if first:
        whens = ((table.c.kind == kind, n) for n, kind in enumerate(first))
        order.insert(0, case(*whens, else_=len(first)))
    identity = _IDENTITY
    # Columns, not ORM objects: the sender only reads them, and loading objects
    # cost more than the query itself on every pass.
    query = (
        select(
            *(table.c[name] for name in _OUTBOX_COLUMNS),
            identity.c.user_id,
            identity.c.opted_out,
            identity.c.last_inbound_at,
        )
        .join(queued, queued.c.queued_id == table.c.id)
        .join(identity, identity.c.id == table.c.identity_id)
        .where(
            table.c.status == MESSAGE_PENDING,
            table.c.channel.in_(bindparam("due_channels", expanding=True)),
            queued.c.place <= bindparam("due_per", type_=Integer),
            queued.c.head_status == MESSAGE_PENDING,
        )
        .order_by(*order)
        .limit(bindparam("due_limit", type_=Integer))
    )
    if ids:
        query = query.where(table.c.id.in_(bindparam("due_ids", expanding=True)))
    return query


@functools.cache
def _unsettled_query(only: bool) -> Select[Any]:
    """``MessageRepository.unsettled``'s query (all kinds, or some), built once."""
    table = _MESSAGE
    query = (
        select(table.c.identity_id, table.c.id)
        .where(
            table.c.identity_id.in_(bindparam("unsettled_ids", expanding=True)),
            table.c.direction == DIRECTION_OUT,
            table.c.status.in_((MESSAGE_PENDING, MESSAGE_SENDING)),
        )
        .order_by(table.c.id)
    )
    if only:
        query = query.where(table.c.kind.in_(bindparam("unsettled_only", expanding=True)))
    return query


# ``MessageRepository.claim_all``'s statement for one channel (run on every outbox pass
# that sends), built once.
_CLAIM = (
    update(_MESSAGE)
    .where(
        _MESSAGE.c.id.in_(
            select(_MESSAGE.c.id)
            .where(
                _MESSAGE.c.id.in_(bindparam("claim_ids", expanding=True)),
                _MESSAGE.c.status == MESSAGE_PENDING,
            )
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        ),
        _MESSAGE.c.status == MESSAGE_PENDING,
    )
    .values(
        status=MESSAGE_SENDING,
        last_attempt_at=bindparam("claim_at"),
        channel=bindparam("claim_channel"),
    )
    .returning(_MESSAGE.c.id)
)


@functools.cache
def _recover_statement(keep: bool, channels: bool) -> Update:
    """``MessageRepository.recover_interrupted``'s statement (every outbox pass runs it),
    built once per shape."""
    table = _MESSAGE
    statement = (
        update(table)
        .where(
            table.c.status == MESSAGE_SENDING,
            table.c.last_attempt_at < bindparam("claimed_before"),
        )
        .values(
            status=MESSAGE_PENDING,
            error="interrupted while sending",
            attempts=table.c.attempts + 1,
        )
    )
    if keep:
        statement = statement.where(table.c.id.not_in(bindparam("recover_keep", expanding=True)))
    if channels:
        statement = statement.where(
            table.c.channel.in_(bindparam("recover_channels", expanding=True))
        )
    return statement


# ``MessageRepository.mark_all_sent``: a message the platform accepted.
_MARK_SENT = (
    update(_MESSAGE)
    .where(_MESSAGE.c.id == bindparam("mark_id"))
    .values(
        status=MESSAGE_SENT,
        sent_at=bindparam("mark_at"),
        last_attempt_at=bindparam("mark_at"),
        error=None,
        attempts=_MESSAGE.c.attempts + 1,
        platform_message_id=func.coalesce(
            bindparam("mark_platform_id", type_=String), _MESSAGE.c.platform_message_id
        ),
    )
)

# ``MessageRepository.claim_queued``: a beneficiary's inbound messages waiting for their
# turn, up to one, taken in one statement (whoever takes them runs their turns).
_CLAIM_QUEUED = (
    update(_MESSAGE)
    .where(
        _MESSAGE.c.id.in_(
            select(_MESSAGE.c.id)
            .where(
                _MESSAGE.c.identity_id == bindparam("queued_identity"),
                _MESSAGE.c.direction == DIRECTION_IN,
                _MESSAGE.c.status == MESSAGE_QUEUED,
                _MESSAGE.c.id <= bindparam("queued_upto"),
            )
            .order_by(_MESSAGE.c.id)
            .limit(bindparam("queued_limit", type_=Integer))
            .scalar_subquery()
        ),
        _MESSAGE.c.status == MESSAGE_QUEUED,
    )
    .values(status=MESSAGE_RECEIVED)
    .returning(_MESSAGE.c.id)
)
# The messages the claim took that the caller does not hold (stored by another process,
# or before a restart): read back, decrypted.
_READ_INBOUND = select(
    _MESSAGE.c.id,
    _MESSAGE.c.channel,
    _MESSAGE.c.platform_message_id,
    _MESSAGE.c.text,
    _MESSAGE.c.payload,
    _MESSAGE.c.media,
    _MESSAGE.c.created_at,
).where(_MESSAGE.c.id.in_(bindparam("read_ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class Queued:
    """An inbound message taken from the inbox for its turn: its id and the message."""

    id: int
    message: InboundMessage


def _inbound_from_row(row: Any, user_id: str) -> InboundMessage:
    """The message as its webhook gave it, from its stored row (the inbox after a crash)."""
    media: list[Media] = []
    location = None
    for item in row.media or []:
        if "location" in item:
            latitude, longitude = item["location"]
            location = Location(float(latitude), float(longitude))
        else:
            media.append(Media(item["url"], item["content_type"], item.get("filename")))
    return InboundMessage(
        address=Address(row.channel, user_id),
        received_at=row.created_at,
        text=row.text or "",
        payload=row.payload,
        media=tuple(media),
        platform_message_id=row.platform_message_id,
        location=location,
    )


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

    async def log_inbound(
        self, identity_id: int, message: InboundMessage, *, queued: bool = False
    ) -> int | None:
        """Store an inbound message; its id, or None when the platform redelivered one
        stored before (the unique index on channel and platform id decides, in one
        statement, whichever process stored it). ``queued``: its turn comes later
        (``claim_queued``)."""
        media: list[dict[str, Any]] = [
            {"url": item.url, "content_type": item.content_type, "filename": item.filename}
            for item in message.media
        ]
        if message.location:
            # A shared place is kept with the attachments, so the case file shows it.
            media.append({"location": [message.location.latitude, message.location.longitude]})
        status = MESSAGE_QUEUED if queued else MESSAGE_RECEIVED
        row = self._row(identity_id, message.address.channel, DIRECTION_IN, status)
        row.update(
            platform_message_id=message.platform_message_id,
            text=message.text,
            payload=message.payload,
            media=media,
            created_at=message.received_at,
        )
        found = await prepared.rows(self._session, _hot(self._session).inbound, row)
        message_id: int | None = found[0][0] if found else None
        return message_id

    async def claim_queued(
        self,
        identity_id: int,
        user_id: str,
        upto: int,
        limit: int,
        held: Mapping[int, InboundMessage],
    ) -> list[Queued]:
        """The beneficiary's oldest ``limit`` queued inbound messages up to id ``upto``,
        oldest first, now marked received: the caller runs their turns in this
        transaction (under the identity's lock). Taking the oldest first keeps the
        beneficiary's order, whichever process stored them; none when another took them.
        ``held``: those the caller has in hand, by id (the others are read back)."""
        params = {"queued_identity": identity_id, "queued_upto": upto, "queued_limit": limit}
        ids = sorted(row[0] for row in await prepared.rows(self._session, _CLAIM_QUEUED, params))
        missing = [n for n in ids if n not in held]
        read = {}
        if missing:
            rows = await self._session.execute(_READ_INBOUND, {"read_ids": missing})
            read = {row.id: _inbound_from_row(row, user_id) for row in rows}
        return [Queued(n, held[n] if n in held else read[n]) for n in ids]

    async def queued_before(self, cutoff: datetime, limit: int) -> list[tuple[int, int]]:
        """Beneficiaries with inbound messages stored before ``cutoff`` and still waiting
        for their turn (a process stopped before it took them): identity id and the
        newest such message's id."""
        table = _MESSAGE
        query = (
            select(table.c.identity_id, func.max(table.c.id))
            .where(
                table.c.status == MESSAGE_QUEUED,
                table.c.direction == DIRECTION_IN,
                table.c.created_at < cutoff,
            )
            .group_by(table.c.identity_id)
            .order_by(func.min(table.c.id))
            .limit(limit)
        )
        return [(identity_id, newest) for identity_id, newest in await self._session.execute(query)]

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
        found = await prepared.rows(self._session, _hot(self._session).outbound, row)
        message_id: int = found[0][0]
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
        params = [
            {"mark_id": m.message_id, "mark_at": m.at, "mark_platform_id": m.platform_message_id}
            for m in marks
        ]
        await prepared.many(self._session, _MARK_SENT, params)

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
        query = _due_query(tuple(first), only is not None, bool(skip), ids is not None)
        params: dict[str, Any] = {
            "due_channels": builtins.list(channels),
            "due_per": per_beneficiary,
            "due_limit": limit,
        }
        if only is not None:
            params["due_only"] = builtins.list(only)
        if skip:
            params["due_skip"] = builtins.list(skip)
        if ids is not None:
            params["due_ids"] = builtins.list(ids)
        rows = await prepared.rows(self._session, query, params)
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
        params: dict[str, Any] = {"unsettled_ids": builtins.list(identity_ids)}
        if only is not None:
            params["unsettled_only"] = builtins.list(only)
        rows = await prepared.rows(self._session, _unsettled_query(only is not None), params)
        queues: dict[int, builtins.list[int]] = {}
        for identity_id, message_id in rows:
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
            # PostgreSQL: rows another sender is claiming are skipped, not waited for
            # (it takes them); the status, checked again, settles any other race.
            params = {"claim_ids": ids, "claim_at": now, "claim_channel": channel}
            rows = await prepared.rows(self._session, _CLAIM, params)
            claimed.update(message_id for (message_id,) in rows if message_id)
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
        statement = _recover_statement(bool(keep), channels is not None)
        params: dict[str, Any] = {"claimed_before": claimed_before}
        if keep:
            params["recover_keep"] = builtins.list(keep)
        if channels is not None:
            params["recover_channels"] = builtins.list(channels)
        result = await self._session.execute(statement, params)
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
