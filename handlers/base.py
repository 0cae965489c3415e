"""What every channel offers the server: its routes, sending, media fetching and start/stop."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from flows.types import (
    Address,
    Choice,
    InboundMessage,
    Language,
    Media,
    OutboundMessage,
    clean_line,
    clean_text,
)

log = logging.getLogger(__name__)

# Given to a channel by the server: stores the message (with inbound.acknowledge =
# "answered", its replies too, in one transaction) and returns when it is safe, so the
# channel may acknowledge the platform only then. It raises when it could not be stored;
# the channel then answers 5xx (503 when the bot is too busy) so the platform sends the
# message again.
Receiver = Callable[[InboundMessage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StaffUpdate:
    """A message or a button tap in the staff group, free of the platform's types.

    Attributes:
        chat_id: the staff group.
        user_id: the platform's id of the staff member who wrote or tapped.
        user_name: their first name (else username), for display only.
        text: the message text, a command word without its ``@botname``; "" for a tap.
        callback_data: the tapped button's data, for a tap on one of our staff posts.
        reply_to: the message replied to, as ``tg:<chat>:<message>``, when it is a reply.
        message_id: this message as ``tg:<chat>:<message>``; for a tap, the post that
            carries the button.
        update_id: the platform's id of the update (the same when it is sent again).
    """

    chat_id: int
    user_id: int
    user_name: str
    text: str
    callback_data: str | None
    reply_to: str | None
    message_id: str
    update_id: int

    def __post_init__(self) -> None:
        # Staff text is relayed to beneficiaries and kept in the case file: cleaned as
        # a beneficiary's is (flows/cleaning.py).
        object.__setattr__(self, "user_name", clean_line(self.user_name))
        object.__setattr__(self, "text", clean_text(self.text))
        if self.callback_data is not None:
            object.__setattr__(self, "callback_data", clean_line(self.callback_data))


# Given to a channel with a staff group: handles one staff update, raising when it could
# not, so that the webhook answers 5xx and the platform sends the update again.
StaffReceiver = Callable[[StaffUpdate], Awaitable[None]]

# Given to the web chat by the server: the outbound messages already released to one
# address with an id greater than the one given, oldest first (its page reads them).
Replies = Callable[[Address, int], Awaitable[list[tuple[int, OutboundMessage]]]]


@dataclass(frozen=True, slots=True)
class Said:
    """One message of a visitor's conversation, as the web chat's page shows it again.

    Attributes:
        mine: the visitor's (else the bot's or staff's, already released to them).
        payload: the button the visitor pressed, when they pressed one.
        files: the names of the files the visitor sent.
    """

    id: int
    mine: bool
    text: str
    language: Language = "ar"
    payload: str | None = None
    choices: tuple[Choice, ...] = ()
    inline: bool = False
    files: tuple[str, ...] = ()


# Given to the web chat by the server: the last messages in and out of one address,
# oldest first (a new tab starts from them).
History = Callable[[Address], Awaitable[list[Said]]]

# Who wrote a stored message's text: a staff member's label and their words, or None for
# the bot's own (``flows.staff_author``; the web chat shows a person's words apart).
StaffAuthor = Callable[[str], tuple[str, str] | None]


class Text(Protocol):
    """The message catalogue: the sentence ``key`` in ``language``, ``params`` filled in."""

    def __call__(self, language: Language, key: str, **params: object) -> str: ...


# Largest attachment fetched from a platform; larger ones are refused with a reason.
MAX_MEDIA_BYTES = 10 * 1024 * 1024
# The body the platforms' APIs take their fields in (files apart).
FORM = "application/x-www-form-urlencoded"

# Deepest nesting of objects and arrays a webhook's JSON may have: a Telegram update
# (a reply to a message with its entities and keyboard) stays well within it.
MAX_JSON_DEPTH = 32

# Given to ``Channel.send`` by the outbox: awaited before each part of a split message
# after the first one the call sends, with that part's index (0-based). The parts before
# it were accepted; the outbox waits there for the rate limit and notes the progress.
BeforePart = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the platform accepted, with the id its status callbacks will name."""

    platform_message_id: str | None


