"""SQLModel tables: beneficiaries, their channel identities, conversations, messages, requests
and the staff who handle them.

Every persisted name (status, channel, kind, direction, context) is a lowercase
snake_case string: it is data, so renaming one needs a migration. Every datetime is
aware and stored in UTC (see ``storage.columns.UtcDateTime``). The schema itself is
created by the Alembic migrations in ``storage/migrations``, never by ``create_all``
in production; a test keeps the two in agreement.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.columns import (
    EncryptedJSON,
    EncryptedList,
    EncryptedText,
    UtcDateTime,
    keyring_of,
    utcnow,
)
from storage.keyring import Keyring

# Deterministic constraint names: PostgreSQL needs a name to drop a constraint and
# Alembic's SQLite batch mode needs one to recreate it. Set before any table exists.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata

# Persisted values, named once so that repositories and tests agree.
DIRECTION_IN = "in"
DIRECTION_OUT = "out"
MESSAGE_RECEIVED = "received"
# Inbound, stored and acknowledged, its turn not yet taken (``inbound.acknowledge =
# "stored"``): the engine's inbox, kept across a crash.
MESSAGE_QUEUED = "queued"
MESSAGE_PENDING = "pending"
# Claimed by an outbox sender and on its way to the platform (see ``bot.outbox``).
MESSAGE_SENDING = "sending"
MESSAGE_SENT = "sent"
MESSAGE_DELIVERED = "delivered"
MESSAGE_READ = "read"
MESSAGE_FAILED = "failed"


class MessageKind(StrEnum):
    """Why an outbound message is sent (``message.kind``)."""

    # An answer to the beneficiary's own message.
    REPLY = "reply"
    # Sent without the beneficiary asking (status notices, reminders): may be dropped when
    # too old, waits out the quiet hours.
    PROACTIVE = "proactive"
    # A staff member's words in a live conversation: as urgent as a reply.
    STAFF = "staff"
    # Proactive, but it cannot wait for the quiet hours to end: an appointment's reminder
    # on the appointment's own morning. Otherwise as proactive (age, STOP).
    TIMELY = "timely"


HANDOFF_OPEN = "open"
HANDOFF_CLOSED = "closed"


class StaffRole(StrEnum):
    """What a staff member may do (``staff.role``), the least first."""

    AGENT = "agent"
    RESEARCHER = "researcher"
    MANAGER = "manager"
    ADMIN = "admin"


def id_of(row: object) -> int:
    """A row's id, which it gets when flushed; asking before that is a bug."""
    value = getattr(row, "id", None)
    if not isinstance(value, int):
        raise RuntimeError(f"{type(row).__name__} has no id yet: flush first")
    return value


def _at(*, nullable: bool = False, index: bool = False) -> Any:
    """A timestamp column: aware UTC, filled with the current time by default."""
    if nullable:
        return Field(default=None, sa_type=UtcDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False, index=index)


class Beneficiary(SQLModel, table=True):
    """The applicant: one person, identified by national ID or iqama, whatever phone they use."""

    __tablename__ = "beneficiary"

    id: int | None = Field(default=None, primary_key=True)
    # Nullable so that a person known before giving an ID (or never) can still exist.
    # Personal data is encrypted (storage.columns); the keyed hashes beside it are what
    # lookups compare (storage.keyring.Keyring.lookup_hash).
    national_id: str | None = Field(default=None, sa_type=EncryptedText)
    national_id_hash: str | None = Field(default=None, unique=True)
    full_name: str = Field(sa_type=EncryptedText)
    mobile: str = Field(sa_type=EncryptedText)  # E.164
    mobile_hash: str | None = Field(default=None, index=True)
    city: str
    created_at: datetime = _at()


@sa.event.listens_for(Beneficiary, "before_insert")
@sa.event.listens_for(Beneficiary, "before_update")
def _hash_for_lookups(_mapper: Any, connection: sa.Connection, row: Beneficiary) -> None:
    """The keyed hashes follow the values they are looked up for, whoever writes them."""
    hashes = lookup_hashes(keyring_of(connection.dialect), row.national_id, row.mobile)
    row.national_id_hash, row.mobile_hash = hashes["national_id_hash"], hashes["mobile_hash"]


