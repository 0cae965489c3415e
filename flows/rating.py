"""The rating flow: a score from 1 to 5, an optional comment, then thanks.

``data["rating_context"]`` (service | handoff) and ``data["rating_reference"]`` say what
is rated; whoever starts the flow (the menu, or a scheduled prompt after delivery:
``prompt``) sets them.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from flows.catalogue import text
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    goto,
    heard,
    int_in,
    pick,
    refuse,
    said_one_of,
    say,
    sound,
    str_in,
)
from flows.types import (
    Choice,
    ConversationState,
    Effect,
    Language,
    OutboundMessage,
    RecordRating,
    RequestCallback,
    Transition,
    Turn,
)
from flows.validation import Invalid
from flows.vocabulary import SKIP

FLOW = "rating"
COMMENT_MAX = 1000
# Scores at or below this get the promise of a call from staff (the engine opens the task).
LOW_SCORE = 2


def start(turn: Turn, state: ConversationState, context: str = "service") -> Transition:
    """Ask for a score about ``context`` (service | handoff)."""
    new = goto(state, FLOW, "score", rating_context=context, rating_score=None)
    return Transition(new, ask_score(turn, new))


def _scores(language: Language) -> tuple[Choice, ...]:
    return tuple(Choice(str(n), text(language, f"rating.score.{n}")) for n in range(1, 6))


def score_question(state: ConversationState) -> OutboundMessage:
    """The 1-5 question about what ``state``'s data says is rated, with inline choices."""
    key = "rating.ask_handoff" if state.data.get("rating_context") == "handoff" else "rating.ask"
    return say(state.language, key, choices=_scores(state.language), inline=True)


def ask_score(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (score_question(state),)


def answer_score(turn: Turn) -> Transition:
    language = turn.state.language
    choice = pick(turn, _scores(language))
    if choice is None:
        return refuse(turn, Invalid("rating.invalid"), choices=_scores(language))
    new = goto(turn.state, FLOW, "comment", rating_score=int(choice.payload))
    return Transition(new, ask_comment(turn, new))


def ask_comment(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "rating.ask_comment", max=COMMENT_MAX),)


def answer_comment(turn: Turn) -> Transition:
    state = turn.state
    score = int_in(state.data, "rating_score")
    if not 1 <= score <= 5:  # stored state lost its score: ask again rather than guess
        return start(turn, state, str_in(state.data, "rating_context") or "service")
    comment: str | None = heard(turn).strip()
    if said_one_of(turn, SKIP):
        comment = None
    elif not comment:
        return refuse(turn, Invalid("rating.invalid.comment_empty"))
    elif len(comment) > COMMENT_MAX:
        reason = Invalid("rating.invalid.comment_long", {"count": len(comment), "max": COMMENT_MAX})
        return refuse(turn, reason)
    context = str_in(state.data, "rating_context") or "service"
    reference = str_in(state.data, "rating_reference")
    effects: tuple[Effect, ...] = (RecordRating(score, comment, context, reference),)
    if score <= LOW_SCORE:
        effects += (RequestCallback(score, context, reference),)
    new = goto(
        state, "menu", "choose", rating_score=None, rating_context=None, rating_reference=None
    )
    thanks = text(new.language, "rating.thanks")
    if score <= LOW_SCORE:
        thanks = text(new.language, "rating.low_score") + "\n" + thanks
    return Transition(new, (OutboundMessage(thanks, new.language),), effects)


STEPS: Final = {
    "score": Step(ask_score, answer_score),
    "comment": Step(ask_comment, answer_comment, free_text=True),
}


def from_menu(turn: Turn, state: ConversationState) -> Transition:
    """Chosen in the menu: rate what the menu offered (a handoff just left) or the service."""
    return start(turn, state, str_in(turn.state.data, "rating_context") or "service")


DECLARATION: Final = FlowDeclaration(FLOW, STEPS, MenuEntry(3, "menu.option.rating", from_menu))


def prompt(
    state: ConversationState, reference: str, *, reminder: bool = False
) -> tuple[ConversationState, tuple[OutboundMessage, ...]]:
    """The scheduled question after delivery: rate the service for ``reference``.

    As after a handoff (``flows.close_handoff``), the conversation moves to the score
    step; the rest of its data (an intake draft) stays. ``reminder`` asks a second time.
    """
    state = sound(state)
    new = goto(
        state,
        FLOW,
        "score",
        handoff_acked=None,
        rating_score=None,
        rating_context="service",
        rating_reference=reference,
    )
    question = score_question(new)
    key = "rating.reminder" if reminder else "rating.prompt"
    lead = text(new.language, key, reference=reference)
    lines = (lead, question.text, text(new.language, "handoff.rate_or_menu"))
    return new, (dataclasses.replace(question, text="\n".join(lines)),)