class DeliveryError(Exception):
    """A message the platform did not accept.

    Attributes:
        reason: short, free of personal data (an error code and its meaning).
        permanent: retrying will not help (bad number, blocked, outside the window).
        unreachable: the beneficiary cannot be reached on this channel at all
            (Telegram 403 "blocked by the user", Twilio 21610 "unsubscribed").
        retry_after: seconds the platform asked us to wait, when it said.
        code: the platform's error code, when it gave one.
        outside_window: the platform's messaging window (WhatsApp's 24 hours) is
            closed: the message may go again as an approved template.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        unreachable: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
        outside_window: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent or unreachable
        self.unreachable = unreachable
        self.retry_after = retry_after
        self.code = code
        self.outside_window = outside_window


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What a platform later said of a message it accepted, in the outbox's terms.

    Attributes:
        status: ``sent``, ``delivered``, ``read`` or ``failed``.
        reason: why it failed: short, free of personal data (a code and its meaning).
        unreachable: the beneficiary cannot be reached on this channel at all.
        outside_window: it failed because the messaging window was closed.
    """

    channel: str
    platform_message_id: str
    status: str
    reason: str | None = None
    unreachable: bool = False
    outside_window: bool = False


# Given to a channel that reports delivery: stores one receipt; raises when it could not.
ReceiptReceiver = Callable[[DeliveryReceipt], Awaitable[None]]


