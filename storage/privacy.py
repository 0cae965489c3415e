"""Personal data as a whole: which columns are encrypted, re-encrypting them all, and
erasing a person while keeping anonymous statistics."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import SQLModel, col

from storage.columns import keyring_of
from storage.db import Database
from storage.models import (
    MESSAGE_FAILED,
    MESSAGE_PENDING,
    MESSAGE_SENDING,
    Appointment,
    Beneficiary,
    ChannelIdentity,
    Conversation,
    Document,
    Feedback,
    FeedbackEvent,
    Message,
    Note,
    PrivacyKey,
    Rating,
    StatusChange,
    StoredMedia,
    SupportRequest,
    UnansweredQuestion,
    id_of,
)

# What an erased request keeps of its answers: anonymous statistics.
ANONYMOUS_ANSWERS: Final = ("city", "need")

# Every encrypted column, by table (storage.columns.EncryptedText / EncryptedJSON).
ENCRYPTED: Final[tuple[tuple[type[SQLModel], tuple[str, ...]], ...]] = (
    (Beneficiary, ("national_id", "full_name", "mobile")),
    (SupportRequest, ("answers",)),
    (Conversation, ("data",)),
    (Message, ("text", "media")),
    (Note, ("text",)),
    (StatusChange, ("note",)),
    (Feedback, ("text", "attachments")),
    (FeedbackEvent, ("text", "attachments")),
    (Rating, ("comment",)),
    (UnansweredQuestion, ("question",)),
    (Appointment, ("note",)),
    (Document, ("filename",)),
)


def _key_column(model: type[SQLModel]) -> Any:
    return next(iter(model.__table__.primary_key.columns))  # type: ignore[attr-defined]


async def reencrypt(
    database: Database, *, fold_question: Callable[[str], str], batch: int = 500
) -> int:
    """Write every encrypted value not yet under the current key again under it (the
    lookup hashes follow), in short transactions, so a running server goes on; then
    forget the other keys' check values. Returns how many rows were rewritten.

    ``fold_question`` is the knowledge matcher's folding (``flows.knowledge.question_key``):
    an unanswered question's keyed hash is of its folded wording, computed again under
    the current key for every one of them (two that now fold alike become one).
    """
    keyring = database.keyring
    current = f"tw1:{keyring.current_id}:%"
    rewritten = 0
    for model, columns in ENCRYPTED:
        table = model.__tablename__
        key = _key_column(model)
        stale = " OR ".join(
            f"({c} IS NOT NULL AND {c} NOT LIKE :current AND {c} <> '[]')" for c in columns
        )
        if model is UnansweredQuestion:
            stale = "1 = 1"  # a hash under an old key may sit beside a current wording
        async with database.session() as session:
            found = await session.execute(
                text(f"SELECT {key.name} FROM {table} WHERE {stale}"),
                {"current": current},
            )
            ids = [row[0] for row in found]
        for start in range(0, len(ids), batch):
            async with database.session() as session, session.begin():
                # Locked as read: a message handled meanwhile (PostgreSQL) waits rather
                # than has its newer state overwritten with this older one.
                rows = (
                    await session.scalars(
                        select(model).where(key.in_(ids[start : start + batch])).with_for_update()
                    )
                ).all()
                for row in rows:
                    for column in columns:
                        flag_modified(row, column)
                    if isinstance(row, UnansweredQuestion):
                        await _rehash(
                            session, row, keyring.lookup_hash(fold_question(row.question))
                        )
                    rewritten += 1
    async with database.session() as session, session.begin():
        await session.execute(
            delete(PrivacyKey).where(col(PrivacyKey.key_id) != keyring.current_id)
        )
    return rewritten


async def _rehash(session: AsyncSession, row: UnansweredQuestion, question_key: str) -> None:
    """Give an unanswered question its hash under the current key; one already counted
    under it takes this one's count instead."""
    if row.question_key == question_key:
        return
    other = await session.scalar(
        select(UnansweredQuestion).where(col(UnansweredQuestion.question_key) == question_key)
    )
    if other is None:
        row.question_key = question_key
        return
    other.count += row.count
    other.first_asked_at = min(other.first_asked_at, row.first_asked_at)
    if row.last_asked_at > other.last_asked_at:
        other.question, other.last_asked_at = row.question, row.last_asked_at
    await session.delete(row)


