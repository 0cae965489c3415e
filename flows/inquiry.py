"""Inquiries: a beneficiary's own question answered from the charity's knowledge base.

Menu option 5 asks for the question; free text that the menu (or a step that cannot use
it) does not understand is tried here too. A sure match is answered and followed by
"did this answer your question?"; a close one offers up to three questions by number;
nothing, or a "no", offers a person and counts the question as unanswered for staff.

```mermaid
stateDiagram-v2
    [*] --> ask: menu 5
    [*] --> helpful: free text, sure
    [*] --> choose: free text, close
    ask --> helpful: sure
    ask --> choose: close
    ask --> offer: nothing (counted)
    choose --> helpful: a number
    choose --> offer: none of these (counted)
    helpful --> ask: yes
    helpful --> offer: no (counted)
    offer --> handoff: talk to a staff member
    offer --> ask: another question
```
"""

from __future__ import annotations

import re
from typing import Final

from flows import handoff
from flows.catalogue import text
from flows.hours import describe
from flows.knowledge import content_words, fill_placeholders
from flows.steps import (
    FlowDeclaration,
    MenuEntry,
    Step,
    bare_number,
    goto,
    heard,
    pick,
    said_one_of,
    say,
    thanked,
)
from flows.text import normalize_digits
from flows.types import (
    Choice,
    ConversationState,
    FlowSettings,
    InboundMessage,
    KnowledgeEntry,
    KnowledgeMatch,
    Language,
    OutboundMessage,
    RecordUnanswered,
    Transition,
    Turn,
)
from flows.vocabulary import NO, YES

FLOW = "knowledge"
QUESTION = "kb_question"
CANDIDATES = "kb_candidates"
# A question kept for staff must not carry a national ID or a phone number.
_LONG_NUMBER = re.compile(r"\d{5,}")
_NONE = "none"
# The numbers a knowledge step takes itself (its yes and no, or its offer). Any other number
# sent there is the menu's: answers say "send 4 to talk to a staff member".
_OWN_NUMBERS: Final = {"ask": 0, "helpful": 2, "offer": 2}
_STAFF = "staff"
_AGAIN = "again"


def start(turn: Turn, state: ConversationState) -> Transition:
    """Menu option 5: ask for the question."""
    new = goto(state, FLOW, "ask", **{QUESTION: None, CANDIDATES: None})
    return Transition(new, ask(turn, new))


def ask(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "knowledge.ask"),)


def worth_asking(said: str) -> bool:
    """Whether a message could be a question for the base (it has a word with a letter)."""
    return any(ch.isalpha() for ch in said)


def reply(turn: Turn, state: ConversationState, *, asked: bool) -> Transition | None:
    """What the base says to the message: an answer, "did you mean", or (when the
    beneficiary ``asked`` through option 5) an offer of a person. None when it has
    nothing for a message nobody asked it about (the menu then says it did not understand).
    """
    said = heard(turn)
    index = turn.lookup.knowledge
    if not worth_asking(said):
        return None if not asked else Transition(state, ask(turn, state))
    match = index.ask(said, state.language) if index is not None else KnowledgeMatch("none")
    if match.outcome == "sure":
        return answer(turn, state, match.entries[0], said)
    if match.outcome == "close":
        return _did_you_mean(state, match.entries, said)
    if not asked:
        return None
    return _offer(state, said, "knowledge.not_found")


def unanswered(said: str, language: Language) -> RecordUnanswered | None:
    """The effect that counts ``said`` as unanswered, when it reads like a question."""
    words = content_words(said)
    if not words or (len(words) < 2 and not any(mark in said for mark in "?؟")):
        return None  # "hmm", "ok", a name: not a question staff could answer
    return RecordUnanswered(_masked(said), language)


def aside(turn: Turn) -> OutboundMessage | None:
    """The answer to a question asked in the middle of another flow, when the base is sure.

    The flow then asks its own question again; anything less than sure is left to the
    flow's refusal, so a flow never loses its place to a guess.
    """
    said, index = heard(turn), turn.lookup.knowledge
    if index is None or not worth_asking(said):
        return None
    match = index.ask(said, turn.state.language)
    if match.outcome != "sure":
        return None
    return OutboundMessage(answer_text(turn.settings, match.entries[0]), match.entries[0].language)


def answer(turn: Turn, state: ConversationState, entry: KnowledgeEntry, said: str) -> Transition:
    """The entry's answer, then "did this answer your question?" with yes and no."""
    language = entry.language
    body = f"{answer_text(turn.settings, entry)}\n\n{text(language, 'knowledge.helpful')}"
    choices = _yes_no(language)
    new = goto(state, FLOW, "helpful", **{QUESTION: _masked(said), CANDIDATES: None})
    return Transition(new, (OutboundMessage(body, language, choices, inline=True),))


def answer_text(settings: FlowSettings, entry: KnowledgeEntry) -> str:
    """The entry's answer with the charity's own values in its placeholders."""
    language = entry.language
    values = {
        "organization.name": settings.organization_name,
        "organization.hours": describe(settings.working_hours, language),
        "organization.decision_days": str(settings.decision_days),
        "organization.phone": settings.phone.strip() or text(language, "knowledge.no_phone"),
        "organization.hotline": settings.hotline_text.strip(),
    }
    return fill_placeholders(entry.answer, values)


