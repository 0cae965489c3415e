"""What every flow is built from: the Step record, state moves, replies and choice picking."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.catalogue import DEFAULT_NEEDS, text
from flows.text import normalize_digits, phrase, visible, words
from flows.types import (
    LANGUAGES,
    Choice,
    ConversationState,
    FlowSettings,
    InboundMessage,
    Language,
    Need,
    OutboundMessage,
    Transition,
    Turn,
)
from flows.validation import Invalid
from flows.vocabulary import DEFAULT_HANDOFF_KEYWORDS, EMOJI_MODIFIERS, THANKS, THANKS_EMOJI

Prompt = Callable[[Turn, ConversationState], tuple[OutboundMessage, ...]]
Handler = Callable[[Turn], Transition]

# After this many refused answers in a row to one question, a staff member is offered.
STAFF_OFFER_AFTER = 3

# Counters about "this question so far": moving to another step forgets them.
_TRANSIENT = ("bad_answers", "misunderstood")


@dataclass(frozen=True, slots=True)
class Step:
    """One named step: how to (re-)ask its question and how to take the answer.

    ``free_text`` steps accept any words as an answer (a name, a description), so a
    staff keyword there opens a handoff only when it is the whole message.
    ``takes_media`` steps keep attachments: only there are they fetched from the platform.
    """

    prompt: Prompt
    handle: Handler
    free_text: bool = False
    takes_media: bool = False


Start = Callable[[Turn, ConversationState], Transition]


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """A flow's line in the main menu.

    ``number`` is what the beneficiary sends (stable: appended, never renumbered),
    ``label`` the catalogue key of its text, ``start`` what choosing it does.
    """

    number: int
    label: str
    start: Start


@dataclass(frozen=True, slots=True)
class FlowDeclaration:
    """What a flow tells the router and the menu about itself.

    Attributes:
        name: the persisted flow name (``ConversationState.flow``).
        steps: its steps by persisted name.
        entry: its line in the main menu, if it has one.
        expects: keys its stored data must hold as text for its steps to make sense (a
            conversation without them goes back to the menu, keeping its data).
        reads_requests: whether its steps read the sender's requests
            (``turn.lookup.requests``), which the engine loads only then.
    """

    name: str
    steps: Mapping[str, Step]
    entry: MenuEntry | None = None
    expects: tuple[str, ...] = ()
    reads_requests: bool = False

    def accepts(self, step: object, data: Mapping[str, Any]) -> bool:
        """Whether a stored conversation at ``step`` with ``data`` can go on in this flow."""
        if not isinstance(step, str) or step not in self.steps:
            return False
        return all(isinstance(data.get(key), str) and data[key] for key in self.expects)


def known_language(value: object) -> Language:
    """A language as stored or passed by the engine; anything unknown reads as Arabic."""
    return next((language for language in LANGUAGES if value == language), "ar")


def sound(state: ConversationState) -> ConversationState:
    """``state`` with a dict for data, string flow and step, and a known language.

    For entry points the engine calls outside ``respond`` (staff actions), which must
    not raise on damaged stored state; the router does more (unknown steps).
    """
    data = dict(state.data) if isinstance(state.data, Mapping) else {}
    flow = state.flow if isinstance(state.flow, str) else "menu"
    step = state.step if isinstance(state.step, str) else "start"
    return ConversationState(flow, step, data, known_language(state.language))


def updated(data: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``changes`` applied; a change to None removes the key."""
    new = dict(data)
    for key, value in changes.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def goto(state: ConversationState, flow: str, step: str, **changes: Any) -> ConversationState:
    """The state at another step, with per-step counters reset and ``changes`` applied."""
    data = updated(state.data, dict.fromkeys(_TRANSIENT) | changes)
    return ConversationState(flow=flow, step=step, data=data, language=state.language)


def stay(state: ConversationState, **changes: Any) -> ConversationState:
    """The same step with ``changes`` applied to its data."""
    return dataclasses.replace(state, data=updated(state.data, changes))


def say(
    language: Language,
    key: str,
    *,
    choices: Sequence[Choice] = (),
    inline: bool = False,
    **params: object,
) -> OutboundMessage:
    """One outbound message from the catalogue."""
    return OutboundMessage(text(language, key, **params), language, tuple(choices), inline)


