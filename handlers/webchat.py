"""The website chat channel: an Arabic chat page, its JSON API, and long-polling for replies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web

from flows.types import Address, InboundMessage, Media, OutboundMessage
from handlers.base import (
    BeforePart,
    MediaError,
    Overloaded,
    Receiver,
    Sent,
    busy_response,
    same_origin,
)

log = logging.getLogger(__name__)

CHANNEL = "web"
COOKIE = "tawasul_chat"
COOKIE_MAX_AGE = 90 * 24 * 60 * 60
MAX_BODY_BYTES = 16 * 1024
MAX_TEXT_CHARS = 5_000
MAX_ID_CHARS = 64
# Payloads are the flows' own choice payloads ("1", "rate_5"): short by construction.
MAX_PAYLOAD_CHARS = 256
# Another server process may have released a reply without ringing our bell.
RECHECK_SECONDS = 2.0
# send() runs before the outbox commits the message as sent, so after a ring the
# database is looked at again soon, then less and less often.
RECHECK_AFTER_RING_SECONDS = 0.05

# Gives the server's outbound messages already released to one web address with an id
# greater than the one given, oldest first.
Replies = Callable[[Address, int], Awaitable[list[tuple[int, OutboundMessage]]]]

_STATIC = {
    "chat.js": "text/javascript",
    "chat.css": "text/css",
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_CLIENT_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_CHARS}}}")
_AFTER = re.compile(r"[0-9]{1,18}")  # ASCII only: int() would also take "٣" and " 3"
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


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebChatChannel:
    """The chat on the charity's website: anonymous cookie sessions, a long-polled inbox.

    Messages to a visitor are not pushed anywhere: the outbox stores them, ``send`` only
    wakes that visitor's pending poll, and the poll reads them through ``replies``.

    Args:
        replies: the server's reader of messages released to one web address.
        secure_cookies: mark the session cookie Secure (the site is served over HTTPS).
        poll_seconds: how long a poll waits for a reply before answering with none.
        frame_ancestors: origins allowed to embed the page in an iframe besides our own
            (``("https://charity.org.sa",)``); None lets any page embed it. Embedding
            works only from the same site, whatever this says: the session cookie is
            SameSite=Strict, so a cross-site frame has no session.
    """

    names: tuple[str, ...] = (CHANNEL,)

    def __init__(
        self,
        replies: Replies,
        *,
        secure_cookies: bool = False,
        poll_seconds: float = 25.0,
        frame_ancestors: Sequence[str] | None = None,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self._replies = replies
        self._secure = secure_cookies
        self._poll_seconds = poll_seconds
        self._doorbells = _Doorbells()
        self._stopping = False
        self._assets = {name: _asset(name, kind) for name, kind in _STATIC.items()}
        self._page = _page(self._assets)
        self._csp = _content_security_policy(frame_ancestors)

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        async def post_message(request: web.Request) -> web.Response:
            return await self._post_message(request, receive)

        return [
            web.get("/chat", self._chat_page),
            web.get("/chat/static/{name}", self._static),
            web.post("/api/chat/messages", post_message),
            web.get("/api/chat/messages", self._poll),
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
        raise MediaError("the web chat takes no attachments")

    # Routes

    async def _chat_page(self, request: web.Request) -> web.Response:
        response = web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={**_NO_STORE, **self._security_headers()},
        )
        token = _token(request)
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
            if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
                raise _BadRequest(413, "message too large")
            text, client_id, payload = _parse_message(await _read_body(request))
        except _BadRequest as error:
            return _error(error.status, error.reason)
        token = _token(request)
        fresh = token is None
        token = token or _new_token()
        user_id = session_id(token)
        message = InboundMessage(
            address=Address(CHANNEL, user_id),
            received_at=datetime.now(UTC),
            text=text,
            payload=payload,
            # Per session, so one visitor's ids can never collide with another's, and a
            # retried POST (same id) is dropped by the engine as a redelivery.
            platform_message_id=f"{user_id}:{client_id}",
        )
        try:
            await receive(message)
        except Overloaded as busy:
            response = busy_response(busy)
        except Exception as error:
            # The exception's text may quote the message; its type says enough.
            log.error("could not store a web chat message: %s", type(error).__name__)
            response = _error(503, "try again")
        else:
            response = web.json_response({"ok": True}, status=202, headers=_NO_STORE)
        if fresh:
            self._set_cookie(response, token)
        return response

    async def _poll(self, request: web.Request) -> web.Response:
        try:
            self._check_origin(request)
        except _BadRequest as error:
            return _error(error.status, error.reason)
        token = _token(request)
        if token is None:
            # A fresh session for the client's next try: it has nothing to read yet.
            response = _error(401, "no session")
            self._set_cookie(response, _new_token())
            return response
        after_text = request.query.get("after", "0")
        if not _AFTER.fullmatch(after_text):
            return _error(400, "after must be a message id")
        after = int(after_text)
        try:
            # A client may ask to wait less than the server's longest poll (never more).
            wait = min(float(request.query.get("wait", self._poll_seconds)), self._poll_seconds)
        except ValueError:
            return _error(400, "wait must be a number of seconds")
        address = Address(CHANNEL, session_id(token))
        try:
            found = await self._wait_for_replies(address, after, max(wait, 0.0))
        except Exception as error:
            log.error("could not read web chat replies: %s", type(error).__name__)
            return _error(503, "try again")
        found = sorted((item for item in found if item[0] > after), key=lambda item: item[0])
        return web.json_response(
            {
                "messages": [_message_json(message_id, message) for message_id, message in found],
                "last": found[-1][0] if found else after,
            },
            headers=_NO_STORE,
        )

    # Helpers

    async def _wait_for_replies(
        self, address: Address, after: int, wait: float
    ) -> list[tuple[int, OutboundMessage]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        recheck = RECHECK_SECONDS
        with self._doorbells.listen(address) as bell:
            while True:
                rung = bell.event  # before reading, so a ring in between is not missed
                found = await self._replies(address, after)
                remaining = deadline - loop.time()
                if found or self._stopping or remaining <= 0:
                    return found
                try:
                    async with asyncio.timeout(min(recheck, remaining)):
                        await rung.wait()
                    recheck = RECHECK_AFTER_RING_SECONDS
                except TimeoutError:
                    recheck = min(recheck * 2, RECHECK_SECONDS)
                if self._stopping:
                    return []

    def _check_origin(self, request: web.Request) -> None:
        # A page on another site must not speak as the visitor.
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, request.host):
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

    def _security_headers(self) -> dict[str, str]:
        return {
            "Content-Security-Policy": self._csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token is not None and _TOKEN.fullmatch(token) else None


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=_NO_STORE)


async def _read_body(request: web.Request) -> bytes:
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest(413, "message too large")
    return bytes(body)


def _parse_message(body: bytes) -> tuple[str, str, str | None]:
    """The text, client id and payload of a posted message; _BadRequest if malformed."""
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except ValueError as error:  # also UnicodeDecodeError
        raise _BadRequest(400, "malformed JSON") from error
    if not isinstance(data, dict):
        raise _BadRequest(400, "expected a JSON object")
    text, client_id, payload = data.get("text"), data.get("id"), data.get("payload")
    if not isinstance(text, str):
        raise _BadRequest(400, "text must be a string")
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise _BadRequest(400, f"id must be 1-{MAX_ID_CHARS} letters, digits, - or _")
    if payload is not None and (
        not isinstance(payload, str)
        or len(payload) > MAX_PAYLOAD_CHARS
        or not payload.isprintable()
    ):
        raise _BadRequest(400, "payload must be a short string or null")
    if len(text) > MAX_TEXT_CHARS:
        raise _BadRequest(413, f"text longer than {MAX_TEXT_CHARS} characters")
    if not text.strip() and not payload:
        raise _BadRequest(400, "empty message")
    return text, client_id, payload or None


def _message_json(message_id: int, message: OutboundMessage) -> dict[str, Any]:
    return {
        "id": message_id,
        "text": message.text,
        "choices": [{"payload": c.payload, "label": c.label} for c in message.choices],
        "inline": message.inline,
        "language": message.language,
    }


def _asset(name: str, content_type: str) -> _Asset:
    body = resources.files(__package__ or "handlers").joinpath("webchat_static", name).read_bytes()
    return _Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])


def _page(assets: dict[str, _Asset]) -> bytes:
    """chat.html with each asset's URL carrying its version, so browsers may keep it."""
    html = (
        resources.files(__package__ or "handlers")
        .joinpath("webchat_static", "chat.html")
        .read_text(encoding="utf-8")
    )
    for name, asset in assets.items():
        url = f"/chat/static/{name}"
        html = html.replace(f'"{url}"', f'"{url}?v={asset.version}"')
    return html.encode("utf-8")


def _content_security_policy(frame_ancestors: Sequence[str] | None) -> str:
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
    if frame_ancestors is not None:
        for origin in frame_ancestors:
            if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]*-]+", origin):
                raise ValueError(f"not an origin for frame-ancestors: {origin!r}")
        directives.append(" ".join(["frame-ancestors", "'self'", *frame_ancestors]))
    return "; ".join(directives)