class Overloaded(Exception):
    """The bot cannot take a message now (its queue is full): nothing was stored, and the
    webhook answers 503 with ``Retry-After`` so the platform sends it again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: retry after {retry_after}s")
        self.retry_after = retry_after


def busy_response(error: Overloaded) -> web.Response:
    """What a webhook answers when the bot is too busy to store its message."""
    return web.Response(
        status=503, text="busy, retry later", headers={"Retry-After": str(error.retry_after)}
    )


async def store(work: Awaitable[None], what: str) -> None:
    """Await a receiver's ``work``: storing one message or receipt a webhook brought.

    When it could not be stored, raises the answer that makes the platform send it
    again: 503 with ``Retry-After`` when the bot is too busy (``Overloaded``), else 500,
    logged with ``what`` (the platform's id of it, never its content) and the exception's
    type only, as its text may quote the message.
    """
    try:
        await work
    except Overloaded as busy:
        raise web.HTTPServiceUnavailable(
            text="busy, retry later", headers={"Retry-After": str(busy.retry_after)}
        ) from None
    except Exception as error:
        log.error("%s not stored (%s)", what, type(error).__name__)
        raise web.HTTPInternalServerError(text="not stored") from None


class BadBody(ValueError):
    """A request body refused before anything reads it: ``status`` is 400 or 413."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes; BadBody(413) beyond it."""
    if request.content_length is not None and request.content_length > limit:
        raise BadBody(413, "body too large")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise BadBody(413, "body too large")
    return bytes(body)


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of ``body``; BadBody(400) when it is not JSON (NaN and Infinity are
    not), or is nested deeper than ``max_depth``."""
    value = _json_loads(body)
    # Deeper than ``max_depth`` takes more brackets than that: most bodies need no walk.
    brackets = body.count(b"[") + body.count(b"{")
    if brackets > max_depth and _deeper_than(value, max_depth):
        raise BadBody(400, "JSON nested too deeply")
    return value


# An integer beyond 64 bits has at least this many digits (orjson reads it as a float).
_LONG_NUMBER = re.compile(b"[0-9]{19}")


def _json_loads(body: bytes) -> Any:
    """By orjson, several times faster than ``json`` and as strict; by ``json`` what
    orjson refuses (UTF-16) or reads otherwise (an integer beyond 64 bits, as a float)."""
    if _LONG_NUMBER.search(body) is None:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(body)
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:  # deeper than Python's own limit: refused by the parser
        raise BadBody(400, "JSON nested too deeply") from None
    except ValueError:  # also UnicodeDecodeError
        raise BadBody(400, "not JSON") from None


def json_body(value: Any) -> bytes:
    """``value`` as a JSON body in UTF-8 (by orjson; by ``json`` what orjson refuses, an
    integer beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    # With a stack, not recursion: the value may be as deep as the parser allowed.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class MediaError(Exception):
    """An attachment that could not be fetched (too large, gone, refused)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one channel can carry; the core asks this, never a list of channel names.

    Attributes:
        media: kinds of attachment it receives (``image``, ``document``, ``audio``…).
        buttons: choices it can draw as buttons, at most (0: numbered text only).
        button_label_chars: the longest button label it draws as a button.
        text_limit: the longest text of one message; longer ones are split.
        utf16: ``text_limit`` counts UTF-16 units (an emoji may take two), not characters.
        window: free text only this long after the user last wrote (WhatsApp: 24 hours);
            beyond it, only an approved template of a kind in ``templates``.
        templates: the template kinds it has approved templates for.
        per_second: messages a second the outbox may send on it in all (the share of the
            platform's limit it may use), when it has a limit.
        per_chat_per_second: the same to one user, when limited.
        call_seconds: how long one call to the platform may take (its client's time-outs);
            0 for a channel that sends within the process.
        receipts: it reports what became of a sent message (``DeliveryReceipt``).
        reaches_first: it can send to a user on its own (a notice, a reminder).
        phone_numbers: its user ids are E.164 phone numbers (the sender's mobile).
        holds_requests: it holds requests open (long polls): the server stops it as
            shutdown begins, so they answer at once rather than keep shutdown waiting.
    """

    media: frozenset[str] = frozenset()
    buttons: int = 0
    button_label_chars: int = 0
    text_limit: int | None = None
    utf16: bool = False
    window: timedelta | None = None
    templates: frozenset[str] = frozenset()
    per_second: float | None = None
    per_chat_per_second: float | None = None
    call_seconds: float = 0.0
    receipts: bool = False
    reaches_first: bool = True
    phone_numbers: bool = False
    holds_requests: bool = False


@dataclass(frozen=True, slots=True)
class ChannelSetup:
    """What the composition root gives a channel's ``build``.

    Attributes:
        section: the channel's own configuration section (validated in bot/config.py),
            None for a channel without one.
        public_url: where the platforms reach this server, when set.
        organization: the charity's name, for a page a channel draws (the web chat's).
        on_receipt: stores a delivery receipt.
        text: the message catalogue, for the few words a channel draws itself (the
            button that opens a list, the answer to ``/whoami``).
        replies: reads the replies stored for an address (the web chat's page asks).
        history: reads the last messages of an address (the web chat's new tab asks).
        staff_author: tells a staff member's words in a message from the bot's.
        on_staff: handles what staff write in the staff group.
        polling: fetch updates from the platform instead of waiting for its webhook
            (``tawasul serve --telegram-polling``, for a server no platform can reach).
        one_process: this process delivers every reply itself (SQLite): nothing is
            released elsewhere that a waiting request must look for.
        max_held: requests a channel may hold open at once (the web chat's long polls),
            from what the process may open.
    """

    section: Any
    public_url: str | None
    organization: str
    on_receipt: ReceiptReceiver
    text: Text
    replies: Replies
    history: History
    staff_author: StaffAuthor
    on_staff: StaffReceiver
    polling: bool = False
    one_process: bool = False
    max_held: int = 1_000


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel module's declaration of itself, as ``SPEC`` at module level: the server
    finds every module of ``handlers`` that has one.

    Attributes:
        names: the channel names it serves (persisted: lowercase snake_case).
        capabilities: what each name can carry, before configuration (templates and
            rates come with the configured channel's ``capabilities``).
        section: its configuration section, when ``build`` needs one.
        build: the configured channel, or None (after one log line) when its
            configuration is incomplete; None for a channel the server does not run (the
            console: ``tawasul chat`` runs it).
    """

    names: tuple[str, ...]
    capabilities: Mapping[str, Capabilities] = field(default_factory=dict)
    section: str | None = None
    build: Callable[[ChannelSetup], Channel | None] | None = None


class Channel(Protocol):
    """One platform. It translates only: payload -> InboundMessage, OutboundMessage -> call.

    ``names`` are the channel names it serves (``("whatsapp", "sms")`` for Twilio).
    """

    names: tuple[str, ...]

    def capabilities(self, name: str) -> Capabilities:
        """What ``name`` can carry, as configured (its templates and its rate)."""
        ...

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        """The aiohttp routes of its webhooks; each calls ``receive`` per message."""
        ...

    async def start(self) -> None:
        """Open clients; register webhooks where the platform wants it."""
        ...

    async def stop(self) -> None: ...

    async def send(
        self,
        address: Address,
        message: OutboundMessage,
        *,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Sent:
        """Deliver one message (split within the platform's limits); DeliveryError if not.

        Args:
            first_part: the parts before this index were accepted by an earlier call
                (which then failed on a later part): they are not sent again. Splitting
                is deterministic, so an index names the same part on every call.
            before_part: see ``BeforePart``; never awaited for a message of one part.
        """
        ...

    async def fetch_media(self, media: Media) -> bytes:
        """The attachment's bytes, fetched with the platform's credentials; MediaError if not."""
        ...


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` header names the site at ``host`` (the request's
    Host): the check against cross-site posts, for the web chat and the dashboard."""
    try:
        theirs, ours = urlsplit(origin), urlsplit(f"//{host}")
        their_port, our_port = theirs.port, ours.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(theirs.scheme)
    if default is None or not theirs.hostname:
        return False  # "null" (sandboxed frames, file:) and other schemes
    return theirs.hostname == ours.hostname and (their_port or default) == (our_port or default)
