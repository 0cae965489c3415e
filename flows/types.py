"""Neutral types shared by flows, channels and storage: messages, state, turns and effects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, Protocol

# Re-exported: channels clean what they build besides messages (the staff group's updates).
from flows.cleaning import clean_line as clean_line
from flows.cleaning import clean_text as clean_text

Language = Literal["ar", "en"]
LANGUAGES: tuple[Language, ...] = ("ar", "en")


@dataclass(frozen=True, slots=True)
class Address:
    """Where a beneficiary is reached: a channel and that channel's user id.

    Channel names are persisted (lowercase snake_case, each channel module's ``SPEC``):
    never renamed without a migration.

    For whatsapp and sms the user id is the E.164 phone number (``+9665...``), for
    telegram the chat id, for web the anonymous session id, for console any label.
    """

    channel: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Media:
    """An attachment a beneficiary sent (photo or document), by reference."""

    url: str
    content_type: str
    filename: str | None = None

    def __post_init__(self) -> None:
        for name in ("url", "content_type", "filename"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, clean_line(value))


@dataclass(frozen=True, slots=True)
class Location:
    """A place a beneficiary shared (WhatsApp and Telegram can send one)."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a beneficiary, whatever the channel."""

    address: Address
    received_at: datetime
    text: str = ""
    payload: str | None = None  # a button's payload, when the platform has buttons
    media: tuple[Media, ...] = ()
    platform_message_id: str | None = None  # unique per channel: redeliveries are dropped
    location: Location | None = None

    def __post_init__(self) -> None:
        # Cleaned where every channel builds it, before anything stores or matches it
        # (flows/cleaning.py); a payload that cleans to nothing is no payload.
        if isinstance(self.text, str):
            object.__setattr__(self, "text", clean_text(self.text))
        if isinstance(self.payload, str):
            object.__setattr__(self, "payload", clean_line(self.payload) or None)
        if isinstance(self.platform_message_id, str):
            object.__setattr__(self, "platform_message_id", clean_line(self.platform_message_id))


@dataclass(frozen=True, slots=True)
class Choice:
    """One numbered option; ``payload`` is what the beneficiary sends to pick it."""

    payload: str
    label: str


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """An approved template (WhatsApp outside the 24-hour window), by kind."""

    kind: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to a beneficiary; channels decide how to draw ``choices``.

    ``inline`` asks for buttons attached to the message (ratings) rather than a
    reply keyboard; text channels draw both as numbered lines.
    """

    text: str
    language: Language
    choices: tuple[Choice, ...] = ()
    inline: bool = False
    template: TemplateRef | None = None


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What the engine stores between two messages of one conversation.

    ``data`` must stay JSON-serialisable: it is persisted as is.
    """

    flow: str = "menu"
    step: str = "start"
    data: Mapping[str, Any] = field(default_factory=dict)
    language: Language = "ar"


@dataclass(frozen=True, slots=True)
class Need:
    """A kind of support the charity offers, as configured in ``organization.needs``."""

    key: str
    ar: str
    en: str

    def label(self, language: Language) -> str:
        return self.ar if language == "ar" else self.en


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """When one branch receives interviews (``[[appointments.hours]]``), in local time.

    ``weekdays`` counts Monday as 0 (Python's ``date.weekday``); ``capacity`` is the
    number of interviews held at once.
    """

    branch: str
    weekdays: frozenset[int]
    start: time
    end: time
    capacity: int = 1


@dataclass(frozen=True, slots=True)
class AppointmentRules:
    """The ``[appointments]`` configuration as the flows read it (``flows.slots``)."""

    hours: tuple[OpeningHours, ...] = ()
    slot_minutes: int = 30
    days_ahead: int = 14
    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=2))
    closed_dates: tuple[date, ...] = ()


# The version of the built-in privacy notice (the catalogue's "privacy.notice"), asked
# unless the charity configures another version, or none (an explicit empty value).
BUILT_IN_NOTICE = "1"


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """The part of the configuration the flows read."""

    organization_name: str = "Tawasul"
    needs: tuple[Need, ...] = ()
    decision_days: int = 14
    timezone: str = "Asia/Riyadh"
    handoff_keywords: tuple[str, ...] = ()
    crisis_words: tuple[str, ...] = ()
    hotline_text: str = ""
    phone: str = ""  # the charity's number, for knowledge base answers
    # "sun-thu 08:00-16:00": read by flows.hours, told when a person is asked for.
    working_hours: str = "sun-thu 08:00-16:00"
    # Feedback is answered within this many working days (Sunday to Thursday), the
    # charity's holidays (local dates) not counted.
    feedback_answer_days: int = 5
    holidays: tuple[date, ...] = ()
    appointments: AppointmentRules = AppointmentRules()
    # The privacy notice asked before an intake (Saudi PDPL): its version ("" asks none),
    # the link to its full text, and how many days data is kept after a request closes.
    notice_version: str = BUILT_IN_NOTICE
    notice_url: str = ""
    retention_days: int = 5 * 365


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """A support request as the status flow may show it to its own applicant."""

    reference: str
    status: str
    need: str
    created_at: datetime
    decision_due_at: datetime


