"""The status flow: the sender's own requests, all of them or one by reference number.

It has no step of its own: it answers at once and leaves the conversation in the menu.
``turn.lookup.requests`` holds only the sender's requests, so nothing here can show
another person's request; an unknown reference gets the same answer whether or not
it exists.
"""

from __future__ import annotations

import re
from typing import Final

from flows.catalogue import CATALOGUE, text
from flows.dates import format_date
from flows.steps import goto, need_label, say
from flows.text import normalize_digits
from flows.types import (
    ConversationState,
    Language,
    OutboundMessage,
    RequestSummary,
    Transition,
    Turn,
)

MAX_SHOWN: Final = 5
# Statuses still waiting for the committee's answer: their decision date is worth showing.
OPEN_STATUSES: Final = frozenset({"submitted", "under_review", "needs_info"})

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


def show_request(turn: Turn, state: ConversationState, number: int) -> Transition:
    """One of the sender's requests by its reference number."""
    new, language = goto(state, "menu", "choose"), state.language
    own = next((r for r in turn.lookup.requests if find_reference(r.reference) == number), None)
    if own is None:
        return Transition(new, (say(language, "status.not_found"),))
    body = _describe(turn, language, own) + "\n\n" + text(language, "common.back_hint")
    return Transition(new, (OutboundMessage(body, language),))


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
    if request.status in OPEN_STATUSES:
        due = format_date(request.decision_due_at, language, zone)
        lines += "\n" + text(language, "status.item_due", due=due)
    return lines
