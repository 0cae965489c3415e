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


def text_length(text: str, *, utf16: bool = False) -> int:
    """How long ``text`` is for a platform: characters, or UTF-16 units (an emoji beyond
    the Basic Multilingual Plane takes two) when the platform counts those."""
    return len(text.encode("utf-16-le")) // 2 if utf16 else len(text)


def split_text(text: str, limit: int, *, utf16: bool = False) -> list[str]:
    """``text`` cut into parts of at most ``limit`` (counted as ``text_length`` does), at a
    line break where one falls in the second half of the part, else at a space, else
    anywhere; surrounding blanks are dropped. Deterministic: the same text always gives
    the same parts, so a part can be named by its index."""
    if limit < 2:
        raise ValueError("a limit below two cannot hold every character")
    parts: list[str] = []
    rest = text.strip()
    while text_length(rest, utf16=utf16) > limit:
        window = rest[: _fit(rest, limit, utf16)]
        cut = window.rfind("\n")
        if cut < len(window) // 2:
            cut = max(cut, window.rfind(" "))
        if cut <= 0:
            head, rest = window, rest[len(window) :]
        else:
            head, rest = window[:cut], rest[cut + 1 :]
        head, rest = head.rstrip(), rest.lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _fit(text: str, limit: int, utf16: bool) -> int:
    """How many characters of ``text`` fit in ``limit``."""
    if not utf16:
        return min(limit, len(text))
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)
