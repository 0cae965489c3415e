"""Handing the conversation to a staff member: opening (normal or urgent) and waiting.

Leaving the handoff (``0``) is the router's job, because it shows the main menu.
"""

from __future__ import annotations

from typing import Final

from flows.catalogue import text
from flows.steps import Step, goto, lead_with, say, stay
from flows.types import ConversationState, OpenHandoff, OutboundMessage, Transition, Turn

FLOW = "handoff"
WAITING = "waiting"


def open_handoff(
    turn: Turn, state: ConversationState, reason: str, *, lead: str | None = None
) -> Transition:
    """Notify staff and tell the beneficiary when to expect an answer.

    Args:
        reason: why, for staff: requested | keyword | misunderstood | field_errors.
        lead: a line to put above the message (e.g. "I did not understand you").
    """
    new = _waiting(state)
    message = say(new.language, "handoff.opened", hours=text(new.language, "handoff.hours"))
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
    WAITING: Step(ask_waiting, answer_waiting, free_text=True),
}
