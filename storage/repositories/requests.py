"""Requests and their case file: intake, references, statuses, ratings, the case timeline."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlmodel import col

from flows.types import (
    Applicant,
    Media,
    OtherRequest,
    RecordRating,
    RequestSummary,
    SaveIntake,
)
from storage import prepared
from storage.columns import keyring_of
from storage.models import (
    DIRECTION_IN,
    Beneficiary,
    ChannelIdentity,
    Document,
    Handoff,
    Identity,
    Message,
    Note,
    PrivateMessage,
    Rating,
    Staff,
    StatusChange,
    SupportRequest,
    id_of,
    lookup_hashes,
)
from storage.repositories._shared import _IDENTITY, _keep_loaded

# What a signed request must hold; ``description`` may be short but is stored as given.
REQUIRED_ANSWERS = ("name", "national_id", "mobile", "city", "need")

_REQUEST = SupportRequest.__table__  # type: ignore[attr-defined]
_BENEFICIARY = Beneficiary.__table__  # type: ignore[attr-defined]
_STATUS_CHANGE = StatusChange.__table__  # type: ignore[attr-defined]
_RATING = Rating.__table__  # type: ignore[attr-defined]
_NEW_RATING = insert(_RATING).returning(_RATING.c.id)
_REQUEST_BY_REFERENCE = select(
    _REQUEST.c.id, _REQUEST.c.identity_id, _REQUEST.c.beneficiary_id
).where(_REQUEST.c.reference == bindparam("reference"))
# What the flows are given of a sender's requests (read for the menu and status steps):
# built once, run on the table.
_SUMMARIES = (
    select(
        _REQUEST.c.reference,
        _REQUEST.c.status,
        _REQUEST.c.need,
        _REQUEST.c.created_at,
        _REQUEST.c.decision_due_at,
    )
    .where(_REQUEST.c.identity_id == bindparam("of_identity"), _REQUEST.c.reference.is_not(None))
    .order_by(_REQUEST.c.id.desc())
)
# Whom a sender filed for (the intake's "for whom" step reads it on each request).
_APPLICANT_ANSWERS = (
    select(_REQUEST.c.answers)
    .where(_REQUEST.c.identity_id == bindparam("of_identity"), _REQUEST.c.reference.is_not(None))
    .order_by(_REQUEST.c.id)
)
# An applicant found by any of the lookup hashes of their national ID (the current key's
# and those of keys not yet rotated out), when a request is filed.
_APPLICANT_BY_HASHES = (
    select(_BENEFICIARY.c.id)
    .where(_BENEFICIARY.c.national_id_hash.in_(bindparam("hashes", expanding=True)))
    .limit(1)
)
# Whether another identity filed for this applicant before.
_FILED_BY_OTHER = (
    select(_REQUEST.c.id)
    .where(
        _REQUEST.c.beneficiary_id == bindparam("of_beneficiary"),
        _REQUEST.c.identity_id != bindparam("not_identity"),
    )
    .limit(1)
)
# Filing a request: the applicant, the request, its reference and first status written
# by statements built once, not by the ORM's flushes (three of them, each costing
# several times its statement).
_NEW_APPLICANT = insert(_BENEFICIARY).returning(_BENEFICIARY.c.id)
_SPEAKS_FOR = (
    update(_IDENTITY)
    .where(_IDENTITY.c.id == bindparam("identity_id"))
    .values(beneficiary_id=bindparam("to_beneficiary"))
)
_NEW_REQUEST = insert(_REQUEST).returning(_REQUEST.c.id)
_REFERENCE = (
    update(_REQUEST)
    .where(_REQUEST.c.id == bindparam("request_id"))
    .values(reference=bindparam("to_reference"))
)
_FIRST_STATUS = insert(_STATUS_CHANGE)


def reference_for(request_id: int) -> str:
    """The reference a beneficiary quotes: ``REQ-`` and the id, at least six digits."""
    return f"REQ-{request_id:06d}"


class RequestRepository:
    """Support requests, their applicants, documents and status history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        identity: Identity,
        intake: SaveIntake,
        *,
        channel: str,
        signed_message_id: str | None,
        status: str,
        now: datetime,
    ) -> SupportRequest:
        """Store a signed request for its applicant, with its documents and first status.

        ``status`` is that first status (``flows.lifecycle.SUBMITTED``): statuses are the
        lifecycle's words, which storage keeps as given and does not know.

        The applicant is found by national ID, or created. When the ID is already
        known from requests filed by another identity the request is marked
        ``linked_existing`` for staff, and the applicant's stored details are left
        as they are: the new answers stay in the request, for staff to compare.
        ``identity`` now speaks for the applicant (its row, and the session's object
        when ``identity`` is that).

        Raises:
            ValueError: an answer in ``REQUIRED_ANSWERS`` is missing or empty.
        """
        answers = {key: str(value).strip() for key, value in intake.answers.items()}
        missing = [key for key in REQUIRED_ANSWERS if not answers.get(key)]
        if missing:
            # A request nobody can be reached about or identified by must never be stored.
            raise ValueError(f"intake answers missing: {', '.join(missing)}")
        beneficiary_id = await self._applicant(answers, now)
        identity_id = id_of(identity)
        linked_existing = await self._filed_by_other(beneficiary_id, identity_id)
        speaks_for = {"identity_id": identity_id, "to_beneficiary": beneficiary_id}
        await prepared.rows(self._session, _SPEAKS_FOR, speaks_for)
        _keep_loaded(self._session, ChannelIdentity, identity_id, beneficiary_id=beneficiary_id)
        row: dict[str, Any] = {
            "reference": None,
            "beneficiary_id": beneficiary_id,
            "identity_id": identity_id,
            "channel": channel,
            "answers": answers,
            "need": answers["need"],
            "status": status,
            "decision_due_at": intake.decision_due_at,
            "signed_at": intake.signed_at,
            "signed_channel": channel,
            "signed_message_id": signed_message_id,
            "consent": dict(intake.consent) if intake.consent else None,
            "linked_existing": linked_existing,
            "created_at": now,
            "updated_at": now,
        }
        (request_id,) = (await prepared.rows(self._session, _NEW_REQUEST, row))[0]
        reference = {"request_id": request_id, "to_reference": reference_for(request_id)}
        await prepared.rows(self._session, _REFERENCE, reference)
        first = {
            "request_id": request_id,
            "from_status": None,
            "to_status": status,
            "created_at": now,
        }
        await prepared.rows(self._session, _FIRST_STATUS, first)
        if intake.documents:
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
        # The session's object for the row, as written: no statement to read it back.
        request = SupportRequest(**row, id=request_id)
        request.reference = reference["to_reference"]
        make_transient_to_detached(request)
        self._session.add(request)
        return request

    async def household(
        self, request: SupportRequest
    ) -> tuple[builtins.list[SupportRequest], builtins.list[SupportRequest]]:
        """The request's links, oldest first: the applicant's other requests (from any
        phone or channel), and the requests the same sender filed for other applicants
        (one phone speaking for a household)."""
        query = (
            select(SupportRequest)
            .where(
                col(SupportRequest.id) != request.id,
                or_(
                    col(SupportRequest.beneficiary_id) == request.beneficiary_id,
                    col(SupportRequest.identity_id) == request.identity_id,
                ),
            )
            .order_by(col(SupportRequest.id))
        )
        linked = (await self._session.scalars(query)).all()
        same = [r for r in linked if r.beneficiary_id == request.beneficiary_id]
        others = [r for r in linked if r.beneficiary_id != request.beneficiary_id]
        return same, others

    async def open_twins(self, open_statuses: Collection[str]) -> set[int]:
        """Requests with another of the same applicant and need, both open (statuses in
        ``open_statuses``, the lifecycle's words): for staff to look at, as one applicant
        rarely needs the same support twice at once."""
        other = aliased(SupportRequest)
        query = (
            select(col(SupportRequest.id))
            .join(
                other,
                and_(
                    col(other.beneficiary_id) == col(SupportRequest.beneficiary_id),
                    col(other.need) == col(SupportRequest.need),
                    col(other.id) != col(SupportRequest.id),
                ),
            )
            .where(
                col(SupportRequest.status).in_(open_statuses), col(other.status).in_(open_statuses)
            )
            .distinct()
        )
        return set(await self._session.scalars(query))

    async def summaries_for(self, identity: Identity) -> list[RequestSummary]:
        """The requests this sender filed, newest first. Never anyone else's.

        Typing a national ID proves nothing, so requests of the same applicant filed
        from another phone or channel are linked for staff but not shown here; the
        second factor for those is the channels' business.
        """
        rows = await prepared.rows(self._session, _SUMMARIES, {"of_identity": id_of(identity)})
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

    async def applicants_for(self, identity: Identity) -> builtins.list[Applicant]:
        """Whom this sender filed requests for, each once (by national ID), in the order
        first filed for, with the name as the sender last gave it: the next request may
        be for one of them again. Only this identity's own requests, never another
        sender's; an erased applicant (no name or ID left in the answers) is not there."""
        found = await prepared.rows(
            self._session, _APPLICANT_ANSWERS, {"of_identity": id_of(identity)}
        )
        names: dict[str, str] = {}
        for (answers,) in found:
            name, national_id = answers.get("name"), answers.get("national_id")
            if isinstance(name, str) and name and isinstance(national_id, str) and national_id:
                names[national_id] = name
        return [Applicant(name, national_id) for national_id, name in names.items()]

    async def filed_elsewhere(self, identity: Identity, number: int) -> OtherRequest | None:
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
        undecided: Collection[str] = (),
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
            undecided: the statuses still waiting for a decision
                (``flows.lifecycle.UNDECIDED``, which storage does not know); needed
                with ``overdue_at``.
            need: only requests for this need (its persisted name).
            channel: only requests filed on this channel.
            search: a reference (``req-000012`` and ``12`` work too), or part of the applicant's
                name as they gave it, compared as ``fold`` makes both.
            fold: how text is made comparable; the caller passes the conversation's
                folding (Arabic letter variants, diacritics, digits of any script and
                case ignored, so "فاطمه" finds "فاطمة"), which storage does not know.
        """
        if overdue_at is not None and not undecided:
            raise ValueError("overdue_at needs the undecided statuses")
        query = select(SupportRequest).order_by(col(SupportRequest.id))
        if status is not None:
            query = query.where(col(SupportRequest.status) == status)
        if overdue_at is not None:
            query = query.where(
                col(SupportRequest.status).in_(undecided),
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

    async def _applicant(self, answers: Mapping[str, str], now: datetime) -> int:
        keys = keyring_of(self._session.get_bind().dialect)
        national_id = answers.get("national_id") or None
        if national_id is not None:
            hashes = keys.lookup_hashes(national_id)  # rows not yet rotated match too
            found = await prepared.rows(self._session, _APPLICANT_BY_HASHES, {"hashes": hashes})
            if found:
                applicant_id: int = found[0][0]
                return applicant_id
        mobile = answers.get("mobile", "")
        row = {
            "national_id": national_id,
            "full_name": answers.get("name", ""),
            "mobile": mobile,
            "city": answers.get("city", ""),
            "created_at": now,
            **lookup_hashes(keys, national_id, mobile),
        }
        (applicant_id,) = (await prepared.rows(self._session, _NEW_APPLICANT, row))[0]
        return applicant_id

    async def _filed_by_other(self, beneficiary_id: int, identity_id: int) -> bool:
        where = {"of_beneficiary": beneficiary_id, "not_identity": identity_id}
        return bool(await prepared.rows(self._session, _FILED_BY_OTHER, where))


@dataclass(frozen=True, slots=True)
class SavedRating:
    """A rating as stored: what its follow-ups read of it."""

    id: int
    identity_id: int
    beneficiary_id: int | None
    request_id: int | None
    context: str


class RatingRepository:
    """Satisfaction ratings."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, identity: Identity, rating: RecordRating, *, channel: str, now: datetime
    ) -> SavedRating:
        """Store a rating; a score outside 1-5 is refused by the database (IntegrityError).

        ``rating.request_reference`` is linked only when the sender may see that
        request: a reference typed by someone else is ignored, not trusted. ``identity``
        must be up to date in this transaction (whom it speaks for).
        """
        identity_id = id_of(identity)
        beneficiary_id, request_id = identity.beneficiary_id, None
        if rating.request_reference:
            reference = {"reference": rating.request_reference.strip().upper()}
            found = await prepared.rows(self._session, _REQUEST_BY_REFERENCE, reference)
            if found and found[0].identity_id == identity_id:  # only the one who filed it
                request_id, beneficiary_id = found[0].id, found[0].beneficiary_id
        row = {
            "identity_id": identity_id,
            "beneficiary_id": beneficiary_id,
            "request_id": request_id,
            "channel": channel,
            "context": rating.context,
            "score": rating.score,
            "comment": rating.comment,
            "created_at": now,
        }
        (rating_id,) = (await prepared.rows(self._session, _NEW_RATING, row))[0]
        return SavedRating(rating_id, identity_id, beneficiary_id, request_id, rating.context)

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


