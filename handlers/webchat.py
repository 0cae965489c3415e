"""The website chat channel: an Arabic chat page, its JSON API, and long-polling for replies."""

from __future__ import annotations

import asyncio
import hashlib
import html
import ipaddress
import json
import logging
import math
import re
import secrets
import string
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from flows.types import LANGUAGES, Address, InboundMessage, Media, OutboundMessage
from handlers.base import (
    MAX_MEDIA_BYTES,
    BadBody,
    BeforePart,
    Capabilities,
    ChannelSetup,
    ChannelSpec,
    History,
    MediaError,
    Overloaded,
    Receiver,
    Replies,
    Said,
    Sent,
    StaffAuthor,
    Text,
    busy_response,
    parse_json,
    read_body,
    same_origin,
)

log = logging.getLogger(__name__)

CHANNEL = "web"
COOKIE = "tawasul_chat"
# The page keeps its session token itself and sends it in this header: in a frame on
# another site the browser sends no cookie of ours (SameSite, third-party blocking).
SESSION_HEADER = "X-Chat-Session"
# The same session as a partitioned cookie (CHIPS): kept by browsers that block
# third-party cookies, but only under the site that frames the chat, so a reload of the
# charity's page finds its conversation even where the frame may not use storage.
EMBED_COOKIE = "tawasul_chat_embed"
COOKIE_MAX_AGE = 90 * 24 * 60 * 60
MAX_BODY_BYTES = 16 * 1024
# A photo or PDF a visitor sends (where the conversation asks for documents).
MAX_FILE_BYTES = MAX_MEDIA_BYTES
MAX_FILENAME_CHARS = 100
# Files being received at once, each held in memory until its message is stored.
MAX_FILES_AT_ONCE = 16
# What a file is, told by its first bytes (never by its name or the browser's word).
_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1"})
# Media references are opaque to the flows; fetch_media turns this one back into the
# bytes the upload carried (held only while its message is being taken).
FILE_PREFIX = "web-file:"
MAX_TEXT_CHARS = 5_000
MAX_ID_CHARS = 64
# Payloads are the flows' own choice payloads ("1", "rate_5"): short by construction.
MAX_PAYLOAD_CHARS = 256
# A posted message is one flat object.
MAX_JSON_DEPTH = 2
# Another server process may have released a reply without ringing our bell.
RECHECK_SECONDS = 2.0
# send() runs before the outbox commits the message as sent, so after a ring the
# database is looked at again soon, then less and less often.
RECHECK_AFTER_RING_SECONDS = 0.05
# How often a waiting poll looks whether its client is still there (no database read).
CLIENT_CHECK_SECONDS = 1.0
# The longest wait a client may name; more is refused, not shortened.
MAX_WAIT_SECONDS = 3600
# New conversations one client address may open in a minute: a thousand posts without
# a session must not become a thousand identities, while a family or an office behind
# one address stays well within it. An IPv6 client is counted by its /64 network.
NEW_SESSIONS_PER_MINUTE = 20
# Sessions remembered as already known, so their messages do not count as new ones.
KNOWN_SESSIONS = 50_000
# Polls held open at once: in all (each holds a connection, so an open file), and per
# visitor (a few tabs).
MAX_POLLS = 1_000
MAX_POLLS_PER_VISITOR = 3
# What a poll refused for being one too many is told to wait, in seconds.
BUSY_RETRY_SECONDS = 5


