"""A local Telegram Bot API (and its file server) on loopback, for the real python-telegram-bot.

Usage::

    async with FakeTelegram(TOKEN) as api:
        channel = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=api.base_url)
        await channel.start()                          # getMe
        ...
        [call] = api.calls("sendMessage")              # every call, in order, failed ones too
        call.params["chat_id"], call.params["text"], call.params.get("reply_markup")

        api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
        api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
        api.add_file("BQACAgIAAxkB", b"%PDF-1.4 ...", "documents/file_7.pdf")
        api.queue_update(private_message(42, "السلام عليكم"))   # served by getUpdates
        status = await api.deliver(private_message(42, "١"))    # POSTed to the set webhook
        await api.wait_for("sendMessage", count=2)              # replies sent by an outbox

        # the staff group (a supergroup: its id starts with -100)
        await api.deliver(group_message(-1001, 7, "/case REQ-000001", reply_to_message_id=5))
        await api.deliver(group_callback(-1001, 7, "handoff:take:3", message_id=5))
        api.message(-1001, 5)                                   # a sent message, as edited

Methods served: getMe, logOut, close, setWebhook, deleteWebhook, getWebhookInfo,
getUpdates (long polling; an update is served until a later call's ``offset`` confirms
it, as Telegram does; 409 while a webhook is set), sendMessage, editMessageText,
editMessageReplyMarkup, sendChatAction, answerCallbackQuery, getFile, and
``GET /file/bot<token>/<file_path>``. Others answer 404 like Telegram unless given a
result with ``handle``. A wrong token gets 401.

Chats are typed by their id as Telegram numbers them: positive is a private chat,
``-100…`` a supergroup, other negative ids a basic group. Sent messages are kept per
chat, so a reply (``reply_parameters`` or ``reply_to_message_id``) carries the message
it answers, and only they can be edited; an edit that changes nothing is refused with
"message is not modified", as Telegram does.

Parameters are recorded as sent: JSON bodies keep their types; form bodies (what PTB
sends) keep strings, except the parameters that are numbers, booleans or JSON in the Bot
API (``chat_id``, ``reply_markup``, ``allowed_updates``, ``drop_pending_updates``…),
which are decoded. ``sendMessage`` is checked like Telegram does: a ``chat_id``, a text
of 1-4096 UTF-16 units after trimming, every button with a text, callback data of 1-64
bytes; else 400. ``answerCallbackQuery`` knows only the queries it delivered (through
``deliver``, ``queue_update`` or ``delivered``), each answered once, as Telegram does.

Limits, as Telegram keeps them: more than one message a second to one chat, or more than
30 a second in all, is answered 429 with ``retry_after`` (token buckets of that rate,
with a quarter of a message of slack for the scheduling jitter of a loaded machine).
Tests about conversations rather than pacing raise them (``api.limits(per_chat=50)``),
and tests on an injected clock give it (``api.limits(clock=fake.monotonic)``)::

    api.slow("sendMessage", 0.5)          # the next call answers half a second late
    api.slow("sendMessage", 60, times=2)  # ...or later than the client waits: TimedOut
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from aiohttp import ClientSession, web

DEFAULT_TOKEN = "123456789:AAH-fake-telegram-token-for-tests_0"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT_UTF16 = 4096
MAX_CALLBACK_DATA_BYTES = 64
# Telegram: "no more than one message per second" in a chat, about 30 a second in all.
PER_CHAT_PER_SECOND = 1.0
PER_SECOND = 30.0
# How far below a whole token a send may dip: the jitter between the sender's clock and
# ours on a busy machine, not a licence to burst.
RATE_SLACK = 0.25
# An inline button does exactly one of these.
INLINE_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
INVALID_QUERY = "Bad Request: query is too old and response timeout expired or query ID is invalid"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

# Form parameters that are not strings in the Bot API; everything else stays a string.
TYPED_PARAMS = frozenset(
    {
        "allow_sending_without_reply",
        "allowed_updates",
        "cache_time",
        "caption_entities",
        "chat_id",
        "commands",
        "disable_notification",
        "drop_pending_updates",
        "entities",
        "limit",
        "link_preview_options",
        "max_connections",
        "message_id",
        "message_thread_id",
        "offset",
        "protect_content",
        "reply_markup",
        "reply_parameters",
        "reply_to_message_id",
        "scope",
        "show_alert",
        "timeout",
    }
)

Params = dict[str, Any]
_Update = TypeVar("_Update", bound=Mapping[str, Any])
# A method's behaviour: its params -> the "result" to send back (or an ApiError to raise).
MethodHandler = Callable[[Params], Any | Awaitable[Any]]


@dataclass(slots=True)
class ApiCall:
    """One Bot API request the fake received."""

    method: str
    params: Params
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)
    status: int | None = None  # the HTTP status it was answered with; None while pending


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request (sendDocument with a new file, say)."""

    filename: str | None
    content_type: str
    data: bytes