@dataclass(frozen=True, slots=True)
class Applicant:
    """Someone this sender filed a request for before, as the sender gave them: the
    next request may be for them again ("لمن هذا الطلب؟")."""

    name: str
    national_id: str


@dataclass(frozen=True, slots=True)
class OtherRequest:
    """A request filed from another phone or channel that this sender asked about.

    Shown only after the sender proves the second factor: the last four digits of the
    applicant's national ID.
    """

    summary: RequestSummary
    national_id_last4: str


Outcome = Literal["sure", "close", "none"]


@dataclass(frozen=True, slots=True)
class KnowledgeEntry:
    """One entry of the charity's knowledge base, as staff wrote it."""

    id: int
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    language: Language = "ar"
    topic: str = ""


@dataclass(frozen=True, slots=True)
class KnowledgeMatch:
    """What the base has for a question: one entry when sure, candidates when close."""

    outcome: Outcome
    entries: tuple[KnowledgeEntry, ...] = ()
    confidence: float = 0.0


class KnowledgeLookup(Protocol):
    """The charity's knowledge base as a step may ask it (``flows.knowledge.KnowledgeIndex``)."""

    def ask(self, text: str, language: Language | None = None) -> KnowledgeMatch: ...

    def entry(self, entry_id: int) -> KnowledgeEntry | None: ...


@dataclass(frozen=True, slots=True)
class AppointmentSummary:
    """One of the sender's own appointments still to come (an interview or a visit)."""

    reference: str
    kind: str  # interview | visit
    status: str
    branch: str | None
    starts_at: datetime
    staff: str | None = None  # who comes (a visit)