_DEFAULT_PORTS = {"http": 80, "https": 443}
_STATIC = {
    "chat.js": "text/javascript",
    "chat.css": "text/css",
}
# The page's own words, by the names chat.html and chat.js use, and their catalogue keys:
# the charity's own wording (texts.overrides) reaches the page too. chat.js switches the
# page to the language of the bot's replies with those it uses.
_PAGE_WORDS: Final = {
    "title": "webchat.title",
    "welcome": "webchat.welcome",
    "start": "webchat.start",
    "noscript": "webchat.noscript",
}
_SCRIPT_WORDS: Final = {
    "placeholder": "webchat.placeholder",
    "label": "webchat.label",
    "send": "webchat.send",
    "attach": "webchat.attach",
    "choices": "webchat.choices",
    "offline": "webchat.offline",
    "failed": "webchat.failed",
    "tooBig": "webchat.too_big",
    "fileType": "webchat.file_type",
    "blocked": "webchat.blocked",
    "openElsewhere": "webchat.open_elsewhere",
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_CLIENT_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_CHARS}}}")
_AFTER = re.compile(r"[0-9]{1,18}")  # ASCII only: int() would also take "٣" and " 3"
# Plain decimal seconds: float() would also take "nan", "inf", "1e9" and "٣".
_WAIT = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,6})?")
# Photos and PDFs; no limit of its own on buttons (the page draws every choice as one).
CAPABILITIES = Capabilities(
    media=frozenset({"image", "document"}), buttons=100, holds_requests=True
)
_NO_STORE = {"Cache-Control": "no-store"}