async def find_beneficiary(session: AsyncSession, national_id: str) -> Beneficiary | None:
    """The applicant with this national ID (by its keyed hash, under any configured key)."""
    keys = keyring_of(session.get_bind().dialect)
    query = select(Beneficiary).where(
        col(Beneficiary.national_id_hash).in_(keys.lookup_hashes(national_id))
    )
    return (await session.scalars(query)).first()


async def past_retention(
    session: AsyncSession, *, before: datetime, open_statuses: Collection[str]
) -> list[int]:
    """Applicants not yet erased whose requests are all closed (no status in
    ``open_statuses``, the lifecycle's words) and untouched since ``before``."""
    query = (
        select(col(SupportRequest.beneficiary_id))
        .join(Beneficiary, col(Beneficiary.id) == col(SupportRequest.beneficiary_id))
        .where(col(Beneficiary.national_id_hash).is_not(None))
        .group_by(col(SupportRequest.beneficiary_id))
        .having(
            func.max(SupportRequest.updated_at) < before,
            func.sum(case((col(SupportRequest.status).in_(open_statuses), 1), else_=0)) == 0,
        )
    )
    return list(await session.scalars(query))


@dataclass(frozen=True, slots=True)
class Erased:
    """What erasing a person removed: counts for the audit log (no personal data), and
    the media files (``media/<name>``) the caller deletes from the disk."""

    requests: int
    messages: int
    media: tuple[str, ...]


def _urls(media: object) -> list[str]:
    if not isinstance(media, list):
        return []
    return [str(item["url"]) for item in media if isinstance(item, dict) and item.get("url")]


