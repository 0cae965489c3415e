"""How text channels (console, WhatsApp, SMS) draw a message: the text, then numbered choices."""

from __future__ import annotations

from flows.text import localize_digits
from flows.types import OutboundMessage


def as_plain_text(message: OutboundMessage) -> str:
    """The message's text followed by one "١- label" line per choice.

    Choices are numbered by position; every choice list the flows build uses the
    position as its payload too, so the number drawn is the number to send.
    """
    lines = [message.text] if message.text else []
    lines += [
        f"{localize_digits(str(number), message.language)}- {choice.label}"
        for number, choice in enumerate(message.choices, start=1)
    ]
    return "\n".join(lines)
