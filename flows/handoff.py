"""Handing the conversation to a staff member: opening (normal or urgent), waiting, what
staff say and do (take, reply, close) as the beneficiary sees it.

Leaving the handoff (``0``) is the router's job, because it shows the main menu.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from flows import rating
from flows.catalogue import text
from flows.hours import describe, when_open
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    goto,
    known_language,
    lead_with,
    say,
    sound,
    stay,
)
from flows.types import (
    ConversationState,
    Language,
    OpenHandoff,
    OutboundMessage,
    Transition,
    Turn,
)

FLOW = "handoff"
WAITING = "waiting"
# Staff roles as the beneficiary is told who wrote (storage's StaffRole, the same strings).
STAFF_ROLES: Final = ("agent", "researcher", "manager", "admin")
LANGUAGES: Final = ("ar", "en")
_WORDS: Final = "\x00"  # stands for a person's words while their label is found


def open_handoff(
    turn: Turn, state: ConversationState, reason: str, *, lead: str | None = None
) -> Transition:
    """Notify staff and tell the beneficiary when to expect an answer.

    Args:
        reason: why, for staff: requested | keyword | misunderstood | field_errors.
        lead: a line to put above the message (e.g. "I did not understand you").
    """
    new = _waiting(state)
    settings, language = turn.settings, new.language
    hours = describe(settings.working_hours, language)
    message = say(language, "handoff.opened", hours=hours)
    opening = when_open(settings.working_hours, turn.now, settings.timezone, language)
    if opening is not None:  # outside working hours: say when an answer can come
        closed = text(language, "handoff.closed_now", when=opening)
        message = dataclasses.replace(message, text=f"{message.text}\n{closed}")
    replies = lead_with(lead, (message,)) if lead else (message,)
    return Transition(new, replies, (OpenHandoff(reason),))


def open_urgent(turn: Turn, state: ConversationState) -> Transition:
    """Crisis words: the hotline first (when configured), then an urgent handoff."""
    new = _waiting(state)
    hotline = turn.settings.hotline_text.strip()
    replies: tuple[OutboundMessage, ...] = (
        (OutboundMessage(hotline, new.language),) if hotline else ()
    )
    replies += (say(new.language, "handoff.urgent"),)
    return Transition(new, replies, (OpenHandoff("crisis", urgent=True),))


def _waiting(state: ConversationState) -> ConversationState:
    # The rest of data (an intake draft) survives the handoff.
    return goto(state, FLOW, WAITING, handoff_acked=False)


def ask_waiting(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "handoff.ack"),)


def answer_waiting(turn: Turn) -> Transition:
    """Staff answer by relay; the bot only acknowledges the first message, then keeps quiet."""
    if turn.state.data.get("handoff_acked") is True:
        return Transition(turn.state)
    return Transition(stay(turn.state, handoff_acked=True), ask_waiting(turn, turn.state))


STEPS: Final = {
    # Staff may ask for a photo of a paper while they talk with the beneficiary.
    WAITING: Step(ask_waiting, answer_waiting, free_text=True, takes_media=True),
}


def requested(turn: Turn, state: ConversationState) -> Transition:
    """Chosen in the menu: a person asked for by name."""
    return open_handoff(turn, state, "requested")


DECLARATION: Final = FlowDeclaration(FLOW, STEPS, MenuEntry(4, "menu.option.handoff", requested))


# --- what staff do, as the beneficiary sees it (the engine calls these, not the router) ---


def staff_reply(language: Language, message: str, role: str = "agent") -> OutboundMessage:
    """A staff member's words relayed to the beneficiary, as written, after who wrote them
    (their role: ``agent``, ``researcher``, ``manager`` or ``admin``)."""
    lang = known_language(language)
    said = message if isinstance(message, str) else ""
    return say(lang, "handoff.staff_says", role=_role_label(lang, role), message=said)


def staff_author(message: str) -> tuple[str, str] | None:
    """Who wrote a message ``staff_reply`` made, and their words; None for the bot's own.

    For channels that show a person's words apart from the bot's (the website chat).
    """
    for lang in LANGUAGES:
        for role in STAFF_ROLES:
            label = _role_label(lang, role)
            before, _, after = text(
                lang, "handoff.staff_says", role=label, message=_WORDS
            ).partition(_WORDS)
            if message.startswith(before) and message.endswith(after):
                words = message[len(before) : len(message) - len(after)]
                if words.strip():
                    return label, words
    return None


def _role_label(language: Language, role: str) -> str:
    return text(language, f"handoff.role.{role if role in STAFF_ROLES else 'agent'}")


def handoff_taken(language: Language) -> OutboundMessage:
    """A staff member took the conversation: they are with the beneficiary now."""
    return say(known_language(language), "handoff.taken")


def close_handoff(
    state: ConversationState, *, staff_wrote: bool = True
) -> tuple[ConversationState, tuple[OutboundMessage, ...]]:
    """Staff closed the conversation: thanks, and the offer to rate it (or ``0`` for the menu).

    The state moves to the rating's score step about the handoff. A conversation in
    which no person wrote (closed untouched, or only taken) has nothing to rate: the
    thanks and the way back to the menu, and the state goes to the menu. A conversation
    that is no longer in the handoff (the beneficiary left with ``0``) stays as it is,
    with nothing to say.
    """
    state = sound(state)
    if state.flow != FLOW:
        return state, ()
    if not staff_wrote:
        new = goto(state, "menu", "choose", handoff_acked=None)
        closed = (text(new.language, "handoff.closed"), text(new.language, "common.back_hint"))
        return new, (OutboundMessage("\n".join(closed), new.language),)
    new = goto(
        state,
        rating.FLOW,
        "score",
        handoff_acked=None,
        rating_score=None,
        rating_reference=None,
        rating_context="handoff",
    )
    question = rating.score_question(new)
    lines = (
        text(new.language, "handoff.closed"),
        question.text,
        text(new.language, "handoff.rate_or_menu"),
    )
    return new, (dataclasses.replace(question, text="\n".join(lines)),)
