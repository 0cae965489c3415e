"""The Bot API client: python-telegram-bot's ``Bot`` on aiohttp, sending text in parts, and
Telegram's refusals as ``DeliveryError``.

PTB lets the HTTP client be swapped (``BaseRequest``). The server already runs on
aiohttp; its client costs less per call than httpx's (whose connection pool does work
in proportion to the requests waiting in it), and the outbox sends many at once. The
Bot API and PTB's behaviour are unchanged: status codes are turned into PTB's errors by
``BaseRequest`` itself, time-outs and network failures here into ``TimedOut`` and
``NetworkError``, as PTB's own client does.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import NamedTuple

import aiohttp
from telegram import Bot, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from flows.render import split_text as split_within
from handlers.base import BeforePart, DeliveryError, json_body

# Every Bot API URL carries the token, and PTB logs parameters (message text) at DEBUG:
# keep both out of the logs whatever the root level is.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
logging.getLogger("telegram").setLevel(logging.INFO)

# Waits for the Bot API, in seconds: connecting, and each read of an answer.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
# Calls at once to the Bot API (each outbox lane sends to several chats together).
CONNECTIONS = 100
# Telegram counts a message's length in UTF-16 code units.
MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

_UNSET = type(BaseRequest.DEFAULT_NONE)

# Messages are sent with ``Bot.do_api_request``, which hands back Telegram's answer as it
# came; ``Bot.send_message`` builds a ``Message`` of it (a third of a millisecond, a tenth
# of the server's time at full load) and the outbox reads two numbers of it. PTB nudges
# callers of ``do_api_request`` towards ``sendMessage``: that nudge only is silenced.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning)


def _seconds(value: object, default: float) -> float | None:
    if isinstance(value, _UNSET):
        return default
    return value if isinstance(value, float | int) else None


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` on one ``aiohttp.ClientSession`` (opened by ``initialize``)."""

    def __init__(self, connections: int = CONNECTIONS, read_timeout: float = READ_TIMEOUT) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        timeout = aiohttp.ClientTimeout(
            connect=_seconds(pool_timeout, CONNECT_TIMEOUT),
            sock_connect=_seconds(connect_timeout, CONNECT_TIMEOUT),
            sock_read=_seconds(read_timeout, self._read_timeout),
        )
        data: aiohttp.FormData | bytes | None = None
        headers = {"User-Agent": self.USER_AGENT}
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                data = aiohttp.FormData(request_data.json_parameters)
                for name, (filename, content, mimetype) in files.items():
                    data.add_field(name, content, filename=filename, content_type=mimetype)
            else:
                # A JSON body, which the Bot API takes as well as a form: encoding Arabic
                # text for a form is done byte by byte in Python, JSON's is done in C.
                data = json_body(request_data.parameters)
                headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, url, data=data, timeout=timeout, headers=headers
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error


def make_bot(token: str, api_base_url: str, *, read_timeout: float = READ_TIMEOUT) -> Bot:
    """The Bot API client of ``token`` at ``api_base_url`` (``initialize`` opens it); its
    long polls (``getUpdates``) have a connection of their own."""
    api = api_base_url.rstrip("/")
    return Bot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=AiohttpRequest(read_timeout=read_timeout),
        get_updates_request=AiohttpRequest(connections=1, read_timeout=read_timeout),
    )


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` in messages Telegram takes: at most ``limit`` UTF-16 units each."""
    return split_within(text, limit, utf16=True)


async def send_text(
    bot: Bot,
    chat_id: int | str,
    text: str,
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None,
    *,
    reply_parameters: ReplyParameters | None = None,
    message_thread_id: int | None = None,
    first_part: int = 0,
    before_part: BeforePart | None = None,
) -> SentIds:
    """Send ``text`` in parts, the markup on the last and the reply on the first; from
    ``first_part`` on (see ``Channel.send``). The chat and message ids of the last part.

    Raises:
        DeliveryError: Telegram refused a part, or there was none to send.
    """
    chunks = split_text(text)
    if not chunks:
        raise DeliveryError("empty message", permanent=True)
    sent: SentIds | None = None
    for number, chunk in enumerate(chunks, start=1):
        if number <= first_part:
            continue
        if number > first_part + 1 and before_part is not None:
            await before_part(number - 1)
        try:
            answer = await bot.do_api_request(
                "sendMessage",
                api_kwargs={
                    "chat_id": chat_id,
                    "text": chunk,
                    "reply_markup": markup if number == len(chunks) else None,
                    "reply_parameters": reply_parameters if number == 1 else None,
                    "message_thread_id": message_thread_id,
                },
            )
        except TelegramError as error:
            raise delivery_error(error) from error
        sent = _sent_ids(answer)
    if sent is None:  # every part went in an earlier call
        raise DeliveryError("no part left to send", permanent=True)
    return sent


class SentIds(NamedTuple):
    chat_id: int
    message_id: int


def _sent_ids(answer: object) -> SentIds:
    """The ids in Telegram's answer to ``sendMessage`` (a ``Message``)."""
    match answer:
        case {"message_id": int(message_id), "chat": {"id": int(chat_id)}}:
            return SentIds(chat_id, message_id)
    # Sent, but the answer is not Telegram's: sending it again could repeat it.
    raise DeliveryError("telegram: sendMessage answered without a message", permanent=True)


def delivery_error(error: TelegramError) -> DeliveryError:
    """Telegram's refusal in the outbox's terms (403: the user blocked the bot)."""
    if isinstance(error, EndPointNotFound):
        # ``do_api_request``'s name for a token Telegram no longer knows (404).
        return DeliveryError("telegram: InvalidToken")
    if isinstance(error, Forbidden):
        return DeliveryError(f"403 {describe(error)}", unreachable=True, code="403")
    if isinstance(error, RetryAfter):
        seconds = _retry_after_seconds(error)
        return DeliveryError(
            f"429 flood control, retry in {seconds:g}s", retry_after=seconds, code="429"
        )
    if isinstance(error, BadRequest):
        return DeliveryError(f"400 {describe(error)}", permanent=True, code="400")
    if isinstance(error, ChatMigrated):  # a group's id (not personal data) to configure
        return DeliveryError(
            f"400 group became the supergroup {error.new_chat_id}", permanent=True, code="400"
        )
    if isinstance(error, NetworkError):  # TimedOut included
        return DeliveryError(f"network: {type(error).__name__}")
    return DeliveryError(f"telegram: {type(error).__name__}")


def _retry_after_seconds(error: RetryAfter) -> float:
    # PTB 22 warns on reading it as a number; it becomes a timedelta in the next major.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def describe(error: TelegramError) -> str:
    """Telegram's own description of an API error (never personal data), else the type."""
    if isinstance(error, BadRequest | Forbidden):
        return error.message[:120]
    return type(error).__name__