class ApiError(Exception):
    """Raise from a ``handle`` function to answer with a Bot API error."""

    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


@dataclass(slots=True)
class _Failure:
    status: int
    description: str
    retry_after: int | None
    times: int
    migrate_to_chat_id: int | None = None


@dataclass(slots=True)
class _Bucket:
    """``rate`` messages a second, ``capacity`` saved up: Telegram's limits as we model them."""

    rate: float
    capacity: float
    level: float
    stamp: float

    def take(self, now: float) -> int | None:
        """Take a message's token; when there is none, the ``retry_after`` to answer with."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level < 1 - RATE_SLACK:
            return max(1, math.ceil((1 - self.level) / self.rate))
        self.level -= 1
        return None


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    data: bytes
    path: str
    file_size: int | None


@dataclass(slots=True)
class _State:
    calls: list[ApiCall] = field(default_factory=list)
    failures: dict[str, deque[_Failure]] = field(default_factory=dict)
    files: dict[str, _StoredFile] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    downloads: list[str] = field(default_factory=list)
    # What the bot sent, by (chat id, message id), as last edited.
    messages: dict[tuple[Any, Any], dict[str, Any]] = field(default_factory=dict)
    # Callback queries delivered and not yet answered.
    open_queries: set[str] = field(default_factory=set)
    # Calls answered late: method -> [seconds, how many more times].
    delays: dict[str, deque[list[float]]] = field(default_factory=dict)
    buckets: dict[Any, _Bucket] = field(default_factory=dict)


class FakeTelegram:
    """The Bot API of one bot, served on ``127.0.0.1`` at a free port.

    Args:
        token: the bot token the client must use (its digits before ``:`` are the bot id).
        username: the bot's username, as ``getMe`` tells it.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, username: str = "tawasul_test_bot") -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1
        self.me: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Tawasul",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._state = _State()
        self._handlers: dict[str, MethodHandler] = {}
        # Telegram numbers messages per chat: two chats have their own message 1.
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._update_ids = itertools.count(1)
        self._updates_changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.per_chat_per_second = PER_CHAT_PER_SECOND
        self.per_second = PER_SECOND
        self.clock: Callable[[], float] = time.monotonic

    # Lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        # No access log: every request line carries the token.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self._closing = True
        self._updates_changed.set()  # release long polls, so the server can stop at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """What to give the client as its API base (``telegram.api_base_url``)."""
        return f"http://127.0.0.1:{self._port}"

    # What happened

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Every call received (of ``method`` when given, case-insensitive), oldest first."""
        wanted = method.lower() if method else None
        return [c for c in self._state.calls if wanted is None or c.method.lower() == wanted]

    @property
    def downloads(self) -> list[str]:
        """The file paths downloaded from the file server, in order."""
        return list(self._state.downloads)

    @property
    def webhook(self) -> dict[str, Any] | None:
        """The webhook as last set (``url``, ``secret_token``, ``allowed_updates``…), or None."""
        return dict(self._state.webhook) if self._state.webhook else None

    def message(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """A message the bot sent (``text``, ``reply_markup``…) as last edited, or None."""
        stored = self._state.messages.get((chat_id, message_id))
        return json.loads(json.dumps(stored)) if stored is not None else None

    def message_ids(self, chat_id: int | str) -> list[int]:
        """The ids of the messages the bot sent to one chat, oldest first."""
        return sorted(mid for chat, mid in self._state.messages if chat == chat_id)

    async def wait_for(self, method: str, count: int = 1, within: float = 5.0) -> list[ApiCall]:
        """The calls of ``method`` once there are ``count`` of them; TimeoutError if not
        ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(found := self.calls(method)) < count:
            if time.monotonic() > deadline:
                seen = [c.method for c in self._state.calls]
                raise TimeoutError(f"{count} {method} call(s) expected, got {len(found)}: {seen}")
            await asyncio.sleep(0.01)
        return found

    # What should happen

    def limits(
        self,
        *,
        per_chat: float | None = None,
        overall: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Change the rate limits (messages a second) or the clock they are kept on."""
        if per_chat is not None:
            self.per_chat_per_second = per_chat
        if overall is not None:
            self.per_second = overall
        if clock is not None:
            self.clock = clock
        self._state.buckets.clear()

    def slow(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` only after ``seconds``."""
        self._state.delays.setdefault(method.lower(), deque()).append([seconds, times])

    def delivered(self, update: _Update) -> _Update:
        """Note an update a test POSTs to the bot itself, so that its callback query can
        be answered (``deliver`` and ``queue_update`` do this); returns it."""
        query = update.get("callback_query")
        if isinstance(query, Mapping) and "id" in query:
            self._state.open_queries.add(str(query["id"]))
        return update

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with a Bot API error.

        PTB raises ``Forbidden`` for 403, ``BadRequest`` for 400, ``RetryAfter`` whenever
        ``retry_after`` is given (Telegram sends it with 429), ``ChatMigrated`` whenever
        ``migrate_to_chat_id`` is (a group that became a supergroup), ``NetworkError`` for
        5xx.
        """
        failure = _Failure(status, description, retry_after, times, migrate_to_chat_id)
        self._state.failures.setdefault(method.lower(), deque()).append(failure)

    def handle(self, method: str, handler: MethodHandler) -> None:
        """Answer ``method`` with ``handler(params)`` (sync or async) as the result."""
        self._handlers[method.lower()] = handler

    def add_file(
        self, file_id: str, data: bytes, path: str | None = None, *, file_size: int | None = None
    ) -> str:
        """Make ``file_id`` known to getFile and its bytes downloadable; returns its path.

        ``file_size`` is what getFile reports (default ``len(data)``): set it to pretend a
        file is larger than it is, or to a negative number to leave it out.
        """
        path = path or f"documents/{file_id}"
        size = len(data) if file_size is None else (None if file_size < 0 else file_size)
        self._state.files[file_id] = _StoredFile(file_id, data, path, size)
        return path

    def queue_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates (an ``update_id`` is assigned when it has none)."""
        queued = self._with_update_id(update)
        self.delivered(queued)
        self._state.updates.append(queued)
        self._updates_changed.set()
        return queued

    async def deliver(self, update: Mapping[str, Any], *, secret: str | None = None) -> int:
        """POST an update to the webhook as Telegram does; the HTTP status of the answer.

        The secret header is the webhook's ``secret_token`` unless ``secret`` is given.
        Telegram would send the update again on anything but 2xx: call again to do so.
        """
        webhook = self._state.webhook
        if not webhook or not webhook.get("url"):
            raise AssertionError("no webhook is set")
        url = str(webhook["url"])
        host = urlsplit(url).hostname or ""
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"webhook {url} is not on loopback: point public_url at it")
        self.delivered(update)
        token = secret if secret is not None else webhook.get("secret_token")
        headers = {SECRET_HEADER: str(token)} if token else {}
        async with (
            ClientSession() as session,
            session.post(url, json=self._with_update_id(update), headers=headers) as response,
        ):
            return response.status

    def _with_update_id(self, update: Mapping[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self._update_ids)} | dict(update)

    # The server

    async def _api(self, request: web.Request) -> web.Response:
        call = ApiCall(request.match_info["method"], await _params(request))
        self._state.calls.append(call)
        response = await self._answer(request, call.method, call.params)
        call.status = response.status
        return response

    async def _answer(self, request: web.Request, method: str, params: Params) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        delays = self._state.delays.get(method.lower())
        if delays:
            delay = delays[0]
            delay[1] -= 1
            if delay[1] <= 0:
                delays.popleft()
            await asyncio.sleep(delay[0])
        failures = self._state.failures.get(method.lower())
        if failures:
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.popleft()
            return _error(
                failure.status, failure.description, failure.retry_after, failure.migrate_to_chat_id
            )
        try:
            result = await self._result(method.lower(), params)
        except ApiError as error:
            return _error(
                error.status, error.description, error.retry_after, error.migrate_to_chat_id
            )
        return web.json_response({"ok": True, "result": result})

    def _rate_limited(self, chat: Any) -> int | None:
        """Telegram's flood limits on messages: the retry_after of a refusal, or None."""
        now = self.clock()
        buckets = [self._bucket(("chat", chat), self.per_chat_per_second, now)]
        buckets.append(self._bucket("all", self.per_second, now))
        for bucket in buckets:  # refused calls take no token
            bucket.level = min(bucket.capacity, bucket.level + (now - bucket.stamp) * bucket.rate)
            bucket.stamp = now
        waits = [
            max(1, math.ceil((1 - b.level) / b.rate)) for b in buckets if b.level < 1 - RATE_SLACK
        ]
        if waits:
            return max(waits)
        for bucket in buckets:
            bucket.take(now)
        return None

    def _bucket(self, key: Any, rate: float, now: float) -> _Bucket:
        bucket = self._state.buckets.get(key)
        if bucket is None:
            capacity = max(1.0, rate)
            bucket = self._state.buckets[key] = _Bucket(rate, capacity, capacity, now)
        return bucket

    async def _result(self, method: str, params: Params) -> Any:
        custom = self._handlers.get(method)
        if custom is not None:
            result = custom(params)
            return await result if isinstance(result, Awaitable) else result
        state = self._state
        if method == "getme":
            return self.me
        if method in ("logout", "close", "sendchataction"):
            return True
        if method == "answercallbackquery":
            query_id = str(params.get("callback_query_id") or "")
            if query_id not in state.open_queries:
                raise ApiError(400, INVALID_QUERY)
            state.open_queries.discard(query_id)
            return True
        if method == "setwebhook":
            if not params.get("url"):
                state.webhook = None
            else:
                state.webhook = dict(params)
            return True
        if method == "deletewebhook":
            state.webhook = None
            if params.get("drop_pending_updates") is True:
                state.updates.clear()
            return True
        if method == "getwebhookinfo":
            return {
                "url": (state.webhook or {}).get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(state.updates),
            }
        if method == "getupdates":
            return await self._get_updates(params)
        if method == "sendmessage":
            return self._send_message(params)
        if method in ("editmessagetext", "editmessagereplymarkup"):
            return self._edit_message(params, text=method == "editmessagetext")
        if method == "getfile":
            stored = state.files.get(str(params.get("file_id")))
            if stored is None:
                raise ApiError(400, "Bad Request: invalid file_id")
            file: dict[str, Any] = {
                "file_id": stored.file_id,
                "file_unique_id": f"u-{stored.file_id}"[:32],
                "file_path": stored.path,
            }
            if stored.file_size is not None:
                file["file_size"] = stored.file_size
            return file
        raise ApiError(404, "Not Found")

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        state = self._state
        if state.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        if offset:  # confirms every update before it
            state.updates = [u for u in state.updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if not state.updates and timeout > 0 and not self._closing:
            self._updates_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_changed.wait(), timeout)
        return state.updates[:limit]

    def _send_message(self, params: Params) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        assert isinstance(chat_id, int | str)
        text = _checked_text(params)
        inline = _checked_inline_keyboard(params)
        replied = self._replied(chat_id, params)
        retry_after = self._rate_limited(chat_id)
        if retry_after is not None:  # after the checks: a refused message takes no token
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids.setdefault(str(chat_id), itertools.count(1))),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self.me,
            "text": text,
        }
        if inline is not None:
            message["reply_markup"] = params["reply_markup"]
        if replied is not None:
            message["reply_to_message"] = replied
        self._state.messages[(chat_id, message["message_id"])] = message
        return message

    def _replied(self, chat_id: int | str, params: Params) -> dict[str, Any] | None:
        """The message a sendMessage answers, if it names one that exists."""
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow = reply.get("allow_sending_without_reply") is True
            chat_id = reply.get("chat_id", chat_id)
        elif params.get("reply_to_message_id") is not None:
            message_id = params["reply_to_message_id"]
            allow = params.get("allow_sending_without_reply") is True
        else:
            return None
        found = self._state.messages.get((chat_id, message_id))
        if found is None and not allow:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return {k: v for k, v in found.items() if k != "reply_to_message"} if found else None

    def _edit_message(self, params: Params, *, text: bool) -> dict[str, Any]:
        key = (params.get("chat_id"), params.get("message_id"))
        if key[0] in (None, "") or key[1] is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        stored = self._state.messages.get(key)
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        edited = dict(stored)
        if text:
            edited["text"] = _checked_text(params)
        # As in Telegram, an edit without reply_markup removes the inline keyboard.
        edited.pop("reply_markup", None)
        if _checked_inline_keyboard(params):
            edited["reply_markup"] = params["reply_markup"]
        if edited == stored:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        edited["edit_date"] = int(time.time())
        self._state.messages[key] = edited
        return edited

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        self._state.downloads.append(path)
        stored = next((f for f in self._state.files.values() if f.path == path), None)
        if stored is None:
            return _error(404, "Not Found")
        return web.Response(body=stored.data, content_type="application/octet-stream")