def session_id(token: str) -> str:
    """The web user id of a session: a hash, so the database never holds the cookie."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str
    version: str  # a hash of the body

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@dataclass(slots=True)
class _Bell:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0


class _Doorbells:
    """One event per web address being polled; send() rings it."""

    def __init__(self) -> None:
        self._bells: dict[Address, _Bell] = {}

    @contextmanager
    def listen(self, address: Address) -> Iterator[_Bell]:
        bell = self._bells.setdefault(address, _Bell())
        bell.listeners += 1
        try:
            yield bell
        finally:
            bell.listeners -= 1
            if bell.listeners == 0:
                del self._bells[address]

    def ring(self, address: Address) -> None:
        bell = self._bells.get(address)
        if bell is not None:
            # Waiters hold the old event; a fresh one is for whoever listens next.
            bell.event.set()
            bell.event = asyncio.Event()

    def ring_all(self) -> None:
        for address in list(self._bells):
            self.ring(address)


class _NewSessions:
    """Sessions seen lately, and when each client address opened its new ones (a sliding
    minute: never more than ``per_minute`` in any 60 seconds)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._known: OrderedDict[str, None] = OrderedDict()
        self._opened: dict[str, deque[float]] = {}
        self._told: set[str] = set()
        self._swept_at = clock()

    def admit(self, session: str, client: str) -> bool:
        """Whether a message of ``session`` from ``client`` may be taken."""
        if session in self._known:
            self._known.move_to_end(session)
            return True
        now = self._clock()
        self._sweep(now)
        opened = self._opened.setdefault(client, deque())
        while opened and opened[0] <= now - 60:
            opened.popleft()
        if len(opened) >= self._per_minute:
            if client not in self._told:  # once a minute per address, not per post
                self._told.add(client)
                log.warning("web chat: too many new conversations from one address")
            return False
        opened.append(now)
        self._known[session] = None
        if len(self._known) > KNOWN_SESSIONS:
            self._known.popitem(last=False)
        return True

    def _sweep(self, now: float) -> None:
        # Addresses quiet for a minute are forgotten, so the table stays small.
        if now - self._swept_at < 60:
            return
        self._swept_at = now
        self._told.clear()
        for client, opened in list(self._opened.items()):
            if not opened or opened[-1] <= now - 60:
                del self._opened[client]


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebChatChannel:
    """The chat on the charity's website: anonymous sessions, a long-polled inbox.

    A session is a random token: in a cookie (SameSite=Strict) on our own site; in a
    frame on the charity's own domain, where the browser refuses that cookie, kept by the
    page (in storage when allowed, else in memory) and sent in ``SESSION_HEADER``, and in
    a partitioned cookie (``EMBED_COOKIE``) that survives a reload there.

    Messages to a visitor are not pushed anywhere: the outbox stores them, ``send`` only
    wakes that visitor's pending poll, and the poll reads them through ``replies``.

    Args:
        replies: the server's reader of messages released to one web address.
        secure_cookies: mark the session cookie Secure (the site is served over HTTPS).
        poll_seconds: how long a poll waits for a reply before answering with none.
        recheck_seconds: how often a waiting poll reads the database without being woken
            (another server process may have released its reply); None when this process
            delivers every web message itself (SQLite), so only a wake-up reads.
        max_polls: polls held open at once, in all; more are told to come back later.
        max_polls_per_visitor: polls one session may hold open at once.
        new_sessions_per_minute: new conversations one client address may open a minute.
        embed_origins: the sites allowed to show the page in a frame besides our own
            (``("https://charity.org.sa",)``), and whose requests the API accepts.
        public_url: the address people use (behind a reverse proxy the Host header may
            be the proxy's upstream): an ``Origin`` naming it is ours.
        text: the message catalogue, for the page's own words (``webchat.*``).
        title: the charity's name, shown as the page's title and heading.
        history: the server's reader of a visitor's last messages both ways, which a new
            tab of the page shows first.
        staff_author: tells a staff member's words from the bot's (``flows.staff_author``),
            so that the page shows a person's words apart, under who wrote them.
    """

    names: tuple[str, ...] = (CHANNEL,)

    def capabilities(self, name: str) -> Capabilities:
        return CAPABILITIES

    def __init__(
        self,
        replies: Replies,
        *,
        text: Text,
        secure_cookies: bool = False,
        poll_seconds: float = 25.0,
        embed_origins: Sequence[str] = (),
        public_url: str | None = None,
        title: str | None = None,
        history: History | None = None,
        staff_author: StaffAuthor | None = None,
        recheck_seconds: float | None = RECHECK_SECONDS,
        max_polls: int = MAX_POLLS,
        max_polls_per_visitor: int = MAX_POLLS_PER_VISITOR,
        new_sessions_per_minute: int = NEW_SESSIONS_PER_MINUTE,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        if recheck_seconds is not None and recheck_seconds <= 0:
            raise ValueError("recheck_seconds must be positive")
        if min(max_polls, max_polls_per_visitor, new_sessions_per_minute) < 1:
            raise ValueError("the web chat's limits must be at least 1")
        self._replies = replies
        self._history = history
        self._author = staff_author
        self._secure = secure_cookies
        self._poll_seconds = poll_seconds
        self._recheck_seconds = recheck_seconds
        self._max_polls = max_polls
        self._max_polls_per_visitor = max_polls_per_visitor
        self._polls: dict[Address, int] = {}
        self._open_polls = 0
        self._busy_logged_at = -math.inf
        self._new_sessions = _NewSessions(new_sessions_per_minute)
        self._doorbells = _Doorbells()
        self._stopping = False
        self._assets = {name: _asset(name, kind) for name, kind in _STATIC.items()}
        self._page = _page(self._assets, text, title)
        self._csp = _content_security_policy(embed_origins)
        self._uploads: dict[str, bytes] = {}
        self._files_open = 0
        self._origins = {origin_of(url) for url in (*embed_origins, public_url) if url}

    @property
    def open_polls(self) -> int:
        """Polls being held open now."""
        return self._open_polls

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        async def post_message(request: web.Request) -> web.Response:
            return await self._post_message(request, receive)

        async def post_file(request: web.Request) -> web.Response:
            return await self._post_file(request, receive)

        return [
            web.get("/chat", self._chat_page),
            web.get("/chat/static/{name}", self._static),
            web.post("/api/chat/messages", post_message),
            web.get("/api/chat/messages", self._poll),
            web.post("/api/chat/files", post_file),
            web.get("/api/chat/history", self._history_of),
        ]

    async def start(self) -> None:
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        self._doorbells.ring_all()

    async def send(
        self,
        address: Address,
        message: OutboundMessage,
        *,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Sent:
        """The outbox has stored the message: wake the visitor's poll so it reads it (one
        part, whatever its length)."""
        self._doorbells.ring(address)
        return Sent(None)

    async def fetch_media(self, media: Media) -> bytes:
        """The bytes of a file being taken now (the server keeps it while it takes the
        message); nothing once that is over."""
        content = self._uploads.get(media.url)
        if content is None:
            raise MediaError("the web chat's file is no longer held")
        return content

    # Routes

    async def _chat_page(self, request: web.Request) -> web.Response:
        response = web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={**_NO_STORE, **self._security_headers()},
        )
        token = _cookie_token(request)
        # Strict cookies are not sent on a navigation from another site (a link on the
        # charity's page on another domain): minting one then would replace the
        # visitor's session. The page's first API call mints it when it is really missing.
        if token is not None or request.headers.get("Sec-Fetch-Site") != "cross-site":
            self._set_cookie(response, token or _new_token())
        return response

    async def _static(self, request: web.Request) -> web.Response:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        # The page names each file with its version, so those URLs never change content.
        cache = (
            "public, max-age=31536000, immutable"
            if request.query.get("v") == asset.version
            else "no-cache"
        )
        headers = {"Cache-Control": cache, "ETag": asset.etag, "X-Content-Type-Options": "nosniff"}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers
        )

    async def _post_message(self, request: web.Request, receive: Receiver) -> web.Response:
        try:
            self._check_origin(request)
            if request.content_type != "application/json":
                raise _BadRequest(415, "send application/json")
            text, client_id, payload = _parse_message(await read_body(request, MAX_BODY_BYTES))
        except (_BadRequest, BadBody) as error:
            return _error(error.status, error.reason)
        return await self._take(request, receive, text, client_id, payload)

    async def _post_file(self, request: web.Request, receive: Receiver) -> web.Response:
        """One photo or PDF as the request's body; its name in ``?name=``."""
        try:
            self._check_origin(request)
            client_id = request.query.get("id", "")
            if not _CLIENT_ID.fullmatch(client_id):
                raise _BadRequest(400, f"id must be 1-{MAX_ID_CHARS} letters, digits, - or _")
        except _BadRequest as error:
            return _error(error.status, error.reason)
        if self._files_open >= MAX_FILES_AT_ONCE:
            return _busy(503, "too many files arriving; try again shortly")
        self._files_open += 1
        try:
            return await self._receive_file(request, receive, client_id)
        finally:
            self._files_open -= 1

    async def _receive_file(
        self, request: web.Request, receive: Receiver, client_id: str
    ) -> web.Response:
        try:
            content = await read_body(request, MAX_FILE_BYTES)
        except BadBody as error:
            return _error(error.status, error.reason)
        content_type = file_type(content)
        if content_type is None:
            return _error(415, "send a photo (JPEG, PNG, WebP, HEIC) or a PDF file")
        name = request.query.get("name", "").strip()[:MAX_FILENAME_CHARS] or None
        media = Media(f"{FILE_PREFIX}{secrets.token_hex(16)}", content_type, name)
        self._uploads[media.url] = content
        try:
            return await self._take(request, receive, "", client_id, None, (media,))
        finally:
            del self._uploads[media.url]

    async def _take(
        self,
        request: web.Request,
        receive: Receiver,
        text: str,
        client_id: str,
        payload: str | None,
        media: tuple[Media, ...] = (),
    ) -> web.Response:
        """Give the engine one message of the request's session (opened now if it has none)."""
        token = _token(request)
        fresh = token is None
        token = token or _new_token()
        user_id = session_id(token)
        message = InboundMessage(
            address=Address(CHANNEL, user_id),
            received_at=datetime.now(UTC),
            text=text,
            payload=payload,
            media=media,
            # Per session, so one visitor's ids can never collide with another's, and a
            # retried POST (same id) is dropped by the engine as a redelivery.
            platform_message_id=f"{user_id}:{client_id}",
        )
        if not message.text.strip() and not message.payload and not media:  # judged once cleaned
            return _error(400, "empty message")
        # A session the server has not seen becomes an identity: counted per address.
        if not self._new_sessions.admit(user_id, _client_key(request.remote)):
            response = _error(429, "too many new conversations; try again in a minute")
            response.headers["Retry-After"] = "60"
            return response
        try:
            await receive(message)
        except Overloaded as busy:
            response = busy_response(busy)
        except Exception as error:
            # The exception's text may quote the message; its type says enough.
            log.error("could not store a web chat message: %s", type(error).__name__)
            response = _error(503, "try again")
        else:
            # A new session's token goes to the page too: in a frame on another site the
            # cookie is refused, and the page sends the token in SESSION_HEADER instead.
            body: dict[str, Any] = {"ok": True} | ({"session": token} if fresh else {})
            response = web.json_response(body, status=202, headers=_NO_STORE)
        if fresh:
            self._set_cookie(response, token)
        return response

    async def _history_of(self, request: web.Request) -> web.Response:
        """The visitor's last messages both ways, their choices by label; ``last`` is
        where polling for replies goes on from."""
        try:
            self._check_origin(request)
        except _BadRequest as error:
            return _error(error.status, error.reason)
        token = _token(request)
        if token is None:
            return self._no_session()
        try:
            said = await self._history(Address(CHANNEL, session_id(token))) if self._history else []
        except Exception as error:
            log.error("could not read a web chat history: %s", type(error).__name__)
            return _error(503, "try again")
        return web.json_response(
            {
                "messages": _history_json(said, self._author),
                "last": max((s.id for s in said if not s.mine), default=0),
            },
            headers=_NO_STORE,
        )

    def _no_session(self) -> web.Response:
        # A fresh session for the client's next try: it has nothing to read yet.
        token = _new_token()
        response = web.json_response(
            {"error": "no session", "session": token}, status=401, headers=_NO_STORE
        )
        self._set_cookie(response, token)
        return response

    async def _poll(self, request: web.Request) -> web.Response:
        try:
            self._check_origin(request)
        except _BadRequest as error:
            return _error(error.status, error.reason)
        token = _token(request)
        if token is None:
            return self._no_session()
        after_text = request.query.get("after", "0")
        if not _AFTER.fullmatch(after_text):
            return _error(400, "after must be a message id")
        after = int(after_text)
        wait_text = request.query.get("wait")
        wait = self._poll_seconds
        if wait_text is not None:
            if not _WAIT.fullmatch(wait_text) or float(wait_text) > MAX_WAIT_SECONDS:
                return _error(400, f"wait must be 0-{MAX_WAIT_SECONDS} seconds, like 2.5")
            # A client may ask to wait less than the server's longest poll (never more).
            wait = min(float(wait_text), self._poll_seconds)
        address = Address(CHANNEL, session_id(token))
        if self._open_polls >= self._max_polls:
            now = time.monotonic()
            if now - self._busy_logged_at > 60:  # once a minute, not per refused poll
                self._busy_logged_at = now
                log.warning("web chat: %d polls open, refusing more", self._open_polls)
            return _busy(503, "too many visitors; try again shortly")
        if self._polls.get(address, 0) >= self._max_polls_per_visitor:
            return _busy(429, "too many open polls for this chat")
        self._open_polls += 1
        self._polls[address] = self._polls.get(address, 0) + 1
        try:
            found = await self._wait_for_replies(request, address, after, wait)
        except Exception as error:
            log.error("could not read web chat replies: %s", type(error).__name__)
            return _error(503, "try again")
        finally:
            self._open_polls -= 1
            self._polls[address] -= 1
            if not self._polls[address]:
                del self._polls[address]
        found = sorted((item for item in found if item[0] > after), key=lambda item: item[0])
        return web.json_response(
            {
                "messages": [
                    _message_json(message_id, message, self._author)
                    for message_id, message in found
                ],
                "last": found[-1][0] if found else after,
            },
            headers=_NO_STORE,
        )

    # Helpers

    async def _wait_for_replies(
        self, request: web.Request, address: Address, after: int, wait: float
    ) -> list[tuple[int, OutboundMessage]]:
        """What was released to ``address`` after ``after``, waiting up to ``wait`` seconds
        for it; nothing once the server stops or the client has gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        idle = self._recheck_seconds
        delay = idle  # until the next read without a ring; None: none
        with self._doorbells.listen(address) as bell:
            while True:
                rung = bell.event  # before reading, so a ring in between is not missed
                found = await self._replies(address, after)
                if found:
                    return found
                read_at = loop.time() + delay if delay is not None else math.inf
                while not rung.is_set():
                    now = loop.time()
                    if self._stopping or now >= deadline or _gone(request):
                        return []
                    if now >= read_at:
                        break
                    timeout = min(deadline, read_at, now + CLIENT_CHECK_SECONDS) - now
                    try:
                        async with asyncio.timeout(timeout):
                            await rung.wait()
                    except TimeoutError:
                        pass
                if self._stopping or _gone(request):
                    return []
                if rung.is_set():
                    delay = RECHECK_AFTER_RING_SECONDS
                elif delay is not None:
                    # After a ring, less and less often, back to the idle pace (or none).
                    delay *= 2
                    ceiling = idle if idle is not None else RECHECK_SECONDS
                    if delay > ceiling:
                        delay = idle

    def _check_origin(self, request: web.Request) -> None:
        # A page on another site must not speak as the visitor: only ours, the public
        # address (behind a proxy) and the sites allowed to embed the chat.
        origin = request.headers.get("Origin")
        if origin is None or same_origin(origin, request.host):
            return
        if origin_of(origin) not in self._origins:
            raise _BadRequest(403, "cross-origin request")

    def _set_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )
        # Written by hand: Python's http.cookies (before 3.14) has no Partitioned. Browsers
        # take it over https and on localhost only (Secure), which is all it is for.
        response.headers.add(
            "Set-Cookie",
            f"{EMBED_COOKIE}={token}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; Secure; "
            "SameSite=None; Partitioned",
        )

    def _security_headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self._csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _token(request: web.Request) -> str | None:
    """The session the page names in SESSION_HEADER, else the one in its cookie, else
    the one in its partitioned cookie (in a frame on another site)."""
    for token in (
        request.headers.get(SESSION_HEADER),
        request.cookies.get(COOKIE),
        request.cookies.get(EMBED_COOKIE),
    ):
        if token is not None and _TOKEN.fullmatch(token):
            return token
    return None


def _cookie_token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token is not None and _TOKEN.fullmatch(token) else None


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL or origin, lower case, the default port left out;
    None when it is not an http(s) address."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=_NO_STORE)


def _busy(status: int, reason: str) -> web.Response:
    response = _error(status, reason)
    response.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
    # The connection is not kept for a next request: it is an open file the server
    # may need for someone else.
    response.force_close()
    return response


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _client_key(remote: str | None) -> str:
    """What new sessions are counted by: the client's address, an IPv6 one by its /64
    (one household or phone is given a whole /64)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "unknown"
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _parse_message(body: bytes) -> tuple[str, str, str | None]:
    """The text, client id and payload of a posted message; _BadRequest if malformed."""
    data: Any = parse_json(body, max_depth=MAX_JSON_DEPTH)
    if not isinstance(data, dict):
        raise _BadRequest(400, "expected a JSON object")
    text, client_id, payload = data.get("text"), data.get("id"), data.get("payload")
    if not isinstance(text, str):
        raise _BadRequest(400, "text must be a string")
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise _BadRequest(400, f"id must be 1-{MAX_ID_CHARS} letters, digits, - or _")
    # What a payload or text may carry that cannot be stored is cleaned where the
    # message is made (flows/cleaning.py), as for every channel.
    if payload is not None and (not isinstance(payload, str) or len(payload) > MAX_PAYLOAD_CHARS):
        raise _BadRequest(400, "payload must be a short string or null")
    if len(text) > MAX_TEXT_CHARS:
        raise _BadRequest(413, f"text longer than {MAX_TEXT_CHARS} characters")
    return text, client_id, payload or None


