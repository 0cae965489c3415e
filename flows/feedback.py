"""Suggestions, complaints and thanks (menu option 6), and the reply to staff's answer.

The beneficiary picks the kind, writes the text (with a photo or document where the
channel carries them), says which of their own requests it is about when they have any,
and, for a complaint, whether staff may contact them. ``SaveFeedback`` stores it; the
engine resumes at ``submitted`` with ``feedback_reference`` to tell the reference and,
for suggestions and complaints, by when to expect an answer.

When staff answer, the engine puts the conversation at ``reply`` (``await_reply``): what
the beneficiary sends next is added to the same feedback (``AddFeedbackReply``).

```mermaid
stateDiagram-v2
    [*] --> kind: menu 6
    kind --> text
    text --> text: a file without words
    text --> about: has requests
    text --> contact: complaint, no requests
    text --> submitted: no requests
    about --> contact: complaint
    about --> submitted
    contact --> submitted
    submitted --> [*]: FB-… told
    [*] --> reply: staff answered
    reply --> [*]: added to FB-…
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Final

from flows.catalogue import text
from flows.dates import format_date, local_time
from flows.status import find_reference
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    bare_number,
    goto,
    need_label,
    pick,
    refuse,
    said_one_of,
    say,
    sound,
    stay,
    str_in,
)
from flows.text import visible
from flows.types import (
    AddFeedbackReply,
    Choice,
    ConversationState,
    InboundMessage,
    KeepPrivate,
    Language,
    Media,
    OutboundMessage,
    SaveFeedback,
    Transition,
    Turn,
)
from flows.validation import Invalid, is_document
from flows.vocabulary import NO, YES

FLOW = "feedback"
KINDS: Final = ("suggestion", "complaint", "thanks")
TEXT_MAX = 2000
MAX_FILES = 3
# Requests offered to choose from: the newest few (the status flow lists them all).
OFFERED_REQUESTS = 5
# Where a photo or document can come from; a text-only channel is not asked for one.
FILE_MEDIA: Final = frozenset({"image", "document"})
# Sunday to Thursday (Monday is 0).
WORKING_WEEKDAYS: Final = frozenset({6, 0, 1, 2, 3})

KIND = "fb_kind"
TEXT = "fb_text"
FILES = "fb_files"
REQUEST = "fb_request"
REFERENCE = "feedback_reference"  # put in by the engine after saving
DUE = "fb_due"
REPLY_TO = "fb_reply_to"
REPLY_PRIVATE = "fb_reply_private"  # the answer replied to is a complaint's
_KEYS = (KIND, TEXT, FILES, REQUEST, DUE)
_NONE = "none"


def answer_due(
    moment: datetime, days: int, holidays: tuple[date, ...] = (), zone: str = "Asia/Riyadh"
) -> datetime:
    """``days`` working days after ``moment`` (Sunday to Thursday, ``holidays`` skipped),
    at the same local time."""
    local = local_time(moment, zone)
    counted = 0
    while counted < max(days, 0):
        local += timedelta(days=1)
        if local.weekday() in WORKING_WEEKDAYS and local.date() not in holidays:
            counted += 1
    return local


# --- entering ---


def start(turn: Turn, state: ConversationState) -> Transition:
    """Menu option 6: which kind of feedback."""
    new = goto(state, FLOW, "kind", **dict.fromkeys(_KEYS))
    return Transition(new, ask_kind(turn, new))


def _kinds(language: Language) -> tuple[Choice, ...]:
    return tuple(Choice(kind, text(language, f"feedback.kind.{kind}")) for kind in KINDS)


def ask_kind(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "feedback.ask.kind", choices=_kinds(state.language)),)


def answer_kind(turn: Turn) -> Transition:
    choice = pick(turn, _kinds(turn.state.language))
    if choice is None:
        return refuse(turn, Invalid("feedback.invalid.kind"), choices=_kinds(turn.state.language))
    new = goto(turn.state, FLOW, "text", **{KIND: choice.payload, FILES: None})
    return Transition(new, ask_text(turn, new))


# --- the text, and files where the channel carries them ---


def _kind(state: ConversationState) -> str:
    kind = str_in(state.data, KIND)
    return kind if kind in KINDS else "suggestion"


def ask_text(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    files = "with_files" if FILE_MEDIA & turn.lookup.media else "text_only"
    key = f"feedback.ask.text.{_kind(state)}"
    line = text(state.language, f"feedback.ask.{files}", max=TEXT_MAX)
    return (OutboundMessage(f"{text(state.language, key)}\n{line}", state.language),)


def _files(state: ConversationState) -> list[dict[str, str]]:
    stored = state.data.get(FILES)
    if not isinstance(stored, list):
        return []
    return [
        f
        for f in stored
        if isinstance(f, dict)
        and isinstance(f.get("url"), str)
        and isinstance(f.get("content_type"), str)
    ]


def _stored(media: Media) -> dict[str, str]:
    return {"url": media.url, "content_type": media.content_type} | (
        {"filename": media.filename} if media.filename else {}
    )


def answer_text(turn: Turn) -> Transition:
    """1 to ``TEXT_MAX`` characters; files kept (up to ``MAX_FILES``) on the way."""
    state = turn.state
    said = visible(turn.message.text)
    sent = [m for m in turn.message.media if is_document(m.content_type)]
    files = (_files(state) + [_stored(m) for m in sent])[:MAX_FILES]
    if len(said) > TEXT_MAX:
        reason = Invalid("feedback.invalid.too_long", {"count": len(said), "max": TEXT_MAX})
        return refuse(turn, reason)
    if not said:
        if sent:  # a photo first, the words next
            new = stay(state, **{FILES: files})
            return Transition(new, (say(state.language, "feedback.file_received"),))
        key = "feedback.invalid.file_type" if turn.message.media else "feedback.invalid.empty"
        return refuse(turn, Invalid(key))
    return _after_text(turn, stay(state, **{TEXT: said, FILES: files}))


def _after_text(turn: Turn, state: ConversationState) -> Transition:
    if turn.lookup.requests:
        new = goto(state, FLOW, "about")
        return Transition(new, ask_about(turn, new))
    return _after_about(turn, state)


# --- which request it is about ---


def _requests(turn: Turn, language: Language) -> tuple[Choice, ...]:
    choices = tuple(
        Choice(
            request.reference,
            f"{request.reference} ({need_label(turn.settings, request.need, language)})",
        )
        for request in turn.lookup.requests[:OFFERED_REQUESTS]
    )
    return (*choices, Choice(_NONE, text(language, "feedback.about.none")))


def ask_about(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    choices = _requests(turn, state.language)
    return (say(state.language, "feedback.ask.about", choices=choices),)


def answer_about(turn: Turn) -> Transition:
    language = turn.state.language
    choices = _requests(turn, language)
    choice = pick(turn, choices)
    if choice is None:
        # A reference typed out counts when it is one of the sender's own.
        number = find_reference(turn.message.text)
        own = [r.reference for r in turn.lookup.requests if find_reference(r.reference) == number]
        if number is None or not own:
            return refuse(turn, Invalid("feedback.invalid.about"), choices=choices)
        choice = Choice(own[0], own[0])
    reference = None if choice.payload == _NONE else choice.payload
    return _after_about(turn, stay(turn.state, **{REQUEST: reference}))


# --- for a complaint: may staff contact them ---


def _yes_no(language: Language) -> tuple[Choice, Choice]:
    return (
        Choice("yes", text(language, "feedback.contact.yes")),
        Choice("no", text(language, "feedback.contact.no")),
    )


def _after_about(turn: Turn, state: ConversationState) -> Transition:
    if _kind(state) == "complaint":
        new = goto(state, FLOW, "contact")
        return Transition(new, ask_contact(turn, new))
    return _save(turn, state, None)


def ask_contact(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    return (say(language, "feedback.ask.contact", choices=_yes_no(language)),)


def answer_contact(turn: Turn) -> Transition:
    language = turn.state.language
    choice = pick(turn, _yes_no(language))
    if choice is not None:
        return _save(turn, turn.state, choice.payload == "yes")
    if said_one_of(turn, YES) or said_one_of(turn, NO):
        return _save(turn, turn.state, said_one_of(turn, YES))
    return refuse(turn, Invalid("feedback.invalid.contact"), choices=_yes_no(language))


# --- saving, and the reference ---


def _save(turn: Turn, state: ConversationState, may_contact: bool | None) -> Transition:
    said = str_in(state.data, TEXT)
    if said is None:  # stored state lost the text: ask for it again
        new = goto(state, FLOW, "text")
        return Transition(new, ask_text(turn, new))
    kind = _kind(state)
    settings = turn.settings
    due = None
    if kind != "thanks":
        due = answer_due(
            turn.now, settings.feedback_answer_days, settings.holidays, settings.timezone
        )
    files = tuple(Media(f["url"], f["content_type"], f.get("filename")) for f in _files(state))
    effect = SaveFeedback(
        kind=kind,
        text=said,
        attachments=files,
        request_reference=str_in(state.data, REQUEST),
        may_contact=may_contact,
        due_at=due,
    )
    changes: dict[str, Any] = {TEXT: None, FILES: None, REQUEST: None}
    changes[DUE] = due.isoformat() if due else None
    new = goto(state, FLOW, "submitted", **changes)
    return Transition(new, (), (effect,), resume=True)


def tell_reference(turn: Turn) -> Transition:
    """After the engine stored it: the reference, and by when an answer comes."""
    state, language, settings = turn.state, turn.state.language, turn.settings
    reference = str_in(state.data, REFERENCE) or ""
    kind = _kind(state)
    due = str_in(state.data, DUE)
    if kind == "thanks" or due is None:
        body = text(language, "feedback.received.thanks", reference=reference)
    else:
        moment = datetime.fromisoformat(due)
        body = text(
            language,
            f"feedback.received.{kind}",
            reference=reference,
            days=settings.feedback_answer_days,
            date=format_date(moment, language, settings.timezone),
        )
    new = goto(state, "menu", "choose", **dict.fromkeys((*_KEYS, REFERENCE)))
    return Transition(new, (OutboundMessage(body, language),))


def ask_submitted(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "common.back_hint"),)


# --- the reply to staff's answer ---


def answered(
    state: ConversationState, reference: str, answer: str, *, private: bool = False
) -> tuple[ConversationState, OutboundMessage]:
    """Staff's answer to feedback ``reference`` as the beneficiary reads it, and the
    conversation waiting for their reply (in a handoff it stays with the staff member).

    Args:
        private: it answers a complaint: the reply is kept out of case files too.
    """
    state = sound(state)
    language = state.language
    message = say(language, "feedback.answer", reference=reference, answer=answer)
    if state.flow == "handoff":
        return state, message
    changes = {REPLY_TO: reference, REPLY_PRIVATE: True if private else None}
    return goto(state, FLOW, "reply", **changes), message


def ask_reply(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    reference = str_in(state.data, REPLY_TO) or ""
    return (say(state.language, "feedback.ask.reply", reference=reference),)


def answer_reply(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    reference = str_in(state.data, REPLY_TO)
    if reference is None:
        return Transition(goto(state, "menu", "choose"), (say(language, "common.back_hint"),))
    said = visible(turn.message.text)
    files = tuple(m for m in turn.message.media if is_document(m.content_type))[:MAX_FILES]
    if len(said) > TEXT_MAX:
        reason = Invalid("feedback.invalid.too_long", {"count": len(said), "max": TEXT_MAX})
        return refuse(turn, reason)
    if not said and not files:
        key = "feedback.invalid.file_type" if turn.message.media else "feedback.invalid.empty"
        return refuse(turn, Invalid(key))
    new = left_reply(state)
    reply = say(language, "feedback.reply_received", reference=reference)
    return Transition(new, (reply,), (AddFeedbackReply(reference, said, files),))


def not_a_reply(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a message sent while a reply to staff's answer waits is a menu number
    rather than a reply (people come back days later and pick from the menu they know)."""
    return state.flow == FLOW and state.step == "reply" and bare_number(message) is not None


