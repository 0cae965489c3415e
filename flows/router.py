"""The router: words that work everywhere, checked in a fixed order before the current step.

1. crisis words: urgent handoff, in every state (safety first);
   STOP / إيقاف (the whole message): no more proactive messages; START / بدء after it:
   them again (both in every state, and confirmed; the conversation stays where it was);
2. in a handoff only ``0`` / menu words leave; everything else goes to staff;
3. ``0``, menu words, greetings: the main menu;
4. "English" / "عربي": switch language and ask the current question again;
5. staff keywords: a handoff (in free-text steps only as the whole message);
6. ``REQ-…`` while in the menu: that request's status (or back to its open question);
then the current flow's step; when a step that takes no free text refuses a message,
the knowledge base may answer it (when sure) before the step's question is asked again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from flows import (
    appointments,
    feedback,
    handoff,
    inquiry,
    intake,
    menu,
    my_data,
    needs_info,
    registry,
    status,
)
from flows.catalogue import text
from flows.steps import Step, heard, int_in, staff_keywords, updated
from flows.text import any_phrase, words
from flows.types import (
    LANGUAGES,
    ConversationState,
    InboundMessage,
    Language,
    Location,
    OutboundMessage,
    SetOptOut,
    Transition,
    Turn,
)
from flows.vocabulary import (
    GREETINGS,
    LANGUAGE_WORDS,
    MENU_WORDS,
    SALAM_WORDS,
    START_WORDS,
    STOP_WORDS,
)

logger = logging.getLogger(__name__)

# Every flow by name, from the declarations (flows.registry); the menu is the hub.
DECLARATIONS: Final = registry.by_name((menu.DECLARATION, *registry.DECLARED))
FLOWS: Final[Mapping[str, Mapping[str, Step]]] = {
    name: declaration.steps for name, declaration in DECLARATIONS.items()
}


def respond(turn: Turn) -> Transition:
    """Answer one inbound message: the new state, the replies and the effects.

    Never raises: a state or message it cannot make sense of leads back to the menu.
    """
    try:
        turn = _sane(turn)
        transition = _route(turn)
    except Exception:  # the last line of defence: a beneficiary never meets a traceback
        logger.exception("flow step failed; back to the menu")
        transition = _recover(turn)
    return _seen(transition, turn.now)


def _left_to_menu(state: ConversationState, message: InboundMessage) -> ConversationState | None:
    """The menu, for a menu number sent where a step leaves those to it (a reply to staff's
    answer awaited, people come back days later; an answer's "did this help?", answers
    say "send 4 to talk to a staff member"); None anywhere else."""
    if feedback.not_a_reply(state, message):
        return feedback.left_reply(state)
    if inquiry.menu_number(state, message):
        return inquiry.left(state)
    return None


def _routed(state: ConversationState, message: InboundMessage) -> ConversationState:
    """The state the router handles ``message`` in, for what the engine loads for it."""
    at_menu = _left_to_menu(state, message)
    return state if at_menu is None else at_menu


def needs_requests(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a step may show the sender's requests (its flow declares it reads them),
    so the engine can skip loading them on every other message."""
    state = _routed(state, message)
    declaration = DECLARATIONS.get(state.flow) if isinstance(state.flow, str) else None
    return declaration is None or declaration.reads_requests