def lead_with(line: str, messages: tuple[OutboundMessage, ...]) -> tuple[OutboundMessage, ...]:
    """Put ``line`` above the first message (one message costs less than two on SMS)."""
    if not messages:
        return messages
    first = messages[0]
    return (dataclasses.replace(first, text=f"{line}\n{first.text}"), *messages[1:])


def heard(turn: Turn) -> str:
    """What the beneficiary said: the text, else a button's payload, else nothing."""
    said = turn.message.text
    if isinstance(said, str) and said.strip():
        return said
    payload = turn.message.payload
    return payload if isinstance(payload, str) else ""


def pick(turn: Turn, choices: Sequence[Choice]) -> Choice | None:
    """The choice meant by a button payload, a number (any digit form) or the label."""
    payload = turn.message.payload
    for choice in choices:
        if payload and payload == choice.payload:
            return choice
    said = phrase(heard(turn))
    if said.isascii() and said.isdigit():
        number = int(said)
        return choices[number - 1] if 1 <= number <= len(choices) else None
    return next((c for c in choices if said and phrase(c.label) == said), None)


def bare_number(message: InboundMessage) -> int | None:
    """The number typed as the whole message (one or two digits, in any digit form) with
    nothing attached, else None: a menu number, where a step leaves those to the menu."""
    said = normalize_digits(visible(message.text)) if isinstance(message.text, str) else ""
    if message.media or not (said.isascii() and said.isdigit() and len(said) <= 2):
        return None
    return int(said)


def number_in(turn: Turn, highest: int) -> int | None:
    """A number from 1 to ``highest`` when that is the whole message, else None."""
    said = phrase(heard(turn))
    if said.isascii() and said.isdigit() and 1 <= int(said) <= highest:
        return int(said)
    return None


def thanked(turn: Turn) -> bool:
    """Whether the whole message thanks: a word of thanks, or a 👍, 🙏, 🌹… alone."""
    if said_one_of(turn, THANKS):
        return True
    marks = set(heard(turn)) - EMOJI_MODIFIERS
    return bool(marks) and marks <= THANKS_EMOJI


def said_one_of(turn: Turn, vocabulary: frozenset[str]) -> bool:
    """Whether the whole message is one of ``vocabulary`` (folded)."""
    return phrase(heard(turn)) in vocabulary


def staff_keywords(settings: FlowSettings) -> tuple[str, ...]:
    """The words that ask for a person (the configured ones, else a built-in pair)."""
    return settings.handoff_keywords or DEFAULT_HANDOFF_KEYWORDS


def staff_keyword(settings: FlowSettings, language: Language) -> str:
    """The keyword to suggest: in English prefer one written in Latin letters."""
    keywords = staff_keywords(settings)
    if language == "en":
        return next((k for k in keywords if k.isascii()), keywords[0])
    return keywords[0]


def refuse(turn: Turn, reason: Invalid, *, choices: Sequence[Choice] = ()) -> Transition:
    """Stay on the step and say why; from the third refusal in a row, offer a person."""
    state, language = turn.state, turn.state.language
    refused = int_in(state.data, "bad_answers") + 1
    body = text(language, reason.key, **reason.params)
    if refused >= STAFF_OFFER_AFTER:
        keyword = staff_keyword(turn.settings, language)
        body += "\n" + text(language, "common.staff_offer", keyword=keyword)
    message = OutboundMessage(body, language, tuple(choices))
    return Transition(stay(state, bad_answers=refused), (message,))


def offered_needs(settings: FlowSettings) -> tuple[Need, ...]:
    """The kinds of support to choose from."""
    return settings.needs or DEFAULT_NEEDS


def need_label(settings: FlowSettings, key: str, language: Language) -> str:
    """A need's label by its key, or the key itself when it is no longer configured."""
    return next((n.label(language) for n in offered_needs(settings) if n.key == key), key)


def int_in(data: Mapping[str, Any], key: str) -> int:
    """An integer from stored data, 0 when missing or malformed."""
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def dict_in(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A copy of a mapping from stored data, empty when missing or malformed."""
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def str_in(data: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string from stored data, else None."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def tokens(turn: Turn) -> tuple[str, ...]:
    """The folded words of what was said."""
    return words(heard(turn))
