"""Answering staff's question about a request (status ``needs_info``): text, files or both.

When staff move a request to needs_info, the engine sends the notice with the question
(``flows.status_notice``) and puts the conversation here with ``ask_needs_info``.
``data["needs_info_reference"]`` names the request and ``data["needs_info_question"]``
keeps the question when the engine gave it. The answer becomes an ``AddCaseNote``.
``0`` leaves and keeps both keys: the question stays open, and sending the reference
from the menu comes back here while the request still needs information.
"""

from __future__ import annotations

from typing import Final

from flows.catalogue import text
from flows.status import find_reference
from flows.steps import (
    FlowDeclaration,
    Step,
    goto,
    lead_with,
    refuse,
    say,
    sound,
    stay,
    str_in,
)
from flows.text import visible
from flows.types import (
    AddCaseNote,
    ConversationState,
    OutboundMessage,
    Transition,
    Turn,
)
from flows.validation import Invalid, is_document, takes_documents

FLOW = "needs_info"
REFERENCE = "needs_info_reference"
QUESTION = "needs_info_question"
ANSWER_MAX = 2000

# A staff member already talks with a beneficiary in a handoff: the question is theirs too.
_HANDOFF_FLOW = "handoff"


def ask_needs_info(
    state: ConversationState, reference: str, question: str | None = None
) -> ConversationState:
    """The conversation waiting for the answer to staff's question about ``reference``.

    Whatever flow was in progress is left (an intake draft is kept, as on ``0``). In a
    handoff the conversation stays with the staff member and only remembers the
    question, so that it can be answered from the menu afterwards. A reference that is
    not a non-empty string leaves the state as it was.

    Args:
        question: staff's question (the status note), shown again when the beneficiary
            switches language or comes back to answer.
    """
    state = sound(state)
    if not isinstance(reference, str) or not reference.strip():
        return state
    asked = question.strip() if isinstance(question, str) and question.strip() else None
    changes = {REFERENCE: reference.strip(), QUESTION: asked}
    if state.flow == _HANDOFF_FLOW:
        return stay(state, **changes)
    # What an interrupted flow left behind goes; the intake draft stays on purpose.
    return goto(state, FLOW, "answer", rating_score=None, verify_reference=None, **changes)


def pending(state: ConversationState) -> str | None:
    """The reference whose question still waits for this conversation's answer, if any."""
    return str_in(state.data, REFERENCE)


def still_open(turn: Turn, number: int) -> bool:
    """Whether ``REQ-number`` is the sender's own request still waiting for their answer."""
    waiting = pending(turn.state)
    if waiting is None or find_reference(waiting) != number:
        return False
    return any(
        find_reference(r.reference) == number and r.status == FLOW for r in turn.lookup.requests
    )


def resume(turn: Turn, state: ConversationState) -> Transition:
    """Back to the open question, from the menu."""
    new = goto(state, FLOW, "answer")
    return Transition(new, ask_answer(turn, new))


def ask_answer(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    language = state.language
    key = "needs_info.ask" if takes_documents(turn.lookup.media) else "needs_info.ask_text"
    message = say(language, key, reference=pending(state) or "")
    question = str_in(state.data, QUESTION)
    if question is None:
        return (message,)
    return lead_with(text(language, "notice.question", question=question), (message,))


def answer(turn: Turn) -> Transition:
    """Text (1-2000 characters), photos and PDFs, or both: a note on the case."""
    state, language = turn.state, turn.state.language
    reference = pending(state)
    if reference is None:  # the router sends such a state to the menu; stay safe anyway
        return Transition(goto(state, "menu", "choose"), (say(language, "common.back_hint"),))
    said = visible(turn.message.text)
    files = tuple(m for m in turn.message.media if is_document(m.content_type))
    skipped = len(turn.message.media) - len(files)
    if len(said) > ANSWER_MAX:
        reason = Invalid("needs_info.invalid.too_long", {"count": len(said), "max": ANSWER_MAX})
        return refuse(turn, reason)
    if not said and not files:
        if skipped:
            key = "needs_info.invalid.file_type"
        elif takes_documents(turn.lookup.media):
            key = "needs_info.invalid.empty"
        else:
            key = "needs_info.invalid.empty_text"
        return refuse(turn, Invalid(key))
    new = goto(state, "menu", "choose", **{REFERENCE: None, QUESTION: None})
    lines = [text(language, "needs_info.received", reference=reference)]
    if skipped:
        lines.append(text(language, "needs_info.skipped_files", count=skipped))
    reply = OutboundMessage("\n".join(lines), language)
    return Transition(new, (reply,), (AddCaseNote(reference, said, files),))


STEPS: Final = {
    "answer": Step(ask_answer, answer, free_text=True, takes_media=True),
}
# An answer to no known question has nothing to attach it to: back to the menu.
DECLARATION: Final = FlowDeclaration(FLOW, STEPS, expects=(REFERENCE,))