def file_type(content: bytes) -> str | None:
    """The type of a photo or PDF told by its first bytes; None for anything else."""
    for signature, content_type in _SIGNATURES:
        if content.startswith(signature):
            return content_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp" and content[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def _message_json(
    message_id: int, message: OutboundMessage, staff_author: StaffAuthor | None
) -> dict[str, Any]:
    # A person's words are shown apart from the bot's, under who wrote them.
    author = staff_author(message.text) if staff_author is not None else None
    return {
        "id": message_id,
        "text": message.text if author is None else author[1],
        "author": None if author is None else author[0],
        "choices": [{"payload": c.payload, "label": c.label} for c in message.choices],
        "inline": message.inline,
        "language": message.language,
    }


def _history_json(said: Sequence[Said], staff_author: StaffAuthor | None) -> list[dict[str, Any]]:
    """The page's view of a history: a pressed button shown by the label it had."""
    shown: list[dict[str, Any]] = []
    offered: dict[str, str] = {}  # the last bot message's choices: payload -> label
    for entry in said:
        if not entry.mine:
            message = OutboundMessage(entry.text, entry.language, entry.choices, entry.inline)
            shown.append({**_message_json(entry.id, message, staff_author), "mine": False})
            offered = {c.payload: c.label for c in entry.choices}
            continue
        text = offered.get(entry.payload or "", entry.text) if entry.payload else entry.text
        lines = [text] if text else []
        lines += [f"📎 {name}".strip() for name in entry.files]
        shown.append({"id": entry.id, "mine": True, "text": "\n".join(lines)})
    return shown


