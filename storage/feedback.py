"""Feedback in the database: suggestions, complaints and thanks, and each one's timeline."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import Media
from storage.models import (
    ChannelIdentity,
    Feedback,
    FeedbackEvent,
    FeedbackPost,
    Note,
    PrivateMessage,
    SupportRequest,
    id_of,
)

# Persisted values (lowercase snake_case: data, renamed only with a migration).
KINDS = ("suggestion", "complaint", "thanks")
RECEIVED = "received"
IN_PROGRESS = "in_progress"
ANSWERED = "answered"
CLOSED = "closed"
STATUSES = (RECEIVED, IN_PROGRESS, ANSWERED, CLOSED)
# Still waiting for staff: what the deadline and the overdue mark are about.
OPEN = (RECEIVED, IN_PROGRESS)
# Timeline entries.
EVENT_RECEIVED = "received"
EVENT_STATUS = "status"
EVENT_ANSWER = "answer"
EVENT_REPLY = "reply"
# The author of a feedback's lines in a linked request's case file.
CASE_AUTHOR = "feedback"


def past_due(status: str, due_at: datetime | None, now: datetime) -> bool:
    """Whether feedback is overdue: still waiting for staff at or after its answer date."""
    return status in OPEN and due_at is not None and due_at <= now


def reference_for(feedback_id: int) -> str:
    """The reference a beneficiary quotes: ``FB-`` and the id, at least six digits."""
    return f"FB-{feedback_id:06d}"


def number_in(reference: str) -> int | None:
    """The number of ``FB-000012`` (``fb-12``, ``12`` too); None when it is no reference."""
    wanted = reference.strip().upper().removeprefix("FB-").removeprefix("FB")
    wanted = wanted.strip().lstrip("-")
    if not wanted.isascii() or not wanted.isdigit() or len(wanted) > 12:
        return None
    return int(wanted)


@dataclass(frozen=True, slots=True)
class NewFeedback:
    """What a beneficiary gave: the kind, the text, files, the request it is about."""

    kind: str
    text: str
    attachments: tuple[Media, ...] = ()
    request_reference: str | None = None
    may_contact: bool | None = None
    named_staff: str | None = None


def _stored(media: Sequence[Media]) -> list[dict[str, Any]]:
    return [
        {"url": m.url, "content_type": m.content_type}
        | ({"filename": m.filename} if m.filename else {})
        for m in media
    ]


@dataclass(frozen=True, slots=True)
class FeedbackReportRow:
    """One feedback as the report counts it (no text: the report is numbers)."""

    reference: str
    kind: str
    status: str
    channel: str
    need: str | None  # of the request it names, if any
    created_at: datetime
    answered_at: datetime | None
    due_at: datetime | None


class FeedbackRepository:
    """Reads and writes of feedback; every change also goes into its timeline and, when
    a suggestion or thanks names a request, into that request's case file as a note."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        identity: ChannelIdentity,
        given: NewFeedback,
        *,
        channel: str,
        language: str,
        due_at: datetime | None,
        now: datetime,
    ) -> Feedback:
        """Store new feedback (status received) with its first timeline entry.

        A request reference is linked only when this identity filed that request: a
        beneficiary sees and names only their own.

        Raises:
            ValueError: an unknown kind or an empty text (nothing is stored).
        """
        if given.kind not in KINDS:
            raise ValueError(f"unknown feedback kind {given.kind!r}")
        if not given.text.strip() and not given.attachments:
            raise ValueError("feedback needs a text or a file")
        request = await self._own_request(identity, given.request_reference)
        feedback = Feedback(
            kind=given.kind,
            status=RECEIVED,
            text=given.text,
            attachments=_stored(given.attachments),
            request_id=request.id if request else None,
            may_contact=given.may_contact if given.kind == "complaint" else None,
            channel=channel,
            language=language,
            identity_id=id_of(identity),
            beneficiary_id=identity.beneficiary_id,
            named_staff=given.named_staff,
            created_at=now,
            updated_at=now,
            due_at=due_at,
        )
        self._session.add(feedback)
        await self._session.flush()
        feedback.reference = reference_for(id_of(feedback))
        await self._event(feedback, EVENT_RECEIVED, now, to_status=RECEIVED)
        await self._session.flush()
        return feedback

    async def _own_request(
        self, identity: ChannelIdentity, reference: str | None
    ) -> SupportRequest | None:
        if not reference:
            return None
        request = await self._session.scalar(
            select(SupportRequest).where(
                col(SupportRequest.reference) == reference.strip().upper(),
                col(SupportRequest.identity_id) == id_of(identity),
            )
        )
        return request

    async def get(self, reference: str) -> Feedback | None:
        """The feedback with this reference (``fb-12`` and ``12`` work too), or None."""
        number = number_in(reference)
        if number is None:
            return None
        return await self._session.scalar(
            select(Feedback).where(col(Feedback.reference) == reference_for(number))
        )

    async def get_for_update(self, reference: str) -> Feedback | None:
        """As ``get``, with the row locked on PostgreSQL until the transaction ends."""
        number = number_in(reference)
        if number is None:
            return None
        return await self._session.scalar(
            select(Feedback)
            .where(col(Feedback.reference) == reference_for(number))
            .with_for_update()
        )

    async def list(
        self,
        *,
        kinds: Sequence[str] | None = None,
        status: str | None = None,
        overdue_at: datetime | None = None,
        limit: int = 500,
    ) -> builtins.list[Feedback]:
        """Feedback, newest first; ``kinds`` limits what a role may see, ``overdue_at``
        keeps only what is still unanswered after its deadline at that time."""
        query = select(Feedback).order_by(col(Feedback.id).desc()).limit(limit)
        if kinds is not None:
            query = query.where(col(Feedback.kind).in_(kinds))
        if status is not None:
            query = query.where(col(Feedback.status) == status)
        if overdue_at is not None:
            query = query.where(
                col(Feedback.status).in_(OPEN),
                col(Feedback.due_at).is_not(None),
                col(Feedback.due_at) <= overdue_at,
            )
        return builtins.list((await self._session.execute(query)).scalars())

    async def report(self, *, since: datetime | None = None) -> builtins.list[FeedbackReportRow]:
        """Every feedback received since ``since`` (all when None), oldest first."""
        query = (
            select(
                col(Feedback.reference),
                col(Feedback.kind),
                col(Feedback.status),
                col(Feedback.channel),
                col(SupportRequest.need),
                col(Feedback.created_at),
                col(Feedback.answered_at),
                col(Feedback.due_at),
            )
            .outerjoin(SupportRequest, col(SupportRequest.id) == col(Feedback.request_id))
            .order_by(col(Feedback.id))
        )
        if since is not None:
            query = query.where(col(Feedback.created_at) >= since)
        return [
            FeedbackReportRow(reference or "", kind, status, channel, need, created, answered, due)
            for reference, kind, status, channel, need, created, answered, due in (
                await self._session.execute(query)
            ).all()
        ]

    async def for_request(self, request_id: int) -> builtins.list[Feedback]:
        result = await self._session.execute(
            select(Feedback)
            .where(col(Feedback.request_id) == request_id)
            .order_by(col(Feedback.id))
        )
        return builtins.list(result.scalars())

    async def events(self, feedback: Feedback) -> builtins.list[FeedbackEvent]:
        """The timeline, oldest first."""
        result = await self._session.execute(
            select(FeedbackEvent)
            .where(col(FeedbackEvent.feedback_id) == id_of(feedback))
            .order_by(col(FeedbackEvent.created_at), col(FeedbackEvent.id))
        )
        return builtins.list(result.scalars())

    async def last_reply(self, feedback: Feedback) -> str:
        """The words of the beneficiary's latest reply to it ("" when none or only files)."""
        text = await self._session.scalar(
            select(col(FeedbackEvent.text))
            .where(
                col(FeedbackEvent.feedback_id) == id_of(feedback),
                col(FeedbackEvent.kind) == EVENT_REPLY,
            )
            .order_by(col(FeedbackEvent.id).desc())
            .limit(1)
        )
        return text or ""

    async def change_status(
        self,
        feedback: Feedback,
        to_status: str,
        *,
        now: datetime,
        by: str | None,
        note: str | None = None,
    ) -> FeedbackEvent:
        """Move ``feedback`` to ``to_status`` and record it (the caller checks the move)."""
        if to_status not in STATUSES:
            raise ValueError(f"unknown feedback status {to_status!r}")
        previous = feedback.status
        feedback.status, feedback.updated_at = to_status, now
        return await self._event(
            feedback, EVENT_STATUS, now, by=by, text=note, from_status=previous, to_status=to_status
        )

    async def answer(
        self, feedback: Feedback, text: str, *, by: str | None, now: datetime
    ) -> FeedbackEvent:
        """Staff's answer: in the timeline, and the feedback is answered (the first
        answer's time stays: it is what the report's time to answer counts)."""
        previous = feedback.status
        feedback.status, feedback.updated_at = ANSWERED, now
        if feedback.answered_at is None:
            feedback.answered_at = now
        return await self._event(
            feedback, EVENT_ANSWER, now, by=by, text=text, from_status=previous, to_status=ANSWERED
        )

    async def add_reply(
        self, feedback: Feedback, text: str, media: Sequence[Media], *, now: datetime
    ) -> FeedbackEvent:
        """The beneficiary's reply to an answer; an answered or closed feedback is in
        progress again (staff look at open ones: a reply left closed would be read by none)."""
        previous = feedback.status
        if previous in (ANSWERED, CLOSED):
            feedback.status = IN_PROGRESS
        feedback.updated_at = now
        return await self._event(
            feedback,
            EVENT_REPLY,
            now,
            text=text,
            attachments=_stored(media),
            from_status=previous,
            to_status=feedback.status,
        )

    async def keep_private(self, message_ids: Sequence[int], now: datetime) -> None:
        """Keep these messages (about a complaint) out of case files."""
        for message_id in dict.fromkeys(message_ids):
            await self._session.merge(PrivateMessage(message_id=message_id, created_at=now))
        await self._session.flush()

    async def record_post(self, feedback_id: int, platform_message_id: str, now: datetime) -> None:
        """Remember a staff group post about a feedback (a reply to it answers it)."""
        self._session.add(
            FeedbackPost(
                platform_message_id=platform_message_id, feedback_id=feedback_id, created_at=now
            )
        )
        await self._session.flush()

    async def by_post(self, platform_message_id: str) -> Feedback | None:
        """The feedback a staff group post is about, if it is about one."""
        return await self._session.scalar(
            select(Feedback)
            .join(FeedbackPost, col(FeedbackPost.feedback_id) == col(Feedback.id))
            .where(col(FeedbackPost.platform_message_id) == platform_message_id)
        )

    async def _event(
        self,
        feedback: Feedback,
        kind: str,
        now: datetime,
        *,
        by: str | None = None,
        text: str | None = None,
        attachments: builtins.list[dict[str, Any]] | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
    ) -> FeedbackEvent:
        event = FeedbackEvent(
            feedback_id=id_of(feedback),
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            by=by,
            text=text,
            attachments=attachments or [],
            created_at=now,
        )
        self._session.add(event)
        # A complaint may be about the agent who would read the case file: it is shown
        # on the request's page to managers only (the dashboard), never as a note.
        if feedback.request_id is not None and feedback.kind != "complaint":
            self._session.add(
                Note(
                    request_id=feedback.request_id,
                    author=CASE_AUTHOR,
                    text=_case_line(feedback, event),
                    created_at=now,
                )
            )
        await self._session.flush()
        return event


def _case_line(feedback: Feedback, event: FeedbackEvent) -> str:
    """The case file's line for a timeline entry: staff read it on the request's page."""
    head = f"{feedback.reference} ({feedback.kind}): {event.kind}"
    if event.to_status and event.to_status != event.from_status:
        head += f" -> {event.to_status}"
    if event.by:
        head += f" by {event.by}"
    return f"{head}\n{event.text}" if event.text else head
