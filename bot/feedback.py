"""Feedback (suggestions, complaints, thanks): what the engine stores from the chat, and the
one code path for staff actions on it from the CLI, the staff group and the dashboard.

Each staff action runs in one transaction: the change, its timeline entry (and the linked
request's case-file note), the message to the beneficiary (into the outbox, on the
channel they wrote on, in their language) and the audit log's entry. Complaints are for
managers and admins only: one may be about the agent who would read it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.templates import TemplateKind
from flows import feedback as feedback_flow
from flows.types import AddFeedbackReply, FlowSettings, SaveFeedback, TemplateRef
from storage.db import Database
from storage.feedback import (
    ANSWERED,
    CLOSED,
    KINDS,
    STATUSES,
    FeedbackReportRow,
    FeedbackRepository,
    NewFeedback,
    past_due,
)
from storage.models import (
    ChannelIdentity,
    Feedback,
    FeedbackEvent,
    MessageKind,
    Staff,
    StaffRole,
    StatusChange,
    SupportRequest,
    id_of,
)
from storage.repositories import (
    AuditRepository,
    ConversationRepository,
    MessageRepository,
    StaffRepository,
)

if TYPE_CHECKING:  # bot.followups imports this module's neighbours, not this module
    from bot.followups import FollowUpPlanner

log = logging.getLogger(__name__)

# Who may read and act on complaints; suggestions and thanks are for every role.
COMPLAINT_ROLES = (StaffRole.MANAGER, StaffRole.ADMIN)
ANSWER_MAX = feedback_flow.TEXT_MAX
_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,39}")


class FeedbackError(Exception):
    """A staff action on feedback that cannot be done; ``str()`` says why, for staff.

    ``forbidden``: the member's role may not see it (the dashboard answers 403);
    ``missing``: there is no such feedback (404).
    """

    def __init__(self, message: str, *, forbidden: bool = False, missing: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden
        self.missing = missing


def kinds_for(role: str | None) -> tuple[str, ...]:
    """The kinds of feedback a role may see (None: the command line, which sees all)."""
    if role is None or role in COMPLAINT_ROLES:
        return KINDS
    return tuple(kind for kind in KINDS if kind != "complaint")


def is_overdue(feedback: Feedback, now: datetime) -> bool:
    return past_due(feedback.status, feedback.due_at, now)


@dataclass(frozen=True, slots=True)
class FeedbackCase:
    """One feedback as staff read it: the row, its timeline, the request it names."""

    feedback: Feedback
    events: list[FeedbackEvent]
    request_reference: str | None
    overdue: bool


# --- what the engine does with the flow's effects ---


async def store(
    session: AsyncSession,
    identity: ChannelIdentity,
    effect: SaveFeedback,
    *,
    channel: str,
    now: datetime,
) -> Feedback:
    """Store the feedback a beneficiary gave, in the language they wrote it in."""
    language = (await ConversationRepository(session).load(id_of(identity))).language
    named = await _named_staff(session, identity, effect) if effect.kind == "thanks" else None
    given = NewFeedback(
        kind=effect.kind,
        text=effect.text,
        attachments=effect.attachments,
        request_reference=effect.request_reference,
        may_contact=effect.may_contact,
        named_staff=named,
    )
    feedback = await FeedbackRepository(session).create(
        identity, given, channel=channel, language=language, due_at=effect.due_at, now=now
    )
    log.info("feedback %s (%s) received on %s", feedback.reference, feedback.kind, channel)
    return feedback


async def add_reply(
    session: AsyncSession, identity: ChannelIdentity, effect: AddFeedbackReply, now: datetime
) -> Feedback | None:
    """The beneficiary's reply into their own feedback's timeline (anyone else's: nothing)."""
    repository = FeedbackRepository(session)
    feedback = await repository.get_for_update(effect.reference)
    if feedback is None or feedback.identity_id != identity.id:
        return None
    await repository.add_reply(feedback, effect.text, effect.media, now=now)
    return feedback


async def _named_staff(
    session: AsyncSession, identity: ChannelIdentity, effect: SaveFeedback
) -> str | None:
    """The staff member thanked: one whose username the text names, else the last one
    who moved the request the thanks are about."""
    members = {m.username: m for m in await StaffRepository(session).list()}
    for word in _USERNAME.findall(effect.text.lower()):
        if word in members:
            return str(word)
    if not effect.request_reference:
        return None
    query = (
        select(col(StatusChange.by))
        .join(SupportRequest, col(SupportRequest.id) == col(StatusChange.request_id))
        .where(
            col(SupportRequest.reference) == effect.request_reference,
            col(SupportRequest.identity_id) == id_of(identity),
            col(StatusChange.by).is_not(None),
        )
        .order_by(col(StatusChange.id).desc())
        .limit(1)
    )
    by = await session.scalar(query)
    return by if isinstance(by, str) and by in members else None


# --- staff actions ---


class FeedbackDesk:
    """Staff actions on feedback: list, show, answer, set the status. ``by`` is the
    member (a ``Staff`` or a username) or None for the command line without ``--by``."""

    def __init__(
        self,
        database: Database,
        settings: FlowSettings,
        clock: Callable[[], datetime],
        *,
        on_outbox: Callable[[], None] = lambda: None,
        followups: FollowUpPlanner | None = None,
        on_followups: Callable[[list[str]], None] = lambda _keys: None,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._on_outbox = on_outbox
        self._followups = followups
        self._on_followups = on_followups

    async def list_feedback(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        overdue: bool = False,
        by: str | Staff | None = None,
    ) -> list[Feedback]:
        """Feedback the member may see, newest first."""
        if kind is not None and kind not in KINDS:
            raise FeedbackError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        if status is not None and status not in STATUSES:
            raise FeedbackError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        async with self._db.session() as session:
            member = await self._member(session, by)
            kinds = kinds_for(member.role if member else None)
            if kind is not None:
                if kind not in kinds:
                    raise FeedbackError("complaints are for managers and admins", forbidden=True)
                kinds = (kind,)
            return await FeedbackRepository(session).list(
                kinds=kinds, status=status, overdue_at=self._clock() if overdue else None
            )

    async def show(
        self, reference: str, *, by: str | Staff | None = None, where: str | None = None
    ) -> FeedbackCase:
        """One feedback with its timeline; a member who may not see it is refused. Given
        ``where`` (``cli``, ``dashboard``, ``staff_group``), the read is a staff member's
        (``by``; None: the command line) and goes into the audit log, as a case file's."""
        async with self._db.session() as session:
            member = await self._member(session, by)
            repository = FeedbackRepository(session)
            feedback = await self._feedback(repository, reference, member)
            events = await repository.events(feedback)
            request = (
                await session.get(SupportRequest, feedback.request_id)
                if feedback.request_id is not None
                else None
            )
        if where is not None:
            async with self._db.session() as session, session.begin():
                await self._audit(session, by, "feedback_read", feedback, {"where": where})
        return FeedbackCase(
            feedback,
            events,
            request.reference if request else None,
            is_overdue(feedback, self._clock()),
        )

    async def answer(self, reference: str, text: str, *, by: str | Staff | None = None) -> Feedback:
        """Staff's answer: into the timeline, and to the beneficiary at once, on their
        channel and in their language; the beneficiary's next message is their reply."""
        text = text.strip()
        if not text:
            raise FeedbackError("an empty answer was not sent")
        if len(text) > ANSWER_MAX:
            raise FeedbackError(f"an answer has at most {ANSWER_MAX} characters")
        now = self._clock()
        async with self._db.session() as session, session.begin():
            member = await self._member(session, by)
            repository = FeedbackRepository(session)
            feedback = await self._feedback(repository, reference, member, lock=True)
            if feedback.status == CLOSED:
                raise FeedbackError(f"{feedback.reference} is closed")
            name = member.username if member else None
            await repository.answer(feedback, text, by=name, now=now)
            await self._tell(session, feedback, text, now)
            keys = await self._settled(session, feedback, now)
            await self._audit(session, by, "feedback_answer", feedback, {"characters": len(text)})
        log.info("feedback %s answered", feedback.reference)
        self._on_outbox()
        self._on_followups(keys)
        return feedback

    async def set_status(
        self,
        reference: str,
        status: str,
        *,
        by: str | Staff | None = None,
        note: str | None = None,
    ) -> Feedback:
        """Move feedback to another status (``answered`` only comes with an answer)."""
        status = status.strip().lower()
        if status not in STATUSES:
            raise FeedbackError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        if status == ANSWERED:
            raise FeedbackError("a feedback is answered by writing the answer")
        now = self._clock()
        async with self._db.session() as session, session.begin():
            member = await self._member(session, by)
            repository = FeedbackRepository(session)
            feedback = await self._feedback(repository, reference, member, lock=True)
            previous = feedback.status
            if previous == status:
                raise FeedbackError(f"{feedback.reference} is {status} already")
            name = member.username if member else None
            await repository.change_status(feedback, status, now=now, by=name, note=note)
            keys: list[str] = []
            if status == CLOSED:
                keys = await self._settled(session, feedback, now)
            await self._audit(
                session, by, "feedback_status", feedback, {"from": previous, "to": status}
            )
        log.info("feedback %s moved to %s", feedback.reference, status)
        self._on_followups(keys)
        return feedback

    async def export_report(
        self, *, since: datetime | None, by: str | Staff | None
    ) -> list[FeedbackReportRow]:
        """The report's rows (numbers, no text) for a manager taking them out; audited."""
        async with self._db.session() as session, session.begin():
            member = await self._member(session, by)
            if member is not None and member.role not in COMPLAINT_ROLES:
                raise FeedbackError("the report is for managers and admins", forbidden=True)
            rows = await FeedbackRepository(session).report(since=since)
            await AuditRepository(session).add(
                member,
                "export_feedback",
                None,
                {"since": since.isoformat() if since else "all", "rows": len(rows)},
                now=self._clock(),
            )
        return rows

    # --- helpers ---

    async def _member(self, session: AsyncSession, by: str | Staff | None) -> Staff | None:
        if by is None or isinstance(by, Staff):
            return by
        member = await StaffRepository(session).get(by)
        if member is None:
            raise FeedbackError(f"no active staff member {by!r}")
        return member

    async def _feedback(
        self,
        repository: FeedbackRepository,
        reference: str,
        member: Staff | None,
        *,
        lock: bool = False,
    ) -> Feedback:
        found = await (repository.get_for_update if lock else repository.get)(reference)
        if found is None:
            raise FeedbackError(f"no feedback {reference.strip()[:40]!r}", missing=True)
        if found.kind not in kinds_for(member.role if member else None):
            raise FeedbackError("complaints are for managers and admins", forbidden=True)
        return found

    async def _tell(
        self, session: AsyncSession, feedback: Feedback, answer: str, now: datetime
    ) -> None:
        """The answer into the outbox; the conversation then waits for a reply."""
        conversations = ConversationRepository(session)
        state = await conversations.load(feedback.identity_id)
        reference = feedback.reference or ""
        private = feedback.kind == "complaint"
        new, message = feedback_flow.answered(state, reference, answer, private=private)
        # Outside WhatsApp's 24-hour window it goes as the approved "feedback_answer"
        # template: {{1}} the reference, {{2}} the answer.
        template = TemplateRef(TemplateKind.FEEDBACK_ANSWER, {"1": reference, "2": answer})
        message = replace(message, template=template)
        sent = await MessageRepository(session).enqueue_to(
            feedback.identity_id,
            [message],
            now,
            kind=MessageKind.STAFF,
            request_id=feedback.request_id,
        )
        if private:
            await FeedbackRepository(session).keep_private(sent, now)
        await conversations.save(feedback.identity_id, new, now)

    async def _settled(self, session: AsyncSession, feedback: Feedback, now: datetime) -> list[str]:
        if self._followups is None:
            return []
        return await self._followups.feedback_settled(session, id_of(feedback), now)

    async def _audit(
        self,
        session: AsyncSession,
        by: str | Staff | None,
        action: str,
        feedback: Feedback,
        detail: dict[str, object],
    ) -> None:
        staff = by if isinstance(by, Staff) else None
        if isinstance(by, str):
            staff = await StaffRepository(session).get(by)
        await AuditRepository(session).add(
            staff,
            action,
            feedback.reference,
            {"kind": feedback.kind, **detail},
            now=self._clock(),
            username=by if isinstance(by, str) else None,
        )