def lookup_hashes(keys: Keyring, national_id: str | None, mobile: str | None) -> dict[str, Any]:
    """A beneficiary's lookup hashes, as its row keeps them (a statement that writes
    the row without the ORM gives them itself)."""
    return {
        "national_id_hash": keys.lookup_hash(national_id) if national_id else None,
        "mobile_hash": keys.lookup_hash(mobile) if mobile else None,
    }


class ChannelIdentity(SQLModel, table=True):
    """One address (channel + user id) the charity talks with; a household may share one."""

    __tablename__ = "channel_identity"
    __table_args__ = (
        sa.UniqueConstraint("channel", "user_id", name="uq_channel_identity_channel_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    user_id: str
    # The applicant this identity last spoke for: a widow's phone may file for her children.
    beneficiary_id: int | None = Field(default=None, foreign_key="beneficiary.id", index=True)
    language: str = "ar"
    opted_out: bool = False
    unreachable: bool = False
    created_at: datetime = _at()
    last_inbound_at: datetime | None = _at(nullable=True)


class Identity(Protocol):
    """What a turn reads of its sender's identity: a ``ChannelIdentity``, or its row as
    the inbox's lock reads it (``IdentityRepository.lock``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def beneficiary_id(self) -> int | None: ...
    @property
    def language(self) -> str: ...
    @property
    def opted_out(self) -> bool: ...


class Conversation(SQLModel, table=True):
    """The state of one identity's conversation between two messages."""

    __tablename__ = "conversation"

    identity_id: int = Field(
        primary_key=True,
        foreign_key="channel_identity.id",
        ondelete="CASCADE",
        sa_column_kwargs={"autoincrement": False},
    )
    flow: str = "menu"
    step: str = "start"
    data: dict[str, Any] = Field(default_factory=dict, sa_type=EncryptedJSON)
    language: str = "ar"
    updated_at: datetime = _at()
    # Incremented on every save: shows in the case file how far a conversation went
    # and lets staff tools notice a state changed under them.
    version: int = 1


class SupportRequest(SQLModel, table=True):
    """A signed request for support ("طلب دعم مستفيد"), owned by its applicant."""

    __tablename__ = "support_request"
    __table_args__ = (
        # Staff lists filter by status and look for overdue decisions.
        sa.Index("ix_support_request_status_decision_due_at", "status", "decision_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Null only between the insert and the flush that gives the row its id.
    reference: str | None = Field(default=None, unique=True)
    beneficiary_id: int = Field(foreign_key="beneficiary.id", index=True)
    identity_id: int = Field(foreign_key="channel_identity.id", index=True)
    channel: str
    # As declared and signed: name, national_id, mobile, city, need, description.
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=EncryptedJSON)
    need: str  # copied out of answers for filtering and reports
    status: str  # flows.lifecycle's names; the first is given by the caller
    decision_due_at: datetime = _at()
    signed_at: datetime = _at()
    signed_channel: str
    signed_message_id: str | None = None
    # The privacy notice agreed to before the intake: version, at (ISO 8601), channel,
    # message_id; None when no notice was configured.
    consent: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    # The national ID already belonged to a beneficiary known from another identity:
    # staff check it rather than the system silently merging or duplicating people.
    linked_existing: bool = False
    created_at: datetime = _at()
    updated_at: datetime = _at()


class Message(SQLModel, table=True):
    """Every message in or out: the case file's log and, for outbound ones, the outbox."""

    __tablename__ = "message"
    __table_args__ = (
        # Platforms redeliver; their message id is unique per channel. NULLs never clash.
        sa.UniqueConstraint(
            "channel", "platform_message_id", name="uq_message_channel_platform_message_id"
        ),
        sa.Index("ix_message_status_id", "status", "id"),  # the outbox: pending, oldest first
        sa.Index("ix_message_identity_id_id", "identity_id", "id"),  # one person's timeline
    )

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="channel_identity.id")
    channel: str
    direction: str  # in | out
    kind: str = MessageKind.REPLY
    platform_message_id: str | None = None
    text: str = Field(default="", sa_type=EncryptedText)
    payload: str | None = None  # inbound: the button pressed
    media: list[dict[str, Any]] = Field(default_factory=list, sa_type=EncryptedList)
    choices: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    inline: bool = False
    # Outbound only: {"kind": ..., "variables": {...}} for a WhatsApp template.
    template: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    language: str | None = None
    status: str
    error: str | None = Field(default=None, sa_type=sa.Text)
    attempts: int = 0
    created_at: datetime = _at()
    sent_at: datetime | None = _at(nullable=True)  # accepted by the platform
    # When the outbox last tried, whatever came of it: for back-off and for staff.
    last_attempt_at: datetime | None = _at(nullable=True)
    request_id: int | None = Field(default=None, foreign_key="support_request.id", index=True)


class StatusChange(SQLModel, table=True):
    """One step in a request's life; ``by`` is None when the system or the applicant did it."""

    __tablename__ = "status_change"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="support_request.id", index=True)
    from_status: str | None = None
    to_status: str
    by: str | None = None
    note: str | None = Field(default=None, sa_type=EncryptedText)
    created_at: datetime = _at()


class Document(SQLModel, table=True):
    """A photo or PDF attached to a request, kept by reference."""

    __tablename__ = "document"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="support_request.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    url: str = Field(sa_type=sa.Text)
    content_type: str
    filename: str | None = Field(default=None, sa_type=EncryptedText)  # as the sender named it
    created_at: datetime = _at()


class Rating(SQLModel, table=True):
    """A satisfaction rating: the beneficiary's right and a tool for improvement."""

    __tablename__ = "rating"
    __table_args__ = (sa.CheckConstraint("score >= 1 AND score <= 5", name="score_range"),)

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="channel_identity.id", index=True)
    beneficiary_id: int | None = Field(default=None, foreign_key="beneficiary.id")
    request_id: int | None = Field(default=None, foreign_key="support_request.id", index=True)
    channel: str
    context: str = "service"  # service | handoff
    score: int
    comment: str | None = Field(default=None, sa_type=EncryptedText)
    created_at: datetime = _at()