def _asset(name: str, content_type: str) -> _Asset:
    body = resources.files(__package__ or "handlers").joinpath("webchat_static", name).read_bytes()
    return _Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])


def _page(assets: dict[str, _Asset], text: Text, title: str | None) -> bytes:
    """chat.html in Arabic with each asset's URL carrying its version, so browsers may keep
    it, and the charity's name as its title; chat.js finds every language's words in it."""
    words = {
        language: {name: text(language, key) for name, key in _SCRIPT_WORDS.items()}
        for language in LANGUAGES
    }
    arabic = {name: text("ar", key) for name, key in _PAGE_WORDS.items()} | words["ar"]
    if title:
        arabic["title"] = title
    shown = {name: html.escape(word) for name, word in arabic.items()}
    # A data block ends at "</script": no word may write one.
    data = json.dumps(words, ensure_ascii=False).replace("<", "\\u003c")
    template = (
        resources.files(__package__ or "handlers")
        .joinpath("webchat_static", "chat.html")
        .read_text(encoding="utf-8")
    )
    page = string.Template(template).substitute(shown, words=data)
    for name, asset in assets.items():
        url = f"/chat/static/{name}"
        page = page.replace(f'"{url}"', f'"{url}?v={asset.version}"')
    return page.encode("utf-8")