async def erase_beneficiary(session: AsyncSession, beneficiary_id: int) -> Erased:
    """Remove a person and keep anonymous statistics, in the caller's transaction.

    Gone: the applicant's national ID, name and mobile; the requests' answers but the
    city and need; documents; the texts and attachments of every message of the
    identities that spoke for them (a phone number as user id becomes ``erased:<id>``),
    their conversation state, staff notes, status notes and appointment notes, rating
    comments, feedback texts; replies still waiting to be sent. Kept: the rows
    themselves, so need, city, status history, ratings, appointments and message counts
    stay as they were.
    """
    requests = (
        await session.scalars(
            select(SupportRequest).where(col(SupportRequest.beneficiary_id) == beneficiary_id)
        )
    ).all()
    request_ids = [id_of(request) for request in requests]
    identity_ids = set(
        await session.scalars(
            select(col(ChannelIdentity.id)).where(
                col(ChannelIdentity.beneficiary_id) == beneficiary_id
            )
        )
    ) | {request.identity_id for request in requests}
    of_person = or_(
        col(Message.identity_id).in_(identity_ids), col(Message.request_id).in_(request_ids)
    )
    media: list[str] = []
    for stored in await session.scalars(select(col(Message.media)).where(of_person)):
        media += _urls(stored)
    media += list(
        await session.scalars(
            select(col(Document.url)).where(col(Document.request_id).in_(request_ids))
        )
    )
    feedback = (
        await session.scalars(select(Feedback).where(col(Feedback.identity_id).in_(identity_ids)))
    ).all()
    feedback_ids = [id_of(row) for row in feedback]
    for row in feedback:
        media += _urls(row.attachments)
    for stored in await session.scalars(
        select(col(FeedbackEvent.attachments)).where(
            col(FeedbackEvent.feedback_id).in_(feedback_ids)
        )
    ):
        media += _urls(stored)

    beneficiary = await session.get(Beneficiary, beneficiary_id)
    if beneficiary is not None:
        beneficiary.national_id, beneficiary.full_name, beneficiary.mobile = None, "", ""
    for request in requests:
        request.answers = {k: v for k, v in request.answers.items() if k in ANONYMOUS_ANSWERS}
    messages = await session.execute(
        update(Message).where(of_person).values(text="", media=[], payload=None, error=None)
    )
    await session.execute(
        update(Message)
        .where(of_person, col(Message.status).in_((MESSAGE_PENDING, MESSAGE_SENDING)))
        .values(status=MESSAGE_FAILED, error="erased")
    )
    await session.execute(delete(Document).where(col(Document.request_id).in_(request_ids)))
    await session.execute(delete(Note).where(col(Note.request_id).in_(request_ids)))
    await session.execute(
        update(Appointment)
        .where(
            or_(
                col(Appointment.request_id).in_(request_ids),
                col(Appointment.identity_id).in_(identity_ids),
            )
        )
        .values(note=None)
    )
    await session.execute(
        update(StatusChange).where(col(StatusChange.request_id).in_(request_ids)).values(note=None)
    )
    await session.execute(
        update(Rating)
        .where(
            or_(
                col(Rating.identity_id).in_(identity_ids),
                col(Rating.beneficiary_id) == beneficiary_id,
                col(Rating.request_id).in_(request_ids),
            )
        )
        .values(comment=None)
    )
    await session.execute(
        update(Conversation).where(col(Conversation.identity_id).in_(identity_ids)).values(data={})
    )
    await session.execute(
        update(Feedback).where(col(Feedback.id).in_(feedback_ids)).values(text="", attachments=[])
    )
    await session.execute(
        update(FeedbackEvent)
        .where(col(FeedbackEvent.feedback_id).in_(feedback_ids))
        .values(text=None, attachments=[])
    )
    await session.execute(delete(StoredMedia).where(col(StoredMedia.identity_id).in_(identity_ids)))
    for identity_id in identity_ids:
        await session.execute(
            update(ChannelIdentity)
            .where(col(ChannelIdentity.id) == identity_id)
            .values(user_id=f"erased:{identity_id}")
        )
    await session.flush()
    count = getattr(messages, "rowcount", 0) or 0
    return Erased(len(requests), int(count), tuple(dict.fromkeys(media)))


async def held_for(session: AsyncSession, identity: ChannelIdentity) -> dict[str, Any]:
    """What is held about the person writing from ``identity``, as plain JSON values:
    the applicant they last spoke for (name, national ID, mobile, city), the requests
    this identity filed for them (reference, need, status, created_at), the consent of
    the newest, and how many messages of this identity are kept. Nothing filed from
    another identity: that needs the second factor."""
    identity_id = id_of(identity)
    requests = (
        await session.scalars(
            select(SupportRequest)
            .where(col(SupportRequest.identity_id) == identity_id)
            .order_by(col(SupportRequest.id))
        )
    ).all()
    messages = await session.scalar(
        select(func.count()).select_from(Message).where(col(Message.identity_id) == identity_id)
    )
    held: dict[str, Any] = {"messages": int(messages or 0)}
    beneficiary = (
        await session.get(Beneficiary, identity.beneficiary_id)
        if identity.beneficiary_id is not None and requests
        else None
    )
    if beneficiary is not None:
        held |= {
            "name": beneficiary.full_name,
            "national_id": beneficiary.national_id or "",
            "mobile": beneficiary.mobile,
            "city": beneficiary.city,
        }
    held["requests"] = [
        {
            "reference": request.reference,
            "need": request.need,
            "status": request.status,
            "created_at": request.created_at.isoformat(),
        }
        for request in requests
        if beneficiary is not None and request.beneficiary_id == beneficiary.id
    ]
    consent = next((r.consent for r in reversed(requests) if r.consent), None)
    if consent:
        held["consent"] = {"version": consent.get("version"), "at": consent.get("at")}
    return held