class Note(SQLModel, table=True):
    """A staff note in a request's case file."""

    __tablename__ = "note"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="support_request.id", index=True)
    author: str
    text: str = Field(sa_type=EncryptedText)
    created_at: datetime = _at()


class Handoff(SQLModel, table=True):
    """A conversation handed to staff; at most one is open per identity."""

    __tablename__ = "handoff"
    __table_args__ = (
        # Enforced by the database so that two racing messages cannot open two.
        sa.Index(
            "ix_handoff_one_open_per_identity",
            "identity_id",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="channel_identity.id", index=True)
    reason: str  # requested | keyword | misunderstood | field_errors | crisis | low_rating
    urgent: bool = False
    status: str = HANDOFF_OPEN
    opened_at: datetime = _at()
    closed_at: datetime | None = _at(nullable=True)
    # Staff rows are deactivated, never deleted, so these keep naming the person.
    claimed_by: int | None = Field(default=None, foreign_key="staff.id")
    claimed_at: datetime | None = _at(nullable=True)
    closed_by: int | None = Field(default=None, foreign_key="staff.id")  # None: the beneficiary
    request_id: int | None = Field(default=None, foreign_key="support_request.id")


class Staff(SQLModel, table=True):
    """A staff member: who claims handoffs, reviews requests and signs case-file entries."""

    __tablename__ = "staff"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN (" + ", ".join(f"'{role}'" for role in StaffRole) + ")", name="role"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True)  # lowercase; status changes and notes quote it
    role: str
    # Telegram user ids exceed 32 bits. Unique so a reply in the staff group names one person.
    telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger, unique=True)
    password_hash: str | None = None  # set by the dashboard; None: cannot log in there
    active: bool = True
    created_at: datetime = _at()


class StaffPost(SQLModel, table=True):
    """A message posted to the staff group about a handoff: a reply to it goes to that handoff."""

    __tablename__ = "staff_post"

    # The channel's own reference, e.g. "tg:-100123:456" (chat and message id).
    platform_message_id: str = Field(primary_key=True)
    handoff_id: int = Field(foreign_key="handoff.id", index=True)
    created_at: datetime = _at()


FOLLOWUP_PENDING = "pending"
FOLLOWUP_DONE = "done"
FOLLOWUP_CANCELLED = "cancelled"
FOLLOWUP_DROPPED = "dropped"  # could not be sent in time: too old to send


