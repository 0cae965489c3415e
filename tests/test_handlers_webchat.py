"""The website chat over real HTTP on loopback: page, session cookie, message API, long-poll."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer
from channels import eventually

from bot.config import Settings
from bot.server import Tawasul
from flows.catalogue import text, use_own_wording
from flows.types import Address, Choice, InboundMessage, Media, OutboundMessage
from handlers.base import Channel, MediaError, Sent
from handlers.webchat import (
    COOKIE,
    COOKIE_MAX_AGE,
    EMBED_COOKIE,
    MAX_BODY_BYTES,
    SESSION_HEADER,
    Said,
    WebChatChannel,
)
from storage.db import Database


def web_chat(replies: Any, **options: Any) -> WebChatChannel:
    return WebChatChannel(replies, text=text, **options)


STATIC = Path(__file__).resolve().parent.parent / "handlers" / "webchat_static"
API = "/api/chat/messages"
GREETING = "السلام عليكم"


class Backend:
    """The server's side, in memory: what receive() got and what the outbox released."""

    def __init__(self) -> None:
        self.received: list[InboundMessage] = []
        self.released: list[tuple[Address, int, OutboundMessage]] = []
        self.failing = False
        self.next_id = 100
        self.reads = 0  # how often a poll looked for replies
        self._read = asyncio.Condition()

    async def receive(self, message: InboundMessage) -> None:
        if self.failing:
            raise RuntimeError(f"database is down while storing {message.text!r}")
        self.received.append(message)

    async def replies(self, address: Address, after: int) -> list[tuple[int, OutboundMessage]]:
        async with self._read:
            self.reads += 1
            self._read.notify_all()
        return [(i, m) for a, i, m in self.released if a == address and i > after]

    async def read(self, times: int) -> None:
        """Wait until polls have looked for replies ``times`` times in all: a poll that
        has read once is listening for its bell."""
        async with asyncio.timeout(SAFETY), self._read:
            await self._read.wait_for(lambda: self.reads >= times)

    def release(self, address: Address, message: OutboundMessage) -> int:
        self.next_id += 1
        self.released.append((address, self.next_id, message))
        return self.next_id


def address_of(token: str) -> Address:
    return Address("web", hashlib.sha256(token.encode()).hexdigest()[:32])


MENU = OutboundMessage(
    "كيف نخدمك اليوم؟\nأرسل رقم الخيار:",
    "ar",
    choices=(Choice("1", "طلب دعم جديد"), Choice("2", "حالة طلبي")),
)
RATING = OutboundMessage(
    "Please rate our service",
    "en",
    choices=tuple(Choice(str(n), str(n)) for n in range(1, 6)),
    inline=True,
)


Client = TestClient[web.Request, web.Application]
# Timing is shown by events, never by the clock: a path under test that did not happen
# would leave its poll waiting an hour, and this safety net fails the test instead.
HOUR = 3600.0
SAFETY = 30.0


async def serve(channel: WebChatChannel, backend: Backend) -> Client:
    """The channel's routes on a local HTTP server, and a client with its own cookie jar."""
    app = web.Application()
    app.add_routes(channel.routes(backend.receive))
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def channel(backend: Backend) -> WebChatChannel:
    return web_chat(backend.replies, poll_seconds=0.5)


@pytest.fixture
async def client(channel: WebChatChannel, backend: Backend) -> AsyncIterator[Client]:
    test_client = await serve(channel, backend)
    try:
        yield test_client
    finally:
        await test_client.close()


async def open_session(client: Client) -> str:
    """GET /chat like a browser; returns the session token the cookie holds."""
    response = await client.get("/chat")
    assert response.status == 200
    return response.cookies[COOKIE].value


async def post(client: Client, body: Any, **headers: str) -> aiohttp.ClientResponse:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return await client.post(
        API, data=data, headers={"Content-Type": "application/json", **headers}
    )


def set_cookie_header(response: aiohttp.ClientResponse, name: str = COOKIE) -> str:
    [header] = [h for h in response.headers.getall("Set-Cookie") if h.startswith(f"{name}=")]
    return header


# The page and its files