def needs_applicants(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a step may ask whom a new request is for (the sender's earlier applicants),
    so the engine loads them only then. A stored state the router would send back to
    the menu counts as the menu."""
    state = _routed(state, message)
    flow, step = state.flow, state.step
    declaration = DECLARATIONS.get(flow) if isinstance(flow, str) else None
    data = state.data if isinstance(state.data, Mapping) else {}
    if declaration is None or not declaration.accepts(step, data):
        flow, step = menu.FLOW, "start"
    return intake.reads_applicants(str(flow), str(step), message)


def needs_appointments(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a step may read the sender's appointments (``appointments.needs_book``)."""
    return appointments.needs_book(_routed(state, message), message)


def takes_media(state: ConversationState) -> bool:
    """Whether the step in ``state`` keeps attachments (intake documents, an answer to
    staff's question, a conversation with staff): anywhere else they are not fetched."""
    flow = FLOWS.get(state.flow) if isinstance(state.flow, str) else None
    step = flow.get(state.step) if flow is not None and isinstance(state.step, str) else None
    return step is not None and step.takes_media


def _route(turn: Turn) -> Transition:
    state, said = turn.state, heard(turn)
    tokens = words(said)
    spoken = " ".join(tokens)
    if state.flow == intake.FLOW and state.step == "submitted":
        return intake.tell_reference(turn)  # the engine's resume after saving: finish it
    if state.flow == feedback.FLOW and state.step == "submitted":
        return feedback.STEPS["submitted"].handle(turn)
    if state.flow == appointments.FLOW and state.step == "booked":
        return appointments.tell_booked(turn)
    if state.flow == my_data.FLOW:
        return my_data.show(turn)
    if any_phrase(tokens, turn.settings.crisis_words):
        return handoff.open_urgent(turn, state)
    starts = spoken in START_WORDS or said.strip().startswith("/start")
    if spoken in STOP_WORDS or (starts and turn.lookup.opted_out):
        return _opt_out(state, opted_out=not starts)
    wants_menu = spoken in MENU_WORDS or said.strip().startswith("/start")
    if state.flow == handoff.FLOW:
        if wants_menu:
            return menu.show(turn, state, after_handoff=True)
        return FLOWS[state.flow][state.step].handle(turn)
    if wants_menu or spoken in GREETINGS:
        salam = bool(SALAM_WORDS.intersection(tokens))
        greeted = spoken in GREETINGS or state.step == "start"
        return menu.show(turn, state, welcome=greeted, salam=salam)
    if spoken in LANGUAGE_WORDS:
        return _switch_language(turn, state, LANGUAGE_WORDS[spoken])
    if appointments.asks_mine(turn):
        return appointments.show_mine(turn, state)
    if my_data.asks(turn):
        return my_data.read(turn, state)
    step = FLOWS[state.flow][state.step]
    if any_phrase(tokens, staff_keywords(turn.settings), whole=step.free_text):
        # After three refused answers the keyword is the offer taken up: staff should know.
        reason = "field_errors" if int_in(state.data, "bad_answers") >= 3 else "keyword"
        return handoff.open_handoff(turn, state, reason)
    if state.flow == menu.FLOW:
        reference = status.find_reference(said)
        if reference is not None:
            if needs_info.still_open(turn, reference):
                return needs_info.resume(turn, state)
            return status.show_request(turn, state, reference)
    at_menu = _left_to_menu(state, turn.message)
    if at_menu is not None:
        return menu.answer_choose(dataclasses.replace(turn, state=at_menu))
    if intake.stale(turn):
        return intake.offer_continue(turn, state)
    transition = step.handle(turn)
    if not step.free_text and _refused(state, transition):
        answered = inquiry.aside(turn)
        if answered is not None:  # a question, not an answer: answer it, ask again
            return Transition(state, (answered, *step.prompt(turn, state)))
    return transition


def needs_knowledge(state: ConversationState, message: InboundMessage) -> bool:
    """Whether a step may ask the knowledge base about ``message`` (words, not in a
    handoff, or any message while choosing among its entries), so the engine can skip
    loading it on every other message."""
    if state.flow == inquiry.FLOW:
        return True
    return state.flow != handoff.FLOW and inquiry.worth_asking(message.text or "")


def _refused(state: ConversationState, transition: Transition) -> bool:
    """The step stayed where it was and counted a bad answer: it could not use the message."""
    after = transition.state
    return (
        after.flow == state.flow
        and after.step == state.step
        and int_in(after.data, "bad_answers") > int_in(state.data, "bad_answers")
    )


def _opt_out(state: ConversationState, *, opted_out: bool) -> Transition:
    """STOP or START: confirmed, and the conversation stays where it was."""
    key = "optout.stopped" if opted_out else "optout.resumed"
    confirmation = OutboundMessage(text(state.language, key), state.language)
    return Transition(state, (confirmation,), (SetOptOut(opted_out),))


def _switch_language(turn: Turn, state: ConversationState, language: Language) -> Transition:
    new = dataclasses.replace(state, language=language)
    if new.flow == menu.FLOW:
        return menu.show(turn, new, welcome=new.step == "start")
    return Transition(new, FLOWS[new.flow][new.step].prompt(turn, new))


def _sane(turn: Turn) -> Turn:
    """The turn with a state and message the steps can rely on.

    Stored state may come from an older version (a renamed step) or be damaged: an
    unknown flow or step goes back to the menu, keeping the data (and any draft).
    """
    state, message = turn.state, turn.message
    data = dict(state.data) if isinstance(state.data, Mapping) else {}
    language: Language = state.language if state.language in LANGUAGES else "ar"
    declaration = DECLARATIONS.get(state.flow) if isinstance(state.flow, str) else None
    known = declaration is not None and declaration.accepts(state.step, data)
    flow, step = (state.flow, state.step) if known else (menu.FLOW, "start")
    if not _sane_message(message):  # built as it should be: cleaned once, at the boundary
        message = InboundMessage(
            address=message.address,
            received_at=message.received_at,
            text=message.text if isinstance(message.text, str) else "",
            payload=message.payload if isinstance(message.payload, str) else None,
            media=tuple(message.media or ()),
            platform_message_id=message.platform_message_id,
            location=message.location if isinstance(message.location, Location) else None,
        )
    clean_state = ConversationState(flow=flow, step=step, data=data, language=language)
    return dataclasses.replace(turn, state=clean_state, message=message)


def _sane_message(message: InboundMessage) -> bool:
    return (
        isinstance(message.text, str)
        and isinstance(message.payload, str | None)
        and isinstance(message.media, tuple)
        and isinstance(message.location, Location | None)
    )


def _recover(turn: Turn) -> Transition:
    language: Language = turn.state.language if turn.state.language in LANGUAGES else "ar"
    apology = OutboundMessage(text(language, "error.generic"), language)
    return Transition(ConversationState(language=language), (apology,))


def _seen(transition: Transition, now: datetime) -> Transition:
    """Remember when the beneficiary last wrote (for "continue or start over" after silence)."""
    if not isinstance(now, datetime):
        return transition
    data = updated(transition.state.data, {"last_seen": now.isoformat()})
    return dataclasses.replace(transition, state=dataclasses.replace(transition.state, data=data))