def _did_you_mean(
    state: ConversationState, entries: tuple[KnowledgeEntry, ...], said: str
) -> Transition:
    language = state.language
    choices = tuple(Choice(f"kb:{entry.id}", entry.question) for entry in entries)
    choices += (Choice(_NONE, text(language, "knowledge.none_of_these")),)
    new = goto(
        state,
        FLOW,
        "choose",
        **{QUESTION: _masked(said), CANDIDATES: [entry.id for entry in entries]},
    )
    return Transition(new, (say(language, "knowledge.did_you_mean", choices=choices),))


def _offer(state: ConversationState, question: str, key: str) -> Transition:
    language = state.language
    choices = (
        Choice(_STAFF, text(language, "knowledge.offer_staff")),
        Choice(_AGAIN, text(language, "knowledge.offer_again")),
    )
    new = goto(state, FLOW, "offer", **{QUESTION: None, CANDIDATES: None})
    # A lone word with no letter of a question ("ok", a stray digit) is not worth a row.
    effects = (RecordUnanswered(_masked(question), language),) if content_words(question) else ()
    return Transition(new, (say(language, key, choices=choices),), effects)


def _masked(said: str) -> str:
    return _LONG_NUMBER.sub("…", normalize_digits(" ".join(said.split())))[:500]


def _asked_again(turn: Turn) -> Transition:
    """Anything else sent at a knowledge step is taken as a new question (thanks aside)."""
    if thanked(turn):
        new = goto(turn.state, FLOW, "ask", **{QUESTION: None, CANDIDATES: None})
        return Transition(new, (say(turn.state.language, "common.thanks_reply"),))
    found = reply(turn, turn.state, asked=True)
    return found if found is not None else start(turn, turn.state)


def menu_number(state: ConversationState, message: InboundMessage) -> bool:
    """Whether the message is a menu number the knowledge step it was sent at has no use for."""
    own = _OWN_NUMBERS.get(str(state.step)) if state.flow == FLOW else None
    if own is None:
        return False
    number = bare_number(message)
    return number is not None and number > own


def left(state: ConversationState) -> ConversationState:
    """The conversation back at the menu, the question and its candidates dropped."""
    return goto(state, "menu", "choose", **{QUESTION: None, CANDIDATES: None})


def answer_ask(turn: Turn) -> Transition:
    return _asked_again(turn)


def answer_helpful(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    choice = pick(turn, _yes_no(language))
    if (choice is not None and choice.payload == "yes") or said_one_of(turn, YES):
        new = goto(state, FLOW, "ask", **{QUESTION: None})
        return Transition(new, (say(language, "knowledge.glad"),))
    if (choice is not None and choice.payload == "no") or said_one_of(turn, NO):
        question = state.data.get(QUESTION)
        return _offer(state, question if isinstance(question, str) else "", "knowledge.sorry")
    return _asked_again(turn)


def _yes_no(language: Language) -> tuple[Choice, Choice]:
    return (
        Choice("yes", text(language, "knowledge.yes")),
        Choice("no", text(language, "knowledge.no")),
    )


def answer_choose(turn: Turn) -> Transition:
    state = turn.state
    stored = state.data.get(CANDIDATES)
    ids = [i for i in stored if isinstance(i, int)] if isinstance(stored, list) else []
    index = turn.lookup.knowledge
    entries = [e for e in (index.entry(i) for i in ids) if e is not None] if index else []
    choices = [Choice(f"kb:{entry.id}", entry.question) for entry in entries]
    if len(entries) != len(ids):
        choices = [Choice(f"kb:{i}", "") for i in ids]  # the base changed: keep the numbers
    choices.append(Choice(_NONE, text(state.language, "knowledge.none_of_these")))
    choice = pick(turn, choices)
    question = state.data.get(QUESTION)
    question = question if isinstance(question, str) else ""
    if choice is None:
        return _asked_again(turn)
    if choice.payload == _NONE:
        return _offer(state, question, "knowledge.sorry")
    entry = index.entry(int(choice.payload[3:])) if index is not None else None
    if entry is None:  # removed since it was offered
        return _offer(state, question, "knowledge.not_found")
    return answer(turn, state, entry, question)


def answer_offer(turn: Turn) -> Transition:
    state, language = turn.state, turn.state.language
    choices = (
        Choice(_STAFF, text(language, "knowledge.offer_staff")),
        Choice(_AGAIN, text(language, "knowledge.offer_again")),
    )
    choice = pick(turn, choices)
    if choice is not None and choice.payload == _STAFF:
        return handoff.open_handoff(turn, state, "requested")
    if choice is not None:
        return start(turn, state)
    if said_one_of(turn, YES):
        return handoff.open_handoff(turn, state, "requested")
    if said_one_of(turn, NO):
        return start(turn, state)
    return _asked_again(turn)


STEPS: Final = {
    "ask": Step(ask, answer_ask, free_text=True),
    "helpful": Step(ask, answer_helpful, free_text=True),
    "choose": Step(ask, answer_choose, free_text=True),
    "offer": Step(ask, answer_offer, free_text=True),
}

DECLARATION: Final = FlowDeclaration(FLOW, STEPS, MenuEntry(5, "menu.option.knowledge", start))