class FollowUp(SQLModel, table=True):
    """A proactive action due at a time: the truth behind the scheduler's jobs.

    ``key`` is derived from what it is about (``rating_prompt:request:12``), so
    scheduling the same thing again replaces it and finishing a matter cancels it.
    """

    __tablename__ = "followup"
    __table_args__ = (
        sa.Index("ix_followup_status_due_at", "status", "due_at"),
        # One person's pending ones (a rating cancels their prompts): by the status index
        # alone SQLite would go through every pending follow-up.
        sa.Index("ix_followup_identity_id_status", "identity_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    kind: str
    identity_id: int | None = Field(default=None, foreign_key="channel_identity.id")
    request_id: int | None = Field(default=None, foreign_key="support_request.id", index=True)
    handoff_id: int | None = Field(default=None, foreign_key="handoff.id")
    due_at: datetime = _at()
    status: str = FOLLOWUP_PENDING
    attempts: int = 0
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _at()
    done_at: datetime | None = _at(nullable=True)


class PrivacyKey(SQLModel, table=True):
    """A key personal data is encrypted under, by its id and check value (never the key):
    start-up refuses a key this database does not know, rather than read garbage."""

    __tablename__ = "privacy_key"

    key_id: str = Field(primary_key=True)
    check_value: str
    created_at: datetime = _at()


class AuditEntry(SQLModel, table=True):
    """One staff action, as the audit log keeps it: who, what, on what, when."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    username: str | None = None
    action: str
    target: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _at(index=True)


class StaffSession(SQLModel, table=True):
    """A dashboard login: the cookie holds a random token, the table only its hash."""

    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    csrf_token: str
    created_at: datetime = _at()
    expires_at: datetime = _at()


class LoginCounter(SQLModel, table=True):
    """Dashboard login attempts under one key (an account, an account from one address, an
    address), counted before the password is checked, so that a restart forgets nothing."""

    __tablename__ = "login_counter"

    key: str = Field(primary_key=True)  # "account:amal", "pair:amal|10.0.0.7", "address:…"
    attempts: int = 0  # admitted since the last success (or since a day of quiet)
    next_at: datetime | None = _at(nullable=True)  # no attempt admitted before this
    last_at: datetime = _at()
    succeeded_at: datetime | None = _at(nullable=True)  # of a pair: its last good password


class StoredMedia(SQLModel, table=True):
    """An attachment fetched from a platform and kept in the media folder: whose, how big,
    so that each sender's share of the disk can be bounded."""

    __tablename__ = "stored_media"
    __table_args__ = (
        sa.Index("ix_stored_media_identity_id_created_at", "identity_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(foreign_key="channel_identity.id")
    reference: str = Field(unique=True)  # media/<name>, as the message and case file hold it
    content_type: str
    size: int
    created_at: datetime = _at()


class KnowledgeEntryRow(SQLModel, table=True):
    """One entry of the charity's knowledge base: a question, its answer, other phrasings."""

    __tablename__ = "knowledge_entry"

    id: int | None = Field(default=None, primary_key=True)
    question: str
    # The folded question (``flows.knowledge.question_key``): one entry per question.
    question_key: str = Field(unique=True)
    answer: str
    alternatives: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    language: str = "ar"
    topic: str = ""
    position: int = 0  # the order of the file it came from
    created_at: datetime = _at()
    updated_at: datetime = _at()


class KnowledgeRevision(SQLModel, table=True):
    """The knowledge base's one revision counter: every process rebuilds its index when it
    moves. No row yet means the base was never written (the shipped example goes in)."""

    __tablename__ = "knowledge_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = 1
    source: str = "example"  # example | import | dashboard
    updated_at: datetime = _at()


class UnansweredQuestion(SQLModel, table=True):
    """A question beneficiaries asked that the base could not answer, counted by wording."""

    __tablename__ = "knowledge_unanswered"

    id: int | None = Field(default=None, primary_key=True)
    # The keyed hash of the folded wording (a question may tell someone's circumstances):
    # what repeats are counted by.
    question_key: str = Field(unique=True)
    question: str = Field(sa_type=EncryptedText)  # the latest wording, long digit runs masked
    language: str = "ar"
    count: int = 1
    first_asked_at: datetime = _at()
    last_asked_at: datetime = _at(index=True)


class Feedback(SQLModel, table=True):
    """A suggestion, complaint or thanks a beneficiary sent, followed up to an answer.

    ``kind`` is suggestion | complaint | thanks; ``status`` received | in_progress |
    answered | closed (``storage.feedback``). The reference ``FB-`` and the id is set in
    the transaction that stores it, like a request's.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        # Staff lists filter by status and kind; the deadline sweep looks for late ones.
        sa.Index("ix_feedback_status_due_at", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, unique=True)
    kind: str = Field(index=True)
    status: str
    text: str = Field(sa_type=EncryptedText)
    # Photos and documents by reference ({"url", "content_type", "filename"}), as sent.
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_type=EncryptedList)
    request_id: int | None = Field(default=None, foreign_key="support_request.id", index=True)
    may_contact: bool | None = None  # asked of complaints only
    channel: str
    language: str = "ar"
    identity_id: int = Field(foreign_key="channel_identity.id", index=True)
    beneficiary_id: int | None = Field(default=None, foreign_key="beneficiary.id")
    # A staff member thanked by name (their username), and who took the feedback on.
    named_staff: str | None = None
    assigned_to: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = _at()
    updated_at: datetime = _at()
    due_at: datetime | None = _at(nullable=True)  # None: thanks expect no answer
    answered_at: datetime | None = _at(nullable=True)


class FeedbackEvent(SQLModel, table=True):
    """One entry in a feedback's timeline: received, a status change, staff's answer, the
    beneficiary's reply, a note. ``by`` is a staff username, None for the beneficiary or
    the system."""

    __tablename__ = "feedback_event"

    id: int | None = Field(default=None, primary_key=True)
    feedback_id: int = Field(foreign_key="feedback.id", index=True)
    kind: str  # received | status | answer | reply | note
    from_status: str | None = None
    to_status: str | None = None
    by: str | None = None
    text: str | None = Field(default=None, sa_type=EncryptedText)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_type=EncryptedList)
    created_at: datetime = _at()


class FeedbackPost(SQLModel, table=True):
    """A staff group post about a feedback (its announcement, its overdue alert): a reply
    to it answers that feedback."""

    __tablename__ = "feedback_post"

    platform_message_id: str = Field(primary_key=True)  # "tg:<chat>:<message>"
    feedback_id: int = Field(foreign_key="feedback.id", index=True)
    created_at: datetime = _at()


class Appointment(SQLModel, table=True):
    """An interview with the social researcher at a branch, or a field visit to a home.

    An interview (``kind`` interview) holds one of its slot's places: ``place_no`` from
    0 to ``capacity`` - 1, unique per branch and start, so the database itself refuses
    a place given twice; a cancelled interview gives its place back (``place_no`` NULL).
    A field visit (``kind`` visit) holds no place. Statuses and the reference ``APT-``
    and the id are in ``storage.appointments``.
    """

    __tablename__ = "appointment"
    __table_args__ = (
        sa.UniqueConstraint("branch", "starts_at", "place_no"),
        sa.CheckConstraint(
            "place_no IS NULL OR (place_no >= 0 AND place_no < capacity)",
            name="place_within_capacity",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, unique=True)
    kind: str  # interview | visit
    status: str
    branch: str | None = None
    starts_at: datetime = _at(index=True)
    ends_at: datetime = _at()
    place_no: int | None = None
    capacity: int = 1
    identity_id: int | None = Field(default=None, foreign_key="channel_identity.id", index=True)
    request_id: int | None = Field(default=None, foreign_key="support_request.id", index=True)
    # The staff member who comes (a visit) or receives (an interview), by username.
    staff_username: str | None = None
    channel: str | None = None
    language: str = "ar"
    note: str | None = Field(default=None, sa_type=EncryptedText)  # staff's, on settling
    created_at: datetime = _at()
    updated_at: datetime = _at()


class PrivateMessage(SQLModel, table=True):
    """A message about a complaint (the beneficiary's words, the bot's replies, the answer):
    kept out of case files, which every role reads; managers read it on the feedback."""

    __tablename__ = "private_message"

    message_id: int = Field(primary_key=True, foreign_key="message.id")
    created_at: datetime = _at()
