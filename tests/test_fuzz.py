"""Random and hostile requests to every route: never a 5xx, never a traceback, never a
half-written row.

Hypothesis draws the requests (a bounded, derandomized number, so CI sees the same ones
each run) and sends them to the whole server as `tawasul serve` runs it, with the
Telegram secret and Twilio signatures right, so that the bodies reach the parsers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from channels import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BENEFICIARY,
    CHARITY,
    PUBLIC_URL,
    SECRET,
    make_settings,
)
from fakes.meta_api import FakeMeta, inbound, notification
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form, status_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from served import served, session_for
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from flows.cleaning import clean_text
from storage.db import Database
from storage.models import Message
from storage.repositories import StaffRepository

PASSWORD = "a long enough password"
# Bounded: 20 requests a test, 9 tests, each run once per database backend (360 in all).
FUZZ = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = [
    "\x00",
    "\ud800",
    "\udfff\ud800",
    "a\x00b",
    "\r\n",
    "\u202e\u2066",
    "\ufeff",
    "²",
    "nan",
    "inf",
    "-1",
    "1e999",
    "9" * 400,
    "٣",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "=cmd|' /C calc'!A0",
    "../../etc/passwd",
    "%00",
    "%0d%0aX: y",
    "{{7*7}}",
    "ﻣﺮﺣﺒﺎ",
    "مرحبا",
    "0",
    "1",
    "",
]
texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
deep = st.integers(min_value=30, max_value=5000).map(lambda n: b"[" * n + b"]" * n)
raw_bodies = st.one_of(st.binary(max_size=300), deep)


def dumps(value: Any) -> bytes:
    """JSON as a client may send it: lone surrogates as escapes, big numbers as written."""
    return json.dumps(value).encode()


@dataclass
class Site:
    tawasul: Tawasul
    client: aiohttp.ClientSession
    staff: aiohttp.ClientSession
    base: str


CLOUD_NUMBER = "106540352242922"
CLOUD_TOKEN = "EAAG" + "x1" * 20
CLOUD_SECRET = "c0ffee" * 5


@pytest.fixture
async def meta() -> AsyncIterator[FakeMeta]:
    async with FakeMeta(CLOUD_NUMBER, CLOUD_TOKEN) as fake:
        yield fake


@pytest.fixture
async def site(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, meta: FakeMeta, tmp_path: Path
) -> AsyncIterator[Site]:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "manager", password_hash=hash_password(PASSWORD), now=utcnow()
        )
    # Twilio's signatures are checked against the public URL: signed for it, sent to
    # loopback.
    cloud = {
        "phone_number_id": CLOUD_NUMBER,
        "access_token": CLOUD_TOKEN,
        "app_secret": CLOUD_SECRET,
        "verify_token": "tawasul-verify-0123",
        "api_base_url": meta.base_url,
    }
    tawasul = Tawasul(make_settings(tmp_path, twilio, telegram, whatsapp_cloud=cloud), database)
    async with served(tawasul.app()) as client:
        base = str(client._base_url)
        async with session_for(base) as staff:
            page = await staff.get("/staff/login")
            token = (await page.text()).split('name="csrf" value="', 1)[1].split('"', 1)[0]
            form = {"csrf": token, "username": "amal", "password": PASSWORD}
            logged_in = await staff.post("/staff/login", data=form, allow_redirects=False)
            assert logged_in.status == 303
            yield Site(tawasul, client, staff, base)


async def rows(database: Database) -> tuple[int, ...]:
    """How many rows each table holds, in one query."""
    counts = [
        select(func.count()).select_from(table).scalar_subquery()
        for table in SQLModel.metadata.sorted_tables
    ]
    async with database.session() as session:
        return tuple((await session.execute(select(*counts))).one())


class Checked:
    """Sends one request and checks what every fuzzed request must hold."""

    def __init__(self, site: Site, caplog: pytest.LogCaptureFixture) -> None:
        self.site, self.caplog = site, caplog

    async def send(
        self, client: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> int:
        # The turns of what earlier requests stored come first (the inbox answers them
        # after their webhook): each request is judged on its own log and rows.
        assert await self.site.tawasul.engine.drain(30)
        self.caplog.clear()
        before = await rows(self.site.tawasul.database)
        async with client.request(method, path, allow_redirects=False, **kwargs) as response:
            await response.read()
            status = response.status
            location = response.headers.get("Location", "")
        assert status < 500, (method, path, status)
        assert "\r" not in location and "\n" not in location
        if status >= 400:
            # Refused: nothing at all was written.
            assert await rows(self.site.tawasul.database) == before, (method, path, status)
        self.no_tracebacks()
        return status

    def no_tracebacks(self) -> None:
        bad = [
            f"{r.name}: {r.getMessage()}"
            for r in self.caplog.records
            if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
        ]
        assert not bad, bad


@pytest.fixture
def checked(site: Site, caplog: pytest.LogCaptureFixture) -> Checked:
    caplog.set_level(logging.INFO)
    return Checked(site, caplog)


async def stored_texts_are_clean(database: Database) -> None:
    async with database.session() as session:
        for row in await session.scalars(select(Message)):
            for value in (row.text, row.payload or ""):
                assert value == clean_text(value), repr(value)


# --- Telegram ---

telegram_updates = st.builds(
    lambda update_id, kind, text, extra: {
        "update_id": update_id,
        kind: {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": 5550001, "type": "private"},
            "from": {"id": 5550001, "is_bot": False, "first_name": "N"},
            "text": text,
            **extra,
        }
        if kind == "message"
        else {
            "id": "q1",
            "from": {"id": 5550001, "is_bot": False, "first_name": "N"},
            "chat_instance": "c",
            "data": text,
            "message": {
                "message_id": 2,
                "date": 1_700_000_000,
                "chat": {"id": 5550001, "type": "private"},
            },
            **extra,
        },
    },
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["message", "callback_query", "edited_message"]),
    st.one_of(texts, json_values),
    st.dictionaries(
        st.sampled_from(["caption", "contact", "location", "date", "chat"]), json_values
    ),
)


@FUZZ
@given(body=st.one_of(raw_bodies, json_values.map(dumps), telegram_updates.map(dumps)))
async def test_telegram_webhook(site: Site, checked: Checked, body: bytes) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    await checked.send(site.client, "POST", "/webhooks/telegram", data=body, headers=headers)
    await stored_texts_are_clean(site.tawasul.database)


# --- WhatsApp through Meta's Cloud API ---

cloud_notifications = st.builds(
    lambda kind, body, sender, wamid: notification(
        CLOUD_NUMBER, messages=[inbound(sender, wamid, kind, **body)]
    ),
    st.sampled_from(["text", "interactive", "button", "location", "image", "unknown"]),
    st.dictionaries(
        st.sampled_from(["body", "payload", "text", "latitude", "id", "button_reply"]), json_values
    ),
    st.one_of(st.just("966551234567"), texts),
    st.one_of(st.from_regex(r"\Awamid\.[a-z0-9]{1,12}\Z"), texts),
)


@FUZZ
@given(body=st.one_of(raw_bodies, json_values.map(dumps), cloud_notifications.map(dumps)))
async def test_whatsapp_cloud_webhook(site: Site, checked: Checked, body: bytes) -> None:
    digest = hmac.new(CLOUD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    await checked.send(site.client, "POST", "/webhooks/whatsapp-cloud", data=body, headers=headers)
    await stored_texts_are_clean(site.tawasul.database)


# --- Twilio ---

twilio_fields = st.dictionaries(
    st.sampled_from(
        [
            "Body",
            "ButtonPayload",
            "ButtonText",
            "MessageSid",
            "From",
            "NumMedia",
            "Latitude",
            "Longitude",
            "ProfileName",
            "MessageStatus",
            "ErrorCode",
        ]
    ),
    texts,
    max_size=5,
)


@FUZZ
@given(
    fields=twilio_fields,
    kind=st.sampled_from(["inbound", "status"]),
    sms=st.booleans(),
    signed=st.booleans(),
)
async def test_twilio_webhooks(
    site: Site, checked: Checked, fields: dict[str, str], kind: str, sms: bool, signed: bool
) -> None:
    prefix = "" if sms else "whatsapp:"
    if kind == "inbound":
        path = "/webhooks/whatsapp"
        params = inbound_params(ACCOUNT_SID, prefix + BENEFICIARY, prefix + CHARITY, "")
    else:
        path = "/webhooks/whatsapp/status"
        params = status_params(
            ACCOUNT_SID, "SM" + "0" * 32, "failed", prefix + BENEFICIARY, CHARITY
        )
    params |= fields
    # Forms are UTF-8: a lone surrogate goes as the bytes a careless client would send.
    params = {
        k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()
    }
    body, headers = signed_form(PUBLIC_URL + path, params, AUTH_TOKEN)
    if not signed:
        headers["X-Twilio-Signature"] = "forged"
    await checked.send(site.client, "POST", path, data=body, headers=headers)
    await stored_texts_are_clean(site.tawasul.database)


@FUZZ
@given(
    body=raw_bodies,
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
    ),
)
async def test_twilio_raw_bodies(
    site: Site, checked: Checked, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type, "X-Twilio-Signature": "x"}
    status = await checked.send(
        site.client, "POST", "/webhooks/whatsapp", data=body, headers=headers
    )
    assert status in (400, 403, 413, 415)


# --- the web chat ---

chat_bodies = st.one_of(
    raw_bodies,
    json_values.map(dumps),
    st.fixed_dictionaries(
        {"text": texts, "id": st.one_of(st.from_regex(r"\A[a-z0-9]{1,8}\Z"), texts)},
        optional={"payload": st.one_of(st.none(), texts), "extra": json_values},
    ).map(dumps),
)
cookies = st.one_of(st.none(), st.just("keep"), texts, st.from_regex(r"\A[A-Za-z0-9_-]{43}\Z"))


@FUZZ
@given(body=chat_bodies, cookie=cookies, origin=st.one_of(st.none(), texts))
async def test_web_chat_post(
    site: Site, checked: Checked, body: bytes, cookie: str | None, origin: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if cookie is not None and cookie != "keep":
        headers["Cookie"] = f"tawasul_chat={quote(cookie.encode('utf-8', 'surrogatepass'))}"
    if origin is not None:
        headers["Origin"] = quote(origin.encode("utf-8", "surrogatepass"), safe=":/")
    await checked.send(site.client, "POST", "/api/chat/messages", data=body, headers=headers)
    await stored_texts_are_clean(site.tawasul.database)


# Valid waits are kept short: a fuzzed poll must not hold the test for 25 s.
waits = st.one_of(
    st.none(),
    st.sampled_from(["nan", "inf", "-inf", "-1", "1e9", "99999", "3601", "", "٣", "0x1"]),
    st.sampled_from(["0", "0.01", "0.1"]),
    texts.filter(lambda t: not t.replace(".", "", 1).isdigit()),
)


@FUZZ
@given(after=st.one_of(st.none(), texts, st.integers().map(str)), wait=waits, cookie=cookies)
async def test_web_chat_poll(
    site: Site, checked: Checked, after: str | None, wait: str | None, cookie: str | None
) -> None:
    query = "&".join(
        f"{name}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}"
        for name, value in (("after", after), ("wait", wait if wait is not None else "0"))
        if value is not None
    )
    headers = {}
    if cookie is not None and cookie != "keep":
        headers["Cookie"] = f"tawasul_chat={quote(cookie.encode('utf-8', 'surrogatepass'))}"
    await checked.send(site.client, "GET", f"/api/chat/messages?{query}", headers=headers)


file_heads = st.sampled_from([b"%PDF-1.4\n", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b""])


@FUZZ
@given(
    head=file_heads,
    body=raw_bodies,
    client_id=st.one_of(st.none(), texts, st.from_regex(r"\A[a-z0-9]{1,8}\Z")),
    name=st.one_of(st.none(), texts),
    session=cookies,
)
async def test_web_chat_file_and_history(
    site: Site,
    checked: Checked,
    head: bytes,
    body: bytes,
    client_id: str | None,
    name: str | None,
    session: str | None,
) -> None:
    query = "&".join(
        f"{key}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}"
        for key, value in (("id", client_id), ("name", name))
        if value is not None
    )
    headers = {"Content-Type": "application/octet-stream"}
    if session is not None and session != "keep":
        headers["X-Chat-Session"] = quote(session.encode("utf-8", "surrogatepass"))
    await checked.send(
        site.client, "POST", f"/api/chat/files?{query}", data=head + body, headers=headers
    )
    await stored_texts_are_clean(site.tawasul.database)
    await checked.send(site.client, "GET", "/api/chat/history", headers=headers)


# --- the dashboard, healthz and anywhere else ---


def query_of(fields: dict[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='')}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in fields.items()
    )


dashboard_queries = st.dictionaries(
    st.sampled_from(
        ["q", "status", "need", "channel", "overdue", "page", "lang", "next", "period", "kind"]
    ),
    texts,
    max_size=4,
)


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/staff/",
            "/staff/login",
            "/staff/handoffs",
            "/staff/reports",
            "/staff/requests.csv",
            "/staff/feedback",
            "/staff/feedback/FB-000001",
            "/staff/reports/feedback.csv",
            "/healthz",
            "/chat",
            "/",
        ]
    ),
    fields=dashboard_queries,
    logged_in=st.booleans(),
)
async def test_dashboard_and_pages(
    site: Site, checked: Checked, path: str, fields: dict[str, str], logged_in: bool
) -> None:
    client = site.staff if logged_in else site.client
    await checked.send(client, "GET", f"{path}?{query_of(fields)}")


@FUZZ
@given(
    form=st.dictionaries(
        st.sampled_from(["csrf", "username", "password", "next"]), texts, max_size=4
    ),
    path=st.sampled_from(
        [
            "/staff/login",
            "/staff/logout",
            "/staff/requests/REQ-000001/note",
            "/staff/feedback/FB-000001/answer",
        ]
    ),
    raw=st.one_of(st.none(), raw_bodies),
)
async def test_dashboard_forms(
    site: Site, checked: Checked, form: dict[str, str], path: str, raw: bytes | None
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    data = raw if raw is not None else query_of(form).encode()
    await checked.send(site.client, "POST", path, data=data, headers=headers)


@FUZZ
@given(
    path=texts.map(lambda t: "/" + quote(t.encode("utf-8", "surrogatepass"), safe="/")),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
)
async def test_any_other_path(site: Site, checked: Checked, path: str, method: str) -> None:
    await checked.send(site.client, method, path)