# Events at the same instant come in the order things happen within one message: what
# the beneficiary wrote, what it caused, and last the bot's answer.
CASE_EVENT_KINDS = (
    "message_in",
    "consent",
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


def _choice_label(message: Message, offered: dict[str, str]) -> str | None:
    """The label of the button a beneficiary pressed: the text the platform sent with it
    (a WhatsApp button's title), else the one the bot's last choices gave its payload
    (Telegram and the web chat send the payload alone); None when neither says."""
    payload = message.payload or ""
    if message.text.strip() and message.text.strip() != payload:
        return message.text.strip()
    return offered.get(payload)


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
                ),
                # About a complaint: every role reads a case file (storage.feedback).
                col(Message.id).not_in(select(col(PrivateMessage.message_id))),
            )
            .order_by(col(Message.id))
        )
        # Per identity, the labels of the choices the bot offered last, by payload.
        offered: dict[int, dict[str, str]] = {}
        for message in messages:
            kind = "message_in" if message.direction == DIRECTION_IN else "message_out"
            message_id = id_of(message)
            detail: dict[str, Any] = {
                "id": message_id,
                "channel": message.channel,
                "kind": message.kind,
                "status": message.status,
                "media": message.media,
                "platform_message_id": message.platform_message_id,
                "payload": message.payload,
                "error": message.error,
                "request_id": message.request_id,
            }
            if kind == "message_out" and message.choices:
                offered[message.identity_id] = {
                    str(c.get("payload")): str(c.get("label")) for c in message.choices
                }
            elif kind == "message_in" and message.payload:
                label = _choice_label(message, offered.get(message.identity_id, {}))
                if label:
                    detail["choice"] = label
            add(
                message.created_at,
                kind,
                message_id,
                CaseEvent(message.created_at, kind, None, message.text, detail),
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
        consent = request.consent or {}
        consented_at = _moment(consent.get("at"))
        if consented_at is not None:
            add(
                consented_at,
                "consent",
                request_id,
                CaseEvent(
                    consented_at,
                    "consent",
                    None,
                    str(consent.get("version", "")),
                    {
                        "version": consent.get("version"),
                        "channel": consent.get("channel"),
                        "platform_message_id": consent.get("message_id") or None,
                    },
                ),
            )
        ranked.sort(key=lambda item: item[:3])
        return [event for *_, event in ranked]


def _moment(stored: object) -> datetime | None:
    """An ISO 8601 time kept in JSON, aware; None when missing or malformed."""
    if not isinstance(stored, str):
        return None
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