async def test_page_is_arabic_rtl_with_a_session_cookie(client: Client) -> None:
    response = await client.get("/chat")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert re.search(r'<html lang="ar" dir="rtl">', html)
    assert 'name="viewport"' in html
    assert "اكتب رسالتك…" in html and "أرسل «السلام عليكم» أو اختر:" in html and "ابدأ" in html

    morsel = response.cookies[COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", morsel.value)
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert morsel["max-age"] == str(COOKIE_MAX_AGE) == str(90 * 24 * 3600)
    assert not morsel["secure"]
    assert "no-store" in response.headers["Cache-Control"]


async def test_page_runs_only_our_own_code_and_only_we_may_frame_it(client: Client) -> None:
    response = await client.get("/chat")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert csp.endswith("frame-ancestors 'self'")
    assert "X-Frame-Options" not in response.headers


async def test_frame_ancestors_name_the_sites_allowed_to_embed(backend: Backend) -> None:
    channel = web_chat(
        backend.replies, embed_origins=("https://charity.org.sa", "HTTP://Localhost:8000/")
    )
    client = await serve(channel, backend)
    async with client:
        response = await client.get("/chat")
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://charity.org.sa http://localhost:8000" in csp
    for bad in ("https://x.org; script-src *", "https://*.x.org", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            web_chat(backend.replies, embed_origins=(bad,))


async def test_the_page_speaks_in_the_charity_s_own_words(backend: Backend) -> None:
    own = {
        "webchat.send": {"ar": "أرسِل الآن"},
        "webchat.offline": {"en": "</script><script>alert(1)</script> & offline"},
    }
    use_own_wording(own)
    try:
        channel = web_chat(backend.replies)
    finally:
        use_own_wording({})
    client = await serve(channel, backend)
    async with client:
        html = await (await client.get("/chat")).text()
    assert '<button type="submit" id="send" class="send">أرسِل الآن</button>' in html
    assert "<title>تواصل معنا</title>" in html  # no charity name given: the catalogue's
    (block,) = re.findall(r'<script id="words" type="application/json">(.*?)</script>', html)
    words = json.loads(block)  # the hostile word did not end the block
    assert words["ar"]["send"] == "أرسِل الآن" and words["en"]["send"] == "Send"
    assert words["en"]["offline"] == own["webchat.offline"]["en"]
    assert words["ar"]["tooBig"] == text("ar", "webchat.too_big")
    assert html.count("<script") == 2  # the data block and chat.js, nothing the word wrote


async def test_the_page_shows_the_charitys_name(backend: Backend) -> None:
    channel = web_chat(backend.replies, title="جمعية البر <الخيرية>")
    client = await serve(channel, backend)
    async with client:
        html = await (await client.get("/chat")).text()
        assert "<title>جمعية البر &lt;الخيرية&gt;</title>" in html
        assert '<h1 id="title">جمعية البر &lt;الخيرية&gt;</h1>' in html
        assert "تواصل معنا" not in html


async def test_a_session_without_cookies_travels_in_the_header(
    client: Client, backend: Backend
) -> None:
    """In a frame on another site the browser sends none of our cookies: the page keeps
    the token it is given and names it in X-Chat-Session."""
    client.session.cookie_jar.clear()
    first = await client.get(API, params={"wait": "0"}, headers={"Cookie": ""})
    assert first.status == 401
    token = (await first.json())["session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    client.session.cookie_jar.clear()  # the browser refused the cookie
    sent = await post(client, {"text": GREETING, "id": "m1"}, **{SESSION_HEADER: token})
    assert sent.status == 202
    assert "session" not in await sent.json()  # a known session is not named again
    assert backend.received[-1].address == address_of(token)
    client.session.cookie_jar.clear()
    backend.release(address_of(token), MENU)
    polled = await client.get(API, params={"wait": "0"}, headers={SESSION_HEADER: token})
    assert polled.status == 200
    assert [m["text"] for m in (await polled.json())["messages"]] == [MENU.text]


async def test_a_first_post_without_any_session_is_told_its_token(
    client: Client, backend: Backend
) -> None:
    client.session.cookie_jar.clear()
    sent = await post(client, {"text": GREETING, "id": "m1"})
    assert sent.status == 202
    token = (await sent.json())["session"]
    assert backend.received[-1].address == address_of(token)
    assert sent.cookies[COOKIE].value == token


async def test_the_header_names_the_session_before_the_cookie(
    client: Client, backend: Backend
) -> None:
    cookie_token = await open_session(client)
    header_token = secrets.token_urlsafe(32)
    sent = await post(client, {"text": GREETING, "id": "m1"}, **{SESSION_HEADER: header_token})
    assert sent.status == 202
    assert backend.received[-1].address == address_of(header_token) != address_of(cookie_token)
    # A malformed header is no session: the cookie's is used.
    sent = await post(client, {"text": GREETING, "id": "m2"}, **{SESSION_HEADER: "short"})
    assert backend.received[-1].address == address_of(cookie_token)


async def test_the_sites_allowed_to_embed_and_the_public_url_may_post(
    backend: Backend,
) -> None:
    channel = web_chat(
        backend.replies,
        embed_origins=("https://charity.org.sa",),
        public_url="https://bot.example.org",
    )
    client = await serve(channel, backend)
    async with client:
        token = await open_session(client)
        for n, (origin, status) in enumerate(
            (
                ("https://charity.org.sa", 202),
                ("https://CHARITY.org.sa:443", 202),
                ("https://bot.example.org", 202),  # behind a proxy: Host is 127.0.0.1:PORT
                ("http://charity.org.sa", 403),
                ("https://evil.example", 403),
                ("https://charity.org.sa.evil.example", 403),
                ("null", 403),
            )
        ):
            body = {"text": GREETING, "id": f"m{n}"}
            sent = await post(client, body, Origin=origin, **{SESSION_HEADER: token})
            assert sent.status == status, origin
        polled = await client.get(
            API, params={"wait": "0"}, headers={"Origin": "https://evil.example"}
        )
        assert polled.status == 403
    assert len(backend.received) == 3


async def test_secure_cookie_when_served_over_https(backend: Backend) -> None:
    client = await serve(web_chat(backend.replies, secure_cookies=True), backend)
    async with client:
        response = await client.get("/chat")
        header = set_cookie_header(response)
        cookie = SimpleCookie()
        cookie.load(header)
        assert cookie[COOKIE]["secure"] is True
        assert cookie[COOKIE]["httponly"] is True
        assert cookie[COOKIE]["samesite"] == "Strict"


async def test_the_session_is_also_a_partitioned_cookie_for_frames(
    client: Client, backend: Backend
) -> None:
    """Kept under the site that frames the chat (CHIPS), where third-party cookies are
    blocked and the frame may not use storage: a reload there finds the session."""
    token = await open_session(client)
    header = set_cookie_header(await client.get("/chat"), EMBED_COOKIE)
    assert header.startswith(f"{EMBED_COOKIE}={token};")
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/"):
        assert attribute in header.split("; ")
    client.session.cookie_jar.clear()
    sent = await post(client, {"text": GREETING, "id": "m1"}, Cookie=f"{EMBED_COOKIE}={token}")
    assert sent.status == 202 and "session" not in await sent.json()
    assert backend.received[-1].address == address_of(token)


async def test_the_page_keeps_the_session_it_is_given(client: Client) -> None:
    token = await open_session(client)
    response = await client.get("/chat")
    assert response.cookies[COOKIE].value == token  # renewed, not replaced


async def test_a_link_from_another_site_does_not_replace_the_session(client: Client) -> None:
    # A Strict cookie is not sent on a cross-site navigation; minting one would lose
    # the visitor's session. The page's own API calls carry the cookie.
    response = await client.get("/chat", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 200
    assert COOKIE not in response.cookies


async def test_static_files_are_served_with_cache_headers(client: Client) -> None:
    html = await (await client.get("/chat")).text()
    for name, content_type in (("chat.js", "text/javascript"), ("chat.css", "text/css")):
        response = await client.get(f"/chat/static/{name}")
        assert response.status == 200
        assert response.content_type == content_type
        assert await response.read() == (STATIC / name).read_bytes()
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        again = await client.get(f"/chat/static/{name}", headers={"If-None-Match": etag})
        assert again.status == 304

        # The page names the file with its version; that URL may be kept for good.
        [versioned] = re.findall(rf'"(/chat/static/{re.escape(name)}\?v=[0-9a-f]+)"', html)
        response = await client.get(versioned)
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]


async def raw_status(server: BaseTestServer, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as written, with no client normalising the path."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    request = f"GET {target} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nConnection: close\r\n"
    writer.write(f"{request}\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize(
    "target",
    [
        "/chat/static/../webchat.py",
        "/chat/static/..%2Fwebchat.py",
        "/chat/static/%2e%2e%2fwebchat.py",
        "/chat/static/../../handlers/webchat.py",
        "/chat/static/chat.html",
        "/chat/static/base.py",
        "/chat/static/",
        "/chat/static/chat.js%00",
        "/chat/static/CHAT.JS",
    ],
)
async def test_only_the_two_static_files_are_served(client: Client, target: str) -> None:
    status, answer = await raw_status(client.server, target)
    assert status == 404
    assert b"WebChatChannel" not in answer and b"import" not in answer
    assert (await client.get(target)).status == 404


def test_the_page_needs_nothing_from_elsewhere_and_never_writes_markup() -> None:
    html = (STATIC / "chat.html").read_text(encoding="utf-8")
    css = (STATIC / "chat.css").read_text(encoding="utf-8")
    js = (STATIC / "chat.js").read_text(encoding="utf-8")
    for source in (html, css, js):
        assert "http://" not in source and "https://" not in source
    assert "@import" not in css and "url(" not in css
    assert "<style" not in html and "style=" not in html and re.search(r"<script>", html) is None
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in js
    assert 'aria-live="polite"' in html and '<label for="text"' in html


# Posting messages


async def test_a_message_reaches_the_engine_under_the_session_hash(
    client: Client, backend: Backend
) -> None:
    token = await open_session(client)
    response = await post(client, {"text": "السلام عليكم\nأريد المساعدة", "id": "m-1"})
    assert response.status == 202
    assert await response.json() == {"ok": True}
    [message] = backend.received
    address = address_of(token)
    assert message.address == address
    assert message.text == "السلام عليكم\nأريد المساعدة"
    assert message.payload is None
    assert message.platform_message_id == f"{address.user_id}:m-1"
    assert message.received_at.tzinfo is not None
    # What the database will hold cannot be turned back into the cookie.
    assert token not in message.address.user_id and token not in message.platform_message_id


async def test_a_tapped_choice_carries_its_payload(client: Client, backend: Backend) -> None:
    await open_session(client)
    response = await post(client, {"text": "2", "id": "m-2", "payload": "2"})
    assert response.status == 202
    assert backend.received[0].payload == "2"
    assert backend.received[0].text == "2"


async def test_a_retried_post_keeps_its_platform_id(client: Client, backend: Backend) -> None:
    await open_session(client)
    for _ in range(2):
        assert (await post(client, {"text": "١", "id": "same", "payload": None})).status == 202
    first, second = backend.received
    assert first.platform_message_id == second.platform_message_id


async def test_the_first_post_without_a_session_opens_one(client: Client, backend: Backend) -> None:
    response = await post(client, {"text": GREETING, "id": "a"})
    assert response.status == 202
    token = response.cookies[COOKIE].value
    assert backend.received[0].address == address_of(token)
    # ...and the next one stays in it.
    await post(client, {"text": "١", "id": "b"})
    assert backend.received[1].address == address_of(token)
    assert len({m.platform_message_id for m in backend.received}) == 2


async def test_same_ids_from_two_visitors_never_collide(client: Client, backend: Backend) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await client.get("/chat")
        await other.get(client.make_url("/chat"))
        await post(client, {"text": "١", "id": "1"})
        await other.post(client.make_url(API), json={"text": "١", "id": "1"})
    first, second = backend.received
    assert first.address != second.address
    assert first.platform_message_id != second.platform_message_id


async def test_a_message_must_be_json(client: Client, backend: Backend) -> None:
    await open_session(client)
    body = json.dumps({"text": "hi", "id": "x"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await client.post(API, data=body, headers={"Content-Type": content_type})
        assert response.status == 415, content_type
        assert "error" in await response.json()
    response = await client.post(API, data=body.encode())  # no content type at all
    assert response.status == 415
    assert backend.received == []


async def test_a_message_too_large_is_refused(client: Client, backend: Backend) -> None:
    await open_session(client)
    response = await post(client, {"text": "ا" * 10, "id": "x", "pad": "x" * MAX_BODY_BYTES})
    assert response.status == 413
    assert "error" in await response.json()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 1024
        yield b'", "id": "x"}'

    response = await client.post(API, data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 413

    response = await post(client, {"text": "a" * 5_001, "id": "x"})
    assert response.status == 413
    assert (await post(client, {"text": "a" * 5_000, "id": "x"})).status == 202
    assert len(backend.received) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        "[]",
        '"text"',
        {"id": "x"},
        {"text": "hi"},
        {"text": 5, "id": "x"},
        {"text": None, "id": "x"},
        {"text": "hi", "id": 7},
        {"text": "hi", "id": ""},
        {"text": "hi", "id": "x" * 65},
        {"text": "hi", "id": "has space"},
        {"text": "hi", "id": "ok", "payload": 3},
        {"text": "hi", "id": "ok", "payload": "p" * 300},
        {"text": "   ", "id": "ok"},
        {"text": "\x00\ud800 \x07", "id": "ok"},  # nothing left once cleaned
        b"[" * 10_000,  # deeper than Python's own parser goes
        b'{"text": "hi", "id": "ok", "x": ' + b"[" * 30 + b"]" * 30 + b"}",
        b'{"text": NaN, "id": "ok"}',
    ],
)
async def test_a_malformed_message_is_a_400(client: Client, backend: Backend, body: Any) -> None:
    await open_session(client)
    response = await post(client, body)
    assert response.status == 400
    assert isinstance((await response.json())["error"], str)
    assert backend.received == []


async def test_a_post_from_another_site_is_refused(client: Client, backend: Backend) -> None:
    await open_session(client)
    for origin in ("https://evil.example", "null", f"http://{client.host}:1", "file://"):
        response = await post(client, {"text": "hi", "id": "x"}, Origin=origin)
        assert response.status == 403, origin
    assert backend.received == []
    own = f"http://{client.host}:{client.port}"
    assert (await post(client, {"text": "hi", "id": "x"}, Origin=own)).status == 202


async def test_a_message_not_stored_asks_for_a_retry(
    client: Client, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    token = await open_session(client)
    backend.failing = True
    with caplog.at_level(logging.DEBUG):
        response = await post(client, {"text": "رقم هويتي 1000000008", "id": "x"})
    assert response.status == 503
    assert await response.json() == {"error": "try again"}
    # Neither the text nor the session token reaches the log, even from the exception.
    assert "1000000008" not in caplog.text and token not in caplog.text
    assert "RuntimeError" in caplog.text


# Reading replies


async def test_reading_needs_a_session(client: Client) -> None:
    response = await client.get(API, params={"after": "0"})
    assert response.status == 401
    assert "error" in await response.json()
    # It opens one, so a page whose cookie was lost carries on at its next poll.
    assert COOKIE in response.cookies
    assert (await client.get(API, params={"after": "0"})).status == 200


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "٣", " 3", "+3", "9" * 30, ""])
async def test_a_bad_after_is_a_400(client: Client, after: str) -> None:
    await open_session(client)
    response = await client.get(API, params={"after": after})
    assert response.status == 400


async def test_waiting_replies_come_at_once(backend: Backend) -> None:
    # A poll that waited before reading would wait an hour here.
    channel = web_chat(backend.replies, poll_seconds=HOUR, recheck_seconds=HOUR)
    client = await serve(channel, backend)
    async with client:
        token = await open_session(client)
        address = address_of(token)
        first = backend.release(address, MENU)
        second = backend.release(address, RATING)
        response = await asyncio.wait_for(client.get(API, params={"after": "0"}), SAFETY)
        await _check_waiting_replies(client, response, first, second)


async def _check_waiting_replies(
    client: Client, response: aiohttp.ClientResponse, first: int, second: int
) -> None:
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.json() == {
        "messages": [
            {
                "id": first,
                "text": "كيف نخدمك اليوم؟\nأرسل رقم الخيار:",
                "author": None,
                "choices": [
                    {"payload": "1", "label": "طلب دعم جديد"},
                    {"payload": "2", "label": "حالة طلبي"},
                ],
                "inline": False,
                "language": "ar",
            },
            {
                "id": second,
                "text": "Please rate our service",
                "author": None,
                "choices": [{"payload": str(n), "label": str(n)} for n in range(1, 6)],
                "inline": True,
                "language": "en",
            },
        ],
        "last": second,
    }
    later = await (await client.get(API, params={"after": str(first)})).json()
    assert [m["id"] for m in later["messages"]] == [second]


async def test_a_poll_is_woken_by_send(backend: Backend) -> None:
    # No re-check for an hour: only the bell send() rings can end this poll.
    channel = web_chat(backend.replies, poll_seconds=HOUR, recheck_seconds=HOUR)
    client = await serve(channel, backend)
    async with client:
        token = await open_session(client)
        address = address_of(token)
        poll = asyncio.create_task(client.get(API, params={"after": "0"}))
        await backend.read(1)  # the poll found nothing and listens
        assert not poll.done()
        message_id = backend.release(address, MENU)
        assert await channel.send(address, MENU) == Sent(None)
        response = await asyncio.wait_for(poll, SAFETY)
        body = await response.json()
        assert [m["id"] for m in body["messages"]] == [message_id]
        assert body["last"] == message_id


async def test_send_may_come_before_the_reply_is_readable(backend: Backend) -> None:
    # The outbox calls send() and only then commits the message as sent: after a ring
    # the poll looks again soon, though the hourly re-check is far away.
    channel = web_chat(backend.replies, poll_seconds=HOUR, recheck_seconds=HOUR)
    client = await serve(channel, backend)
    async with client:
        address = address_of(await open_session(client))
        poll = asyncio.create_task(client.get(API, params={"after": "0"}))
        await backend.read(1)
        await channel.send(address, MENU)
        await backend.read(2)  # it looked after the ring, and found nothing yet
        backend.release(address, MENU)
        body = await (await asyncio.wait_for(poll, SAFETY)).json()
        assert len(body["messages"]) == 1


async def test_a_reply_released_by_another_process_is_found(backend: Backend) -> None:
    # No bell, and an hour-long poll: only the re-check can find it.
    channel = web_chat(backend.replies, poll_seconds=HOUR, recheck_seconds=0.05)
    client = await serve(channel, backend)
    async with client:
        address = address_of(await open_session(client))
        poll = asyncio.create_task(client.get(API, params={"after": "0"}))
        await backend.read(1)
        backend.release(address, MENU)  # no send() here: another server sent it
        body = await (await asyncio.wait_for(poll, SAFETY)).json()
        assert len(body["messages"]) == 1
        assert backend.reads >= 2  # found by looking again


async def test_a_poll_with_nothing_to_read_ends_empty(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=0.5, recheck_seconds=0.05)
    client = await serve(channel, backend)
    async with client:
        await open_session(client)
        response = await asyncio.wait_for(client.get(API, params={"after": "42"}), SAFETY)
        assert await response.json() == {"messages": [], "last": 42}
        assert backend.reads >= 2  # it waited, looking again, before giving up


async def test_two_visitors_never_see_each_other(
    client: Client, backend: Backend, channel: WebChatChannel
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        mine = await open_session(client)
        theirs = (await other.get(client.make_url("/chat"))).cookies[COOKIE].value
        assert mine != theirs
        backend.release(address_of(mine), OutboundMessage("لك أنت", "ar"))
        await channel.send(address_of(mine), MENU)

        their_poll = await other.get(client.make_url(API), params={"after": "0"})
        assert await their_poll.json() == {"messages": [], "last": 0}
        my_poll = await (await client.get(API, params={"after": "0"})).json()
        assert [m["text"] for m in my_poll["messages"]] == ["لك أنت"]

        await post(client, {"text": "أنا", "id": "1"})
        await other.post(client.make_url(API), json={"text": "وأنا", "id": "1"})
    assert [m.address for m in backend.received] == [address_of(mine), address_of(theirs)]


async def test_a_forged_cookie_is_no_session(client: Client) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: "short"})
    assert (await client.get(API, params={"after": "0"})).status == 401


async def test_stop_ends_waiting_polls_at_once(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=HOUR, recheck_seconds=HOUR)
    client = await serve(channel, backend)
    async with client:
        await open_session(client)
        polls = [asyncio.create_task(client.get(API, params={"after": "0"})) for _ in range(3)]
        await backend.read(3)  # all three listen
        await channel.stop()
        for poll in polls:
            response = await asyncio.wait_for(poll, SAFETY)
            assert await response.json() == {"messages": [], "last": 0}


# Limits: polls asked for nonsense, too many polls, too many new conversations


@pytest.mark.parametrize(
    "wait",
    ["nan", "NaN", "inf", "-inf", "-1", "1e9", "99999", "3601", "abc", "", "٣", " 1", "0x10"],
)
async def test_a_bad_wait_is_a_400_at_once(client: Client, wait: str) -> None:
    await open_session(client)
    response = await client.get(API, params={"wait": wait})
    assert response.status == 400
    assert "wait" in (await response.json())["error"]


@pytest.mark.parametrize("wait", ["0", "0.25", "3600"])
async def test_a_sane_wait_is_taken(client: Client, wait: str) -> None:
    await open_session(client)
    response = await client.get(API, params={"wait": wait})  # 3600: shortened to the server's
    assert response.status == 200
    assert await response.json() == {"messages": [], "last": 0}


async def post_as(client: Client, token: str | None, n: int) -> aiohttp.ClientResponse:
    client.session.cookie_jar.clear()
    cookie = {"Cookie": f"{COOKIE}={token}"} if token else {}
    return await post(client, {"text": GREETING, "id": f"m{n}"}, **cookie)


async def test_one_address_opens_only_so_many_new_conversations_a_minute(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=0.5, new_sessions_per_minute=5)
    async with await serve(channel, backend) as client:
        # Without a cookie, and with cookies the client made up: each is a new session.
        first = await post_as(client, None, 0)
        assert first.status == 202
        kept = first.cookies[COOKIE].value
        answers = [await post_as(client, None, n) for n in range(1, 8)]
        answers += [await post_as(client, secrets.token_urlsafe(32), n) for n in range(8, 12)]
        statuses = [answer.status for answer in answers]
        assert statuses.count(202) == 4 and statuses.count(429) == 7
        for answer in answers:
            if answer.status == 429:
                assert answer.headers["Retry-After"] == "60"
                assert COOKIE not in answer.cookies  # no session minted for it either
        assert len({m.address for m in backend.received}) == 5
        # A conversation already open goes on.
        for n in range(12, 15):
            assert (await post_as(client, kept, n)).status == 202
        assert backend.received[-1].address == address_of(kept)


async def test_new_conversations_are_counted_per_client_address(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=0.5, new_sessions_per_minute=2)

    @web.middleware
    async def as_remote(request: web.Request, handler: Any) -> web.StreamResponse:
        # What the server's trusted-proxy middleware does: the client's address as remote.
        return await handler(request.clone(remote=request.headers["X-Test-Remote"]))

    app = web.Application(middlewares=[as_remote])
    app.add_routes(channel.routes(backend.receive))
    async with TestClient(TestServer(app)) as client:
        statuses = {}
        for remote in ("192.0.2.1", "192.0.2.2", "2001:db8:1:2::1", "2001:db8:1:2::ffff"):
            statuses[remote] = [(await post_as_from(client, remote, n)).status for n in range(3)]
    assert statuses["192.0.2.1"] == statuses["192.0.2.2"] == [202, 202, 429]
    # Addresses in one IPv6 /64 are one client.
    assert statuses["2001:db8:1:2::1"] == [202, 202, 429]
    assert statuses["2001:db8:1:2::ffff"] == [429, 429, 429]


async def post_as_from(client: Client, remote: str, n: int) -> aiohttp.ClientResponse:
    client.session.cookie_jar.clear()
    return await post(client, {"text": GREETING, "id": f"m{n}"}, **{"X-Test-Remote": remote})


async def test_one_visitor_holds_only_a_few_polls(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=30, max_polls_per_visitor=2)
    async with await serve(channel, backend) as client:
        await open_session(client)
        held = [asyncio.create_task(client.get(API)) for _ in range(2)]
        await eventually(lambda: channel.open_polls == 2, "two polls held")
        refused = await client.get(API)
        assert refused.status == 429 and refused.headers["Retry-After"] == "5"
        # Another visitor is not held up by it.
        async with await serve(channel, backend) as other:
            await open_session(other)
            other_poll = asyncio.create_task(other.get(API))
            await eventually(lambda: channel.open_polls == 3, "three polls held")
            await channel.stop()
            assert (await other_poll).status == 200
        for poll in held:
            assert (await poll).status == 200
    assert channel.open_polls == 0


async def test_polls_beyond_the_server_cap_are_told_to_come_back(backend: Backend) -> None:
    channel = web_chat(backend.replies, poll_seconds=30, max_polls=2)
    async with await serve(channel, backend) as client:
        held = []
        for n in (1, 2):
            await open_session(client)  # a new visitor each time (a new cookie)
            held.append(asyncio.create_task(client.get(API)))
            await eventually(lambda n=n: channel.open_polls == n, "the polls held")
        await open_session(client)
        refused = await client.get(API)
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.headers["Connection"] == "close"  # its connection is not kept open
        await channel.stop()
        for poll in held:
            assert (await poll).status == 200


async def test_a_poll_stops_reading_when_its_client_goes_away(backend: Backend) -> None:
    """As in production: aiohttp does not cancel a handler whose client left."""
    reads: list[Address] = []

    async def replies(address: Address, after: int) -> list[tuple[int, OutboundMessage]]:
        reads.append(address)
        return await backend.replies(address, after)

    channel = web_chat(replies, poll_seconds=60, recheck_seconds=0.1)
    app = web.Application()
    app.add_routes(channel.routes(backend.receive))
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=jar) as session:
            assert (await session.get("/chat")).status == 200
            poll = asyncio.create_task(session.get(API))
            await eventually(lambda: len(reads) >= 3, "a few reads")  # every 0.1 s
            poll.cancel()
        await eventually(lambda: channel.open_polls == 0, "the poll to end")
        gone, seen = reads[0], len(reads)
        # Another visitor's poll is read again and again meanwhile: time enough for the
        # first one's rechecks to show, had they gone on.
        async with aiohttp.ClientSession(
            f"http://127.0.0.1:{port}", cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as other:
            assert (await other.get("/chat")).status == 200
            poll = asyncio.create_task(other.get(API))
            await eventually(lambda: sum(a != gone for a in reads) >= 5, "the other's reads")
            poll.cancel()
        assert reads.count(gone) == seen  # no more reading for nobody
    finally:
        await runner.cleanup()


async def test_without_rechecks_a_poll_reads_only_when_woken(backend: Backend) -> None:
    reads: list[Address] = []

    async def replies(address: Address, after: int) -> list[tuple[int, OutboundMessage]]:
        reads.append(address)
        return await backend.replies(address, after)

    channel = web_chat(replies, poll_seconds=0.6, recheck_seconds=None)
    async with await serve(channel, backend) as client:
        await open_session(client)
        response = await client.get(API)
        assert await response.json() == {"messages": [], "last": 0}
    assert len(reads) == 1


# The rest of the Channel protocol


async def test_the_channel_protocol(channel: WebChatChannel) -> None:
    as_channel: Channel = channel
    assert as_channel.names == ("web",)
    await channel.start()
    assert await channel.send(Address("web", "0" * 32), MENU) == Sent(None)  # nobody polling
    with pytest.raises(MediaError):
        await channel.fetch_media(Media("https://example.org/x.jpg", "image/jpeg"))
    await channel.stop()


async def test_the_history_shows_buttons_by_label_and_files_by_name(backend: Backend) -> None:
    async def history(address: Address) -> list[Said]:
        return [
            Said(1, False, MENU.text, "ar", choices=MENU.choices),
            Said(2, True, "1", payload="1"),  # pressed
            Said(3, False, "(١/٨) ما اسمك الرباعي؟"),
            Said(4, True, "2"),  # typed: shown as typed
            Said(5, True, "99", payload="99"),  # a button not offered last: as sent
            Said(6, True, "", files=("عقد.pdf", "")),
        ]

    client = await serve(web_chat(backend.replies, history=history), backend)
    async with client:
        await open_session(client)
        body = await (await client.get("/api/chat/history")).json()
    assert [(m["mine"], m["text"]) for m in body["messages"]] == [
        (False, MENU.text),
        (True, "طلب دعم جديد"),
        (False, "(١/٨) ما اسمك الرباعي؟"),
        (True, "2"),
        (True, "99"),
        (True, "📎 عقد.pdf\n📎"),
    ]
    assert body["last"] == 3


async def test_the_servers_shutdown_answers_held_polls_at_once(
    database: Database, tmp_path: Path
) -> None:
    # The web chat says it holds requests: the server stops it as shutdown begins, before
    # aiohttp waits for open requests, so a poll held for 20 s answers now.
    tawasul = Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)
    app = tawasul.app()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        web_chat = tawasul.channels["web"]
        assert isinstance(web_chat, WebChatChannel)
        posted = await client.post(API, json={"text": "مرحبا", "id": "m1"})
        assert posted.status == 202
        held = asyncio.create_task(client.get(f"{API}?after=999999999&wait=20"))
        await eventually(lambda: web_chat.open_polls == 1, "the poll held")
        await app.shutdown()
        answer = await asyncio.wait_for(held, 5)
        assert answer.status == 200
        assert (await answer.json())["messages"] == []