def left_reply(state: ConversationState) -> ConversationState:
    """The conversation back at the menu, no reply awaited any more."""
    return goto(state, "menu", "choose", **{REPLY_TO: None, REPLY_PRIVATE: None})


def _private(handle: Callable[[Turn], Transition]) -> Callable[[Turn], Transition]:
    """``handle``, with its turn kept out of case files when it is about a complaint (the
    kind chosen, or the answer replied to): every role reads a case file."""

    def handled(turn: Turn) -> Transition:
        transition = handle(turn)
        data = (turn.state.data, transition.state.data)
        if any(d.get(KIND) == "complaint" or d.get(REPLY_PRIVATE) is True for d in data):
            return dataclasses.replace(transition, effects=(*transition.effects, KeepPrivate()))
        return transition

    return handled


STEPS: Final = {
    "kind": Step(ask_kind, _private(answer_kind)),
    "text": Step(ask_text, _private(answer_text), free_text=True, takes_media=True),
    "about": Step(ask_about, _private(answer_about)),
    "contact": Step(ask_contact, _private(answer_contact)),
    "submitted": Step(ask_submitted, _private(tell_reference)),
    "reply": Step(ask_reply, _private(answer_reply), free_text=True, takes_media=True),
}

DECLARATION: Final = FlowDeclaration(
    FLOW, STEPS, MenuEntry(6, "menu.option.feedback", start), reads_requests=True
)
