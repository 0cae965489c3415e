"""The status flow: the sender's own requests, all of them or one by reference number.

It answers at once and leaves the conversation in the menu. ``turn.lookup.requests``
holds only the sender's requests. A reference this sender did not file (the same
applicant on another phone or channel) is shown only after the second factor, the
last four digits of the applicant's national ID (step ``verify``); a reference that
does not exist gets the same questions and the same refusal, so nothing tells whether
it exists.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

from flows.catalogue import CATALOGUE, text
from flows.dates import format_date
from flows.lifecycle import UNDECIDED
from flows.steps import FlowDeclaration, MenuEntry, Step, goto, heard, int_in, need_label, say, stay
from flows.text import normalize_digits
from flows.types import (
    ConversationState,
    InboundMessage,
    Language,
    OtherRequest,
    OutboundMessage,
    RequestSummary,
    Transition,
    Turn,
)

FLOW = "status"
MAX_SHOWN: Final = 5
# Wrong second factors allowed for one reference in one conversation, for good.
VERIFY_ATTEMPTS: Final = 3

_REFERENCE = re.compile(r"REQ[\s\-_#:]*(\d{1,12})", re.IGNORECASE)


def find_reference(said: str) -> int | None:
    """The number of a ``REQ-…`` reference anywhere in a message (any digits, any case)."""
    match = _REFERENCE.search(normalize_digits(said))
    return int(match.group(1)) if match else None


def list_requests(turn: Turn, state: ConversationState) -> Transition:
    """All the sender's requests, newest first, at most five shown."""
    new, language = goto(state, "menu", "choose"), state.language
    requests = turn.lookup.requests
    if not requests:
        return Transition(new, (say(language, "status.none"),))
    blocks = [text(language, "status.header")]
    blocks += [_describe(turn, language, request) for request in requests[:MAX_SHOWN]]
    if len(requests) > MAX_SHOWN:
        blocks.append(text(language, "status.more", count=len(requests) - MAX_SHOWN))
    if len(requests) > 1:
        blocks.append(text(language, "status.hint", example=requests[0].reference))
    else:
        blocks.append(text(language, "common.back_hint"))
    return Transition(new, (OutboundMessage("\n\n".join(blocks), language),))


def references_asked(state: ConversationState, message: InboundMessage) -> tuple[int, ...]:
    """Reference numbers the next step may need beyond the sender's own requests: the one
    named in a message to the menu, or the one awaiting its second factor."""
    if state.flow == FLOW:
        waiting = int_in(state.data, "verify_reference")
        return (waiting,) if waiting else ()
    if state.flow == "menu" and isinstance(message.text, str):
        number = find_reference(message.text)
        return (number,) if number is not None else ()
    return ()


def show_request(turn: Turn, state: ConversationState, number: int) -> Transition:
    """One request by its reference number: the sender's own at once, another only after
    the second factor."""
    language = state.language
    own = next((r for r in turn.lookup.requests if find_reference(r.reference) == number), None)
    other = _other(turn, number)
    if own is None and other is not None and number in _verified(state):
        own = other.summary
    if own is not None:
        body = _describe(turn, language, own) + "\n\n" + text(language, "common.back_hint")
        return Transition(goto(state, "menu", "choose"), (OutboundMessage(body, language),))
    if _failures(state).get(str(number), 0) >= VERIFY_ATTEMPTS:
        return Transition(goto(state, "menu", "choose"), (say(language, "status.verify_locked"),))
    asking = goto(state, FLOW, "verify", verify_reference=number)
    return Transition(asking, ask_last4(turn, asking))


def ask_last4(turn: Turn, state: ConversationState) -> tuple[OutboundMessage, ...]:
    return (say(state.language, "status.verify_ask"),)


def check_last4(turn: Turn) -> Transition:
    """The second factor for a request filed elsewhere."""
    state, language = turn.state, turn.state.language
    number = int_in(state.data, "verify_reference")
    digits = normalize_digits(heard(turn)).strip()
    if not (len(digits) == 4 and digits.isdigit()):
        return Transition(state, (say(language, "status.verify_format"),))
    other = _other(turn, number)
    if other is not None and digits == other.national_id_last4:
        verified = sorted({*_verified(state), number})
        done = goto(state, "menu", "choose", verify_reference=None, verified_references=verified)
        return show_request(dataclasses.replace(turn, state=done), done, number)
    failures = _failures(state)
    failures[str(number)] = failures.get(str(number), 0) + 1
    left = VERIFY_ATTEMPTS - failures[str(number)]
    if left <= 0:
        locked = goto(state, "menu", "choose", verify_reference=None, verify_failures=failures)
        return Transition(locked, (say(language, "status.verify_locked"),))
    return Transition(
        stay(state, verify_failures=failures), (say(language, "status.verify_wrong", left=left),)
    )


STEPS: Final = {"verify": Step(ask_last4, check_last4)}
DECLARATION: Final = FlowDeclaration(FLOW, STEPS, MenuEntry(2, "menu.option.status", list_requests))


def _other(turn: Turn, number: int) -> OtherRequest | None:
    others = turn.lookup.others
    return next((o for o in others if find_reference(o.summary.reference) == number), None)


def _verified(state: ConversationState) -> set[int]:
    value = state.data.get("verified_references")
    return {n for n in value if isinstance(n, int)} if isinstance(value, list) else set()


def _failures(state: ConversationState) -> dict[str, int]:
    value = state.data.get("verify_failures")
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int)}


def status_label(language: Language, status: str) -> str:
    """A status in words; an unknown status is shown as stored rather than hidden."""
    key = f"status.label.{status}"
    return text(language, key) if key in CATALOGUE else status


def _describe(turn: Turn, language: Language, request: RequestSummary) -> str:
    zone = turn.settings.timezone
    lines = text(
        language,
        "status.item",
        reference=request.reference,
        status=status_label(language, request.status),
        need=need_label(turn.settings, request.need, language),
        filed=format_date(request.created_at, language, zone),
    )
    if request.status in UNDECIDED:  # the decision date is worth showing
        due = format_date(request.decision_due_at, language, zone)
        lines += "\n" + text(language, "status.item_due", due=due)
    return lines
