""" "بياناتي" / "my data": what the charity holds about the sender (Saudi PDPL's right of access).

The whole message asks, in any state but a handoff. The step asks the engine to read
what is held (``ReadMyData``: only what this sender filed, as the status flow shows only
their own requests) and resumes to show it, national ID masked; nothing of it stays in
the conversation afterwards.
"""

from __future__ import annotations

from typing import Any, Final

from flows.catalogue import text
from flows.cities import city_label
from flows.dates import format_date, parse_moment
from flows.status import status_label
from flows.steps import FlowDeclaration, Step, dict_in, goto, heard, need_label
from flows.text import localize_digits, phrase
from flows.types import ConversationState, OutboundMessage, ReadMyData, Transition, Turn
from flows.validation import local_mobile, mask_national_id

FLOW = "my_data"
HELD = "my_data"  # what the engine read, for the resumed step only
WORDS: Final = frozenset(
    phrase(w) for w in ("بياناتي", "بياناتي الشخصية", "my data", "/mydata", "mydata")
)


def asks(turn: Turn) -> bool:
    """Whether the whole message asks what is held about the sender."""
    return phrase(heard(turn)) in WORDS


def read(turn: Turn, state: ConversationState) -> Transition:
    """Ask the engine for what is held, then show it (the engine resumes)."""
    return Transition(goto(state, FLOW, "reading"), (), (ReadMyData(),), resume=True)


def show(turn: Turn) -> Transition:
    """What is held, in the sender's language; back to the menu."""
    state, language, settings = turn.state, turn.state.language, turn.settings
    held: dict[str, Any] = dict_in(state.data, HELD)
    new = goto(state, "menu", "choose", **{HELD: None})
    requests = held.get("requests") if isinstance(held.get("requests"), list) else []
    if not held.get("name") and not requests:
        return Transition(new, (OutboundMessage(text(language, "my_data.nothing"), language),))
    lines = [text(language, "my_data.title")]
    fields = (
        ("name", str(held.get("name", ""))),
        ("national_id", mask_national_id(str(held.get("national_id", "")))),
        ("mobile", localize_digits(local_mobile(str(held.get("mobile", ""))), language)),
        ("city", city_label(str(held.get("city", "")), language)),
    )
    for field, value in fields:
        if value:
            label = text(language, f"intake.field.{field}")
            lines.append(text(language, "my_data.line", label=label, value=value))
    for request in requests or []:
        if not isinstance(request, dict):
            continue
        filed = parse_moment(str(request.get("created_at", "")))
        lines.append(
            text(
                language,
                "my_data.request",
                reference=str(request.get("reference", "")),
                need=need_label(settings, str(request.get("need", "")), language),
                status=status_label(language, str(request.get("status", ""))),
                date=format_date(filed, language, settings.timezone) if filed else "",
            )
        )
    consent = held.get("consent")
    if isinstance(consent, dict) and consent.get("version"):
        agreed = parse_moment(str(consent.get("at", "")))
        when = format_date(agreed, language, settings.timezone) if agreed else ""
        lines.append(text(language, "my_data.consent", version=consent["version"], date=when))
    count = int(held.get("messages", 0) or 0)
    lines.append(text(language, "my_data.messages", count=localize_digits(str(count), language)))
    lines.append(text(language, "my_data.rights"))
    return Transition(new, (OutboundMessage("\n".join(lines), language),))


STEPS: Final = {"reading": Step(lambda turn, state: (), show)}
DECLARATION: Final = FlowDeclaration(FLOW, STEPS)