async def _params(request: web.Request) -> Params:
    params: Params = {key: _typed(key, value) for key, value in request.query.items()}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            # As Telegram does, a string where a number or an object goes is read as JSON
            # ("123" is the chat 123, a reply_markup may come JSON-encoded).
            params.update({k: _typed(k, v) if isinstance(v, str) else v for k, v in body.items()})
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = _typed(key, value)
    return params


def _typed(key: str, value: str | bytes | bytearray) -> Any:
    text = value if isinstance(value, str) else bytes(value).decode()
    if key not in TYPED_PARAMS:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # a chat_id may be "@channelname"


def _checked_text(params: Params) -> str:
    text = str(params.get("text") or "").strip()
    if not text:
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text.encode("utf-16-le")) // 2 > MAX_TEXT_UTF16:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def _checked_inline_keyboard(params: Params) -> list[list[dict[str, Any]]] | None:
    markup = params.get("reply_markup")
    inline = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    keyboard = markup.get("keyboard") if isinstance(markup, dict) else None
    for row in [*(inline or ()), *(keyboard or ())]:
        for button in row:
            label = button if isinstance(button, str) else button.get("text")
            if not str(label or "").strip():
                raise ApiError(400, "Bad Request: can't parse keyboard button: text is empty")
    for row in inline or ():
        for button in row:
            if not INLINE_ACTIONS & set(button):
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are "
                    "unallowed in the inline keyboard",
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return inline


