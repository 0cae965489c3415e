"""The console channel: a line of text in, plain text with numbered choices out."""

from __future__ import annotations

from datetime import datetime

from flows.render import as_plain_text
from flows.types import Address, InboundMessage, OutboundMessage
from handlers.base import Capabilities, ChannelSpec

CHANNEL = "console"
# Ends every reply block, so a script can split the output into one block per line sent.
BLOCK_END = "─" * 24


class ConsoleChannel:
    """Translates between terminal lines and neutral messages for one console user."""

    def __init__(self, user_id: str) -> None:
        self.address = Address(CHANNEL, user_id)

    def inbound(self, line: str, now: datetime) -> InboundMessage:
        return InboundMessage(address=self.address, received_at=now, text=line.rstrip("\r\n"))

    @staticmethod
    def render(messages: list[OutboundMessage]) -> str:
        """One reply block: the messages of one turn, separated by a blank line, then the
        block's end line (alone when the turn has no reply, as while waiting for staff)."""
        body = "\n\n".join(as_plain_text(message) for message in messages)
        return f"{body}\n{BLOCK_END}\n" if body else f"{BLOCK_END}\n"


# Run by ``tawasul chat`` itself: text only, and never reached first.
SPEC = ChannelSpec(names=(CHANNEL,), capabilities={CHANNEL: Capabilities(reaches_first=False)})
