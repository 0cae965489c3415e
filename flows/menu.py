"""The main menu: built from the flows' declared entries, greetings, and what to do with a
message it cannot place (first tried against the knowledge base)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from flows import handoff, inquiry, intake, needs_info
from flows.catalogue import text
from flows.registry import ENTRIES
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    goto,
    heard,
    int_in,
    pick,
    say,
    stay,
    thanked,
)
from flows.text import localize_digits
from flows.types import (
    Choice,
    CloseHandoff,
    ConversationState,
    Effect,
    Language,
    OutboundMessage,
    Transition,
    Turn,
)

FLOW = "menu"
# The second message in a row the menu cannot place goes to a person.
MISUNDERSTOOD_LIMIT = 2


def menu_choices(language: Language, entries: Sequence[MenuEntry] = ENTRIES) -> tuple[Choice, ...]:
    """The menu's options in ``language``, numbered as declared (flows.registry)."""
    return tuple(Choice(str(entry.number), text(language, entry.label)) for entry in entries)


def _menu_message(turn: Turn, language: Language, *, welcome: bool) -> OutboundMessage:
    if welcome:
        return say(
            language,
            "menu.welcome",
            choices=menu_choices(language),
            organization=turn.settings.organization_name,
        )
    return say(language, "menu.main", choices=menu_choices(language))


def show(
    turn: Turn,
    state: ConversationState,
    *,
    welcome: bool = False,
    salam: bool = False,
    after_handoff: bool = False,
) -> Transition:
    """Show the menu, leaving whatever flow was in progress (an intake draft is kept).

    Args:
        welcome: greet with the organisation's name (first contact, greetings).
        salam: answer a salam with its proper reply first.
        after_handoff: the beneficiary left a handoff: close it and offer to rate it.
    """
    language = state.language
    lines = []
    if state.flow == intake.FLOW and intake.draft_of(state):
        number = localize_digits(str(intake.ENTRY.number), language)
        lines.append(text(language, "menu.draft_kept", number=number))
    waiting = needs_info.pending(state)
    if state.flow == needs_info.FLOW and waiting:
        lines.append(text(language, "menu.needs_info_kept", reference=waiting))
    menu = _menu_message(turn, language, welcome=welcome or salam)
    lines.append(f"{text(language, 'menu.salam')} {menu.text}" if salam else menu.text)
    message = OutboundMessage("\n".join(lines), language, menu.choices)
    replies: tuple[OutboundMessage, ...] = (message,)
    effects: tuple[Effect, ...] = ()
    if after_handoff:
        replies += (say(language, "menu.rate_handoff"),)
        effects = (CloseHandoff(),)
    new = goto(
        state,
        FLOW,
        "choose",
        # What another flow left behind; the intake draft stays on purpose.
        handoff_acked=None,
        rating_score=None,
        rating_reference=None,
        rating_context="handoff" if after_handoff else None,
    )
    return Transition(new, replies, effects)


def ask(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (_menu_message(turn, state.language, welcome=state.step == "start"),)


def answer_start(turn: Turn) -> Transition:
    """First contact: act on a menu number straight away; otherwise welcome, and answer
    a first message that is a question the knowledge base knows after the welcome."""
    if pick(turn, menu_choices(turn.state.language)):
        return answer_choose(turn)
    welcome = show(turn, turn.state, welcome=True)
    found = inquiry.reply(turn, welcome.state, asked=False)
    if found is None:
        return welcome
    return dataclasses.replace(found, replies=(*welcome.replies, *found.replies))


def answer_choose(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    choice = pick(turn, menu_choices(language))
    if choice is None:
        if thanked(turn):
            return Transition(goto(state, FLOW, "choose"), (say(language, "common.thanks_reply"),))
        # Free text the menu cannot place may be a question the knowledge base answers.
        found = inquiry.reply(turn, state, asked=False)
        return found if found is not None else _misunderstood(turn)
    entry = next(entry for entry in ENTRIES if str(entry.number) == choice.payload)
    # What the menu remembered for a rating (after a handoff) is for the rating entry
    # only; it reads it from the turn's state.
    return entry.start(turn, stay(state, rating_context=None))


def _misunderstood(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    count = int_in(state.data, "misunderstood") + 1
    # What the knowledge base could not answer is counted for staff to add.
    counted = inquiry.unanswered(heard(turn), language)
    effects: tuple[Effect, ...] = (counted,) if counted is not None else ()
    if count >= MISUNDERSTOOD_LIMIT:
        lead = text(language, "handoff.misunderstood")
        opened = handoff.open_handoff(turn, state, "misunderstood", lead=lead)
        return dataclasses.replace(opened, effects=effects + opened.effects)
    last = localize_digits(str(len(ENTRIES)), language)
    # A voice note, a photo or a sticker alone: say why it was not understood.
    key = (
        "menu.media_only"
        if turn.message.media and not heard(turn).strip()
        else "menu.misunderstood"
    )
    message = say(language, key, choices=menu_choices(language), last=last)
    return Transition(stay(state, misunderstood=count), (message,), effects)


STEPS: Final = {
    "start": Step(ask, answer_start),
    "choose": Step(ask, answer_choose),
}

DECLARATION: Final = FlowDeclaration(FLOW, STEPS, reads_requests=True)