@dataclass(frozen=True, slots=True)
class AppointmentBook:
    """What the appointments flow reads: places taken per (branch, start in UTC) within
    the booking window, and the sender's own appointments still to come, soonest first."""

    taken: Mapping[tuple[str, datetime], int] = field(default_factory=dict)
    mine: tuple[AppointmentSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class Lookup:
    """Read-only facts the engine loads before a step.

    ``requests`` holds only the sender's own requests, newest first.
    ``others`` holds the requests named by ``flows.references_asked`` that this sender
    did not file (nothing when none exists).
    ``sender_phone`` is the E.164 number the message came from (WhatsApp, SMS).
    ``opted_out`` tells that this identity asked for no proactive messages (STOP).
    ``knowledge`` is the charity's knowledge base, ready to be asked (None: no base).
    ``media`` holds the kinds of attachment the sender's channel carries (``image``,
    ``document``…), none on a text-only channel.
    ``appointments`` is loaded only where the appointments flow may read it.
    ``applicants`` holds the people this sender filed requests for (from its own requests
    only, never another sender's), oldest first, loaded only where the intake may ask
    whom a request is for (``flows.needs_applicants``).
    """

    requests: tuple[RequestSummary, ...] = ()
    sender_phone: str | None = None
    others: tuple[OtherRequest, ...] = ()
    opted_out: bool = False
    knowledge: KnowledgeLookup | None = None
    media: frozenset[str] = frozenset()
    appointments: AppointmentBook | None = None
    applicants: tuple[Applicant, ...] = ()


@dataclass(frozen=True, slots=True)
class Turn:
    """Everything a step may look at."""

    message: InboundMessage
    state: ConversationState
    now: datetime
    lookup: Lookup
    settings: FlowSettings


# Effects: what a step asks the engine to do, described as data.


@dataclass(frozen=True, slots=True)
class SaveIntake:
    """Store a signed support request.

    ``answers`` holds name, national_id, mobile (E.164), city, need (key) and
    description. The engine adds the channel and message id of the signature and
    puts ``reference`` (``REQ-000123``) into the state's data before resuming.
    ``consent`` is the privacy notice the applicant agreed to before the intake:
    ``version``, ``at`` (ISO 8601), ``channel`` and ``message_id`` (None: no notice asked).
    """

    answers: Mapping[str, str]
    documents: tuple[Media, ...]
    decision_due_at: datetime
    signed_at: datetime
    consent: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RecordRating:
    """Store a satisfaction rating (1-5) with an optional comment."""

    score: int
    comment: str | None
    context: str = "service"  # service | handoff
    request_reference: str | None = None


@dataclass(frozen=True, slots=True)
class OpenHandoff:
    """Ask for a staff member to take over the conversation."""

    reason: str  # requested | keyword | misunderstood | field_errors | crisis | low_rating
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class CloseHandoff:
    """The beneficiary left the handoff (sent 0)."""


@dataclass(frozen=True, slots=True)
class AddCaseNote:
    """The beneficiary answered staff's question about a request (status ``needs_info``).

    The engine stores ``text`` on the case as a note from the beneficiary (it may be
    empty when only files were sent) and ``media`` as the request's documents, and,
    when the request still needs information, moves it back to ``under_review``.
    """

    reference: str
    text: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """A low rating (1 or 2): staff should call the beneficiary to learn how to improve.

    The engine opens a callback task for staff; the rating itself comes as a
    ``RecordRating`` in the same transition.
    """

    score: int
    context: str  # service | handoff, as in RecordRating
    request_reference: str | None = None


@dataclass(frozen=True, slots=True)
class SetOptOut:
    """The beneficiary said STOP (``opted_out``) or START again (not ``opted_out``).

    While opted out, this identity gets no proactive message (notices, reminders,
    rating prompts); replies to what they write still go.
    """

    opted_out: bool


@dataclass(frozen=True, slots=True)
class RecordUnanswered:
    """A question the knowledge base could not answer (or whose answer did not help):
    counted for staff to add. ``question`` has long digit runs masked already."""

    question: str
    language: Language


@dataclass(frozen=True, slots=True)
class SaveFeedback:
    """Store a suggestion, complaint or thanks (``kind``).

    ``request_reference`` is one of the sender's own requests (the engine checks it);
    ``may_contact`` is asked of complaints only; ``due_at`` is None for thanks. The
    engine puts ``feedback_reference`` (``FB-000012``) into the state's data and resumes.
    """

    kind: str
    text: str
    attachments: tuple[Media, ...] = ()
    request_reference: str | None = None
    may_contact: bool | None = None
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AddFeedbackReply:
    """The beneficiary's reply to staff's answer to their feedback ``reference``."""

    reference: str
    text: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True, slots=True)
class KeepPrivate:
    """This turn's messages (the one received, the replies) are about a complaint: kept out
    of case files, which every role reads (a complaint may be about the agent reading)."""


@dataclass(frozen=True, slots=True)
class BookAppointment:
    """Take a place of ``branch``'s slot at ``starts_at`` (aware UTC) for an interview,
    or move the sender's own interview ``moving`` there. The engine puts
    ``appointment_reference`` into the state's data, or ``appointment_taken`` (the start,
    ISO) when the last place went to someone else, and resumes."""

    branch: str
    starts_at: datetime
    moving: str | None = None


@dataclass(frozen=True, slots=True)
class CancelAppointment:
    """Cancel the sender's own interview ``reference`` (its place is given back)."""

    reference: str


@dataclass(frozen=True, slots=True)
class AnswerVisit:
    """The beneficiary's answer to a field visit staff proposed: confirmed, or another
    time asked for (which goes back to staff)."""

    reference: str
    confirmed: bool


@dataclass(frozen=True, slots=True)
class ReadMyData:
    """The sender asked what is held about them: the engine puts ``my_data`` into the
    state's data (their applicant's name, national ID, mobile and city, the requests this
    sender filed with reference, need, status and created_at, the consent of the newest,
    the number of messages kept) and resumes."""


Effect = (
    SaveIntake
    | ReadMyData
    | RecordRating
    | OpenHandoff
    | CloseHandoff
    | AddCaseNote
    | RequestCallback
    | SetOptOut
    | RecordUnanswered
    | SaveFeedback
    | AddFeedbackReply
    | KeepPrivate
    | BookAppointment
    | CancelAppointment
    | AnswerVisit
)


@dataclass(frozen=True, slots=True)
class Transition:
    """What a step returns: replies, the new state and effects.

    With ``resume`` set, the engine performs the effects, merges their results
    into ``state.data`` and runs the new state's step again on the same message
    (used to tell the reference number right after the request is stored).
    """

    state: ConversationState
    replies: tuple[OutboundMessage, ...] = ()
    effects: tuple[Effect, ...] = ()
    resume: bool = False