def _chat(chat_id: int | str, **fields: Any) -> dict[str, Any]:
    """A chat as Telegram describes it, typed by its id."""
    if isinstance(chat_id, int) and chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Noura"} | fields
    if str(chat_id).startswith("@"):
        return {"id": -1000000000001, "type": "channel", "username": str(chat_id)[1:]} | fields
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "Staff"} | fields


def _error(
    status: int,
    description: str,
    retry_after: int | None = None,
    migrate_to_chat_id: int | None = None,
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    parameters = {
        key: value
        for key, value in (("retry_after", retry_after), ("migrate_to_chat_id", migrate_to_chat_id))
        if value is not None
    }
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


# Updates as Telegram sends them, for tests that need one and not its every detail.

BENEFICIARY = {"id": 4242, "is_bot": False, "first_name": "Noura", "language_code": "ar"}


def private_message(
    chat_id: int, text: str | None = None, *, date: int | None = None, **fields: Any
) -> dict[str, Any]:
    """A private chat message update (no ``update_id``: the fake assigns one).

    Extra ``fields`` go into the message (``photo=[...]``, ``caption="..."``).
    """
    message: dict[str, Any] = {
        "message_id": next(_sample_message_ids),
        "from": BENEFICIARY | {"id": chat_id},
        "chat": {"id": chat_id, "first_name": "Noura", "type": "private"},
        "date": date if date is not None else int(time.time()),
    }
    if text is not None:
        message["text"] = text
    return {"message": message | fields}


def callback_query(chat_id: int, data: str, *, query_id: str | None = None) -> dict[str, Any]:
    """An inline button tap on one of the bot's messages in a private chat."""
    return {
        "callback_query": {
            "id": query_id or str(next(_sample_message_ids) + 4_000_000_000),
            "from": BENEFICIARY | {"id": chat_id},
            "message": {
                "message_id": next(_sample_message_ids),
                "from": {"id": 1, "is_bot": True, "first_name": "Tawasul"},
                "chat": {"id": chat_id, "first_name": "Noura", "type": "private"},
                "date": int(time.time()),
                "text": "...",
            },
            "chat_instance": "-1234567890123456789",
            "data": data,
        }
    }


def group_message(
    chat_id: int,
    user_id: int,
    text: str,
    *,
    reply_to_message_id: int | None = None,
    first_name: str = "Sara",
    date: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A text message in a group (``-100…``: a supergroup) by a member, not by the bot.

    A leading ``/word`` gets its ``bot_command`` entity; ``reply_to_message_id`` makes it
    a reply to one of the bot's messages there. Extra ``fields`` go into the message.
    """
    chat = _chat(chat_id)
    message: dict[str, Any] = {
        "message_id": next(_sample_message_ids),
        "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ar"},
        "chat": chat,
        "date": date if date is not None else int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        length = len(command.encode("utf-16-le")) // 2
        message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
    if reply_to_message_id is not None:
        message["reply_to_message"] = {
            "message_id": reply_to_message_id,
            "from": SAMPLE_BOT,
            "chat": chat,
            "date": int(time.time()) - 60,
            "text": "...",
        }
    return {"message": message | fields}


def group_callback(
    chat_id: int,
    user_id: int,
    data: str,
    message_id: int,
    *,
    first_name: str = "Sara",
    query_id: str | None = None,
) -> dict[str, Any]:
    """A member's tap on an inline button of the bot's message ``message_id`` in a group."""
    return {
        "callback_query": {
            "id": query_id or str(next(_sample_message_ids) + 4_000_000_000),
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "message": {
                "message_id": message_id,
                "from": SAMPLE_BOT,
                "chat": _chat(chat_id),
                "date": int(time.time()),
                "text": "...",
            },
            "chat_instance": "-1234567890123456789",
            "data": data,
        }
    }


SAMPLE_BOT = {"id": 1, "is_bot": True, "first_name": "Tawasul", "username": "tawasul_test_bot"}
_sample_message_ids = itertools.count(1000)
