"""A conversation driver for flow tests: send a line, get the replies as a text channel shows them.

It does what the engine does, in memory: builds the turn, calls ``flows.respond``,
performs the effects (a saved intake gets ``REQ-000001``, ``REQ-000002``…; an answer to
a needs_info question sends the request back to under_review), resumes when asked, and
keeps the state. ``staff_asks`` and ``staff_closes`` stand for staff actions. The clock
only moves when a test moves it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import flows
from bot.channels import capabilities_of
from flows.knowledge import KnowledgeIndex
from flows.types import (
    AddCaseNote,
    Address,
    Applicant,
    AppointmentBook,
    AppointmentSummary,
    BookAppointment,
    CancelAppointment,
    CloseHandoff,
    ConversationState,
    Effect,
    FlowSettings,
    InboundMessage,
    Location,
    Lookup,
    Media,
    OpenHandoff,
    OtherRequest,
    OutboundMessage,
    ReadMyData,
    RecordRating,
    RequestCallback,
    RequestSummary,
    SaveFeedback,
    SaveIntake,
    Turn,
)

START = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)  # 09:00 in Riyadh, Saturday 21 Nov 2026
PHOTO = Media("https://example.invalid/photo.jpg", "image/jpeg", "id.jpg")
PDF = Media("https://example.invalid/report.pdf", "application/pdf", "report.pdf")
AUDIO = Media("https://example.invalid/voice.ogg", "audio/ogg")

# The answer to the privacy notice asked before a first intake (on by default).
AGREE = "أوافق"

# A whole Arabic intake, from the greeting to the signature, as a beneficiary types it:
# the menu's option, the consent, the eight answers, the documents ("تم") and signature.
INTAKE_AR = (
    "السلام عليكم",
    "١",
    AGREE,
    "محمد أحمد علي الزهراني",
    "١٠٠٠٠٠٠٠٠٨",
    "٠٥٥١٢٣٤٥٦٧",
    "جده",
    "١",
    "نحتاج سلة غذائية للأسرة المكونة من خمسة أفراد",
    "تم",
    "نعم",
)


class Transcript:
    """One beneficiary talking to the flows on one channel."""

    def __init__(
        self,
        settings: FlowSettings | None = None,
        channel: str = "whatsapp",
        sender_phone: str | None = None,
        requests: Sequence[RequestSummary] = (),
        others: Sequence[OtherRequest] = (),
        state: ConversationState | None = None,
        now: datetime = START,
        knowledge: KnowledgeIndex | None = None,
        appointments: AppointmentBook | None = None,
        applicants: Sequence[Applicant] = (),
    ) -> None:
        self.settings = settings or FlowSettings(organization_name="جمعية البر")
        self.sender_phone = sender_phone
        self.address = Address(channel, sender_phone or "user-1")
        self.requests = list(requests)  # the sender's own, newest first
        self.others = tuple(others)  # filed elsewhere; offered only when the flow asks
        self.state = state or ConversationState()
        self.now = now
        self.knowledge = knowledge  # the charity's knowledge base, when the test has one
        # Places taken and the sender's appointments, as the engine would load them; a
        # booking of a start in ``gone`` finds the place taken (someone was quicker).
        self.appointments = appointments or AppointmentBook()
        self.gone: set[datetime] = set()
        # Whom the sender filed for before this transcript; what it files joins them.
        self.applicants = list(applicants)
        self.saved: list[SaveIntake] = []
        self.ratings: list[RecordRating] = []
        self.handoffs: list[OpenHandoff] = []
        self.closed_handoffs = 0
        self.case_notes: list[AddCaseNote] = []
        self.callbacks: list[RequestCallback] = []
        self.effects: list[Effect] = []
        self.replies: tuple[OutboundMessage, ...] = ()
        self.sent: list[InboundMessage] = []  # every message sent, as the channel built it
        self.held: dict[str, object] = {}  # what the engine would read for "my data"
        self._count = 0

    def send(
        self,
        text: str = "",
        media: Iterable[Media] = (),
        payload: str | None = None,
        location: Location | None = None,
    ) -> str:
        """Send one message; the replies drawn as plain text, separated by a blank line."""
        self._count += 1
        message = InboundMessage(
            address=self.address,
            received_at=self.now,
            text=text,
            payload=payload,
            media=tuple(media),
            platform_message_id=f"m{self._count}",
            location=location,
        )
        self.sent.append(message)
        replies: list[OutboundMessage] = []
        for _ in range(3):  # a resumed step never asks to resume again; 3 is a safe bound
            asked = set(flows.references_asked(self.state, message))
            others = tuple(o for o in self.others if _number(o.summary.reference) in asked)
            # Requests, appointments and applicants are loaded only where the engine
            # would load them, so a path the engine's test misses fails here too.
            lookup = Lookup(
                tuple(self.requests) if flows.needs_requests(self.state, message) else (),
                self.sender_phone,
                others,
                knowledge=self.knowledge,
                media=capabilities_of(self.address.channel).media,
                appointments=self.appointments
                if flows.needs_appointments(self.state, message)
                else None,
                applicants=tuple(self.applicants)
                if flows.needs_applicants(self.state, message)
                else (),
            )
            turn = Turn(message, self.state, self.now, lookup, self.settings)
            transition = flows.respond(turn)
            replies += transition.replies
            results = self._perform(transition.effects)
            self.state = transition.state
            if not transition.resume:
                break
            self.state = dataclasses.replace(self.state, data={**self.state.data, **results})
        self.replies = tuple(replies)
        return "\n\n".join(flows.as_plain_text(reply) for reply in replies)

    # --- what staff do; the engine calls these flows functions outside ``respond`` ---

    def staff_asks(self, reference: str, question: str | None = None) -> None:
        """Staff moved ``reference`` to needs_info: wait for the beneficiary's answer."""
        self.state = flows.ask_needs_info(self.state, reference, question)

    def staff_closes(self) -> str:
        """Staff closed the handoff; the replies drawn as ``send`` draws them."""
        self.state, self.replies = flows.close_handoff(self.state)
        return "\n\n".join(flows.as_plain_text(reply) for reply in self.replies)

    def advance(self, **delta: float) -> None:
        """Move the clock, e.g. ``advance(hours=13)``."""
        self.now += timedelta(**delta)

    @property
    def step(self) -> tuple[str, str]:
        return self.state.flow, self.state.step

    def _perform(self, effects: Sequence[Effect]) -> dict[str, str]:
        results: dict[str, str] = {}
        for effect in effects:
            self.effects.append(effect)
            if isinstance(effect, SaveIntake):
                self.saved.append(effect)
                self._filed_for(effect.answers["name"], effect.answers["national_id"])
                reference = f"REQ-{len(self.saved):06d}"
                results["reference"] = reference
                need = effect.answers.get("need", "")
                summary = RequestSummary(
                    reference, "submitted", need, effect.signed_at, effect.decision_due_at
                )
                self.requests.insert(0, summary)
            elif isinstance(effect, RecordRating):
                self.ratings.append(effect)
            elif isinstance(effect, OpenHandoff):
                self.handoffs.append(effect)
            elif isinstance(effect, CloseHandoff):
                self.closed_handoffs += 1
            elif isinstance(effect, AddCaseNote):
                self.case_notes.append(effect)
                self._back_to_review(effect.reference)
            elif isinstance(effect, RequestCallback):
                self.callbacks.append(effect)
            elif isinstance(effect, ReadMyData):
                results["my_data"] = self.held  # type: ignore[assignment]
            elif isinstance(effect, SaveFeedback):
                count = sum(isinstance(e, SaveFeedback) for e in self.effects)
                results["feedback_reference"] = f"FB-{count:06d}"
            elif isinstance(effect, BookAppointment | CancelAppointment):
                results |= self._appointment(effect)
        return results

    def _filed_for(self, name: str, national_id: str) -> None:
        """As the engine reads them: each applicant once, where first filed for, with
        the name last given."""
        found = [n for n, a in enumerate(self.applicants) if a.national_id == national_id]
        if found:
            self.applicants[found[0]] = Applicant(name, national_id)
        else:
            self.applicants.append(Applicant(name, national_id))

    def _appointment(self, effect: BookAppointment | CancelAppointment) -> dict[str, str]:
        """As the engine does, in memory: a place taken (or found gone), or given back."""
        book = self.appointments
        taken = dict(book.taken)
        mine = list(book.mine)
        if isinstance(effect, CancelAppointment):
            old = next(a for a in mine if a.reference == effect.reference)
            mine.remove(old)
            taken[(old.branch or "", old.starts_at)] -= 1
            self.appointments = AppointmentBook(taken, tuple(mine))
            return {}
        if effect.starts_at in self.gone:
            return {"appointment_taken": effect.starts_at.isoformat()}
        key = (effect.branch, effect.starts_at)
        taken[key] = taken.get(key, 0) + 1
        count = sum(isinstance(e, BookAppointment) for e in self.effects)
        reference = effect.moving or f"APT-{count:06d}"
        old = next((a for a in mine if a.reference == effect.moving), None)
        if old is not None:
            mine.remove(old)
            taken[(old.branch or "", old.starts_at)] -= 1
        mine.append(AppointmentSummary(reference, "interview", "booked", *key))
        self.appointments = AppointmentBook(taken, tuple(mine))
        return {"appointment_reference": reference}

    def _back_to_review(self, reference: str) -> None:
        """As the engine does: an answered question sends the request back to review."""
        for n, request in enumerate(self.requests):
            if request.reference == reference and request.status == "needs_info":
                self.requests[n] = dataclasses.replace(request, status="under_review")


Line = str | tuple[str, Sequence[Media]]
Script = Sequence[tuple[Line, Sequence[str]]]


def play(transcript: Transcript, script: Script) -> str:
    """Send each line and check each expected fragment is in its reply; the last reply."""
    reply = ""
    for line, expected in script:
        said, media = (line, ()) if isinstance(line, str) else line
        reply = transcript.send(said, media=media)
        for fragment in expected:
            assert fragment in reply, f"after {said[:60]!r}, expected {fragment!r} in:\n{reply}"
    return reply


def _number(reference: str) -> int:
    return int(reference.removeprefix("REQ-"))