def _content_security_policy(embed_origins: Sequence[str]) -> str:
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        # The page builds every node with textContent: no HTML sink may be used at all.
        "require-trusted-types-for 'script'",
    ]
    origins = []
    for url in embed_origins:
        origin = origin_of(url)
        if origin is None or not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", origin):
            raise ValueError(f"not an origin to embed the chat: {url!r}")
        origins.append(origin)
    # Only our own pages and the sites named may show the chat in a frame.
    directives.append(" ".join(["frame-ancestors", "'self'", *origins]))
    return "; ".join(directives)


# Built by the server, which gives it the replies already released.
def build(setup: ChannelSetup) -> WebChatChannel:
    """The web chat: always on, on the server's own address (its section is ``[server]``)."""
    return WebChatChannel(
        setup.replies,
        text=setup.text,
        history=setup.history,
        staff_author=setup.staff_author,
        secure_cookies=(setup.public_url or "").startswith("https:"),
        embed_origins=setup.section.chat_embed_origins,
        public_url=setup.public_url,
        title=setup.organization,
        # A single process delivers (and so announces) every web reply itself: a poll
        # need not read the database unless woken.
        recheck_seconds=None if setup.one_process else RECHECK_SECONDS,
        max_polls=min(setup.max_held, MAX_POLLS),
    )


SPEC = ChannelSpec(
    names=(CHANNEL,), capabilities={CHANNEL: CAPABILITIES}, section="server", build=build
)
