"""Input at the boundary: text cleaned once for every channel, bodies bounded, the
dashboard's `next` and search checked, the client's address taken from trusted proxies."""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CHARITY,
    CHAT,
    PUBLIC_URL,
    SECRET,
    TelegramChat,
    count,
    eventually,
    make_settings,
)
from fakes.telegram_api import FakeTelegram, callback_query, private_message
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form
from served import served
from sqlalchemy import select
from sqlmodel import col
from test_cli import tawasul_command

from bot.config import ConfigError, Settings, load_settings
from bot.dashboard.auth import client_address
from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from flows.cleaning import clean_line, clean_text
from flows.types import Address, InboundMessage, Media
from handlers.base import BadBody, parse_json
from storage.db import Database
from storage.models import Message
from storage.repositories import StaffRepository

# A lone surrogate (a JSON "\ud800" escape), NUL and BEL around Arabic words.
NASTY = "مرحبا\x00\ud800 بكم\x07"
CLEAN = "مرحبا بكم"
WEB = "/api/chat/messages"
PASSWORD = "a long enough password"


# --- the cleaning itself ---


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("plain ascii", "plain ascii"),
        (NASTY, CLEAN),
        ("line one\r\nline two\rthree\u2028four", "line one\nline two\nthree\nfour"),
        ("tab\tkept\nnewline kept", "tab\tkept\nnewline kept"),
        ("\x1b[31mred\x1b[0m\x7f\x85", "[31mred[0m\n"),
        ("عربي\u202eevil\u202c \u2066iso\u2069", "عربيevil iso"),  # no reordering
        ("\u200fمرحبا\u200e \u061c", "\u200fمرحبا\u200e \u061c"),  # RLM, LRM, ALM stay
        ("\ufeffbom \ufffe\uffff\ufdd0", "bom "),
        ("ﻣﺮﺣﺒﺎ ﻻ", "مرحبا لا"),  # presentation forms, as copied from a PDF
        ("\uff11\uff12\uff13", "123"),  # full-width digits
        ("١٢٣ ۱۲۳", "١٢٣ ۱۲۳"),  # Arabic-Indic and Persian digits stay as typed
        ("محمد ﷺ", "محمد ﷺ"),  # word ligatures stay as written
        ("\u0627\u0654", "\u0623"),  # alef + hamza above composes (NFC)
        ("e\u0301", "\u00e9"),
    ],
)
def test_text_is_cleaned_once_for_every_channel(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned
    assert clean_text(cleaned) == cleaned  # cleaning twice changes nothing


def test_a_payload_is_one_line() -> None:
    assert clean_line(" rate_5\x00\n\t") == "rate_5"
    assert clean_line("a \n b") == "a b"


def test_the_neutral_message_cleans_itself() -> None:
    message = InboundMessage(
        Address("web", "x"),
        utcnow(),
        text=NASTY,
        payload="\x00\ud800",
        media=(Media("https://x/\x00a", "image/png\n", "id\x00.png"),),
        platform_message_id="sid\x00",
    )
    assert message.text == CLEAN
    assert message.payload is None  # nothing left of it
    assert message.media == (Media("https://x/a", "image/png", "id.png"),)
    assert message.platform_message_id == "sid"


# --- every channel, end to end ---


@pytest.fixture
async def server(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, twilio, telegram), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


async def inbound(database: Database, channel: str) -> list[tuple[str, str | None]]:
    async with database.session() as session:
        rows = await session.scalars(
            select(Message)
            .where(col(Message.channel) == channel, col(Message.direction) == "in")
            .order_by(col(Message.id))
        )
        return [(row.text, row.payload) for row in rows]


async def answered(database: Database, channel: str) -> int:
    return await count(
        database, Message, col(Message.channel) == channel, col(Message.direction) == "out"
    )


async def post_twilio(
    client: TestClient[Any, Any], params: dict[str, str], raw: dict[str, str] | None = None
) -> int:
    """A signed inbound webhook; ``raw`` swaps a field's encoded value for other bytes
    (signed as Twilio would sign what they decode to)."""
    decoded = {**params, **{name: unquote(value) for name, value in (raw or {}).items()}}
    body, headers = signed_form(PUBLIC_URL + "/webhooks/whatsapp", decoded, AUTH_TOKEN)
    for name, value in (raw or {}).items():
        body = body.replace(f"{name}={quote(decoded[name], safe='')}", f"{name}={value}")
    response = await client.post("/webhooks/whatsapp", data=body, headers=headers)
    return response.status


async def test_a_surrogate_and_a_nul_from_each_channel_are_stored_cleaned_and_answered(
    server: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = server
    db = tawasul.database

    # Telegram: text, then a button whose data carries them too.
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, NASTY))
    await chat.send(callback_query(CHAT, "0\x00\ud800"))
    assert await inbound(db, "telegram") == [(CLEAN, None), ("0", "0")]
    assert await answered(db, "telegram") >= 2

    # WhatsApp: NUL in the text and the button payload; a surrogate as Twilio cannot
    # send it (its UTF-8 form is invalid), which decodes to replacement characters.
    sender = "whatsapp:+966551234567"
    params = inbound_params(ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "مرحبا\x00 بكم")
    assert await post_twilio(client, params) == 200
    button = inbound_params(
        ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "", ButtonPayload="0\x00", ButtonText="0"
    )
    assert await post_twilio(client, button) == 200
    surrogate = inbound_params(ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "x")
    assert await post_twilio(client, surrogate, raw={"Body": "%ED%A0%80%00"}) == 200
    await eventually(lambda: len(twilio.messages) >= 3, "three WhatsApp replies")
    assert await inbound(db, "whatsapp") == [(CLEAN, None), ("0", "0"), ("\ufffd" * 3, None)]

    # SMS: the same form, another channel.
    sms = inbound_params(ACCOUNT_SID, "+966557654321", CHARITY, "\x00مرحبا\x1b")
    assert await post_twilio(client, sms) == 200
    await eventually(lambda: len(twilio.messages) >= 4, "an SMS reply")
    assert await inbound(db, "sms") == [("مرحبا", None)]

    # The website chat: text and payload.
    page = await client.get("/chat")
    # The cookie is Secure (the public URL is https): sent by hand over plain http.
    session = {"Cookie": f"tawasul_chat={page.cookies['tawasul_chat'].value}"}
    for n, body in enumerate(({"text": NASTY}, {"text": "\ud800", "payload": "0\x00\ud800"})):
        posted = await client.post(WEB, json={**body, "id": f"m{n}"}, headers=session)
        assert posted.status == 202, await posted.text()
    assert await inbound(db, "web") == [(CLEAN, None), ("", "0")]
    polled = await client.get(WEB, params={"after": "0", "wait": "5"}, headers=session)
    body = await polled.json()
    assert polled.status == 200 and body["messages"], body

    # Nothing stored anywhere carries what the cleaning drops.
    async with db.session() as session:
        for row in await session.scalars(select(Message)):
            for value in (row.text, row.payload or ""):
                assert value == clean_text(value), value


def test_the_console_cleans_too(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    result = subprocess.run(
        [*tawasul_command(), "chat"],
        env=environment,
        input="مرحبا\x00\n\x07\n".encode() + b"\xed\xa0\x80x\n",
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().count("─" * 24) == 3  # one reply block per line
    assert b"Traceback" not in result.stderr


# --- bodies ---


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ('{"text": "مرحبا", "n": 1.5}'.encode(), {"text": "مرحبا", "n": 1.5}),
        ('{"text": "مرحبا"}'.encode("utf-16"), {"text": "مرحبا"}),  # json reads it, orjson not
        (
            b'{"update_id": 123456789012345678901234567890}',
            {"update_id": 123456789012345678901234567890},
        ),
        (b'"\\ud800"', "\ud800"),  # a lone surrogate, escaped: json's reading, as before
    ],
)
def test_a_json_body_reads_as_the_standard_library_reads_it(body: bytes, value: Any) -> None:
    assert parse_json(body) == value == json.loads(body)


@pytest.mark.parametrize(
    "body", [b"NaN", b'{"a": Infinity}', b'{"a": -Infinity}', b"\xff\xfe{", b"{'a': 1}", b""]
)
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(BadBody) as refused:
        parse_json(body)
    assert refused.value.status == 400


async def test_deep_or_huge_json_is_refused_and_stores_nothing(
    server: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = server
    telegram = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    nested: Any = "deep"
    for _ in range(40):
        nested = {"a": nested}
    cases = [
        ("/webhooks/telegram", telegram, b"[" * 200_000, 400),
        ("/webhooks/telegram", telegram, b'{"update_id": 1, "x": ' + b"[" * 999 + b"}", 400),
        ("/webhooks/telegram", telegram, b'{"update_id": 1, "message": NaN}', 400),
        ("/webhooks/telegram", telegram, b" " * (1024 * 1024 + 1), 413),
        ("/api/chat/messages", {"Content-Type": "application/json"}, b"{" * 10_000, 400),
        ("/api/chat/messages", {"Content-Type": "application/json"}, b"[" * 20_000, 413),
    ]
    for path, headers, body, status in cases:
        response = await client.post(path, data=body, headers=headers)
        assert response.status == status, (path, body[:40])
    update = {"update_id": 9, **private_message(CHAT, "مرحبا"), "extra": nested}
    response = await client.post("/webhooks/telegram", data=json.dumps(update), headers=telegram)
    assert response.status == 400
    assert await count(tawasul.database, Message) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"text": {"nested": "dict"}},
        {"text": ["a"]},
        {"text": 5},
        {"chat": {"id": "5550001", "type": "private"}, "text": "hi"},
        {"location": {"latitude": "north", "longitude": 1}},
        {"location": {"latitude": 1e308 * 10, "longitude": 1}},
    ],
)
async def test_an_update_with_fields_of_the_wrong_type_is_a_400(
    server: tuple[Tawasul, TestClient[Any, Any]], fields: dict[str, Any]
) -> None:
    tawasul, client = server
    chat = TelegramChat(client, FakeTelegram(), tawasul.database)  # only posts: no API
    update = private_message(CHAT)
    update["message"] |= fields
    assert await chat.post({"update_id": 42, **update}) == 400
    assert await count(tawasul.database, Message) == 0


async def test_twilio_forms_are_bounded(server: tuple[Tawasul, TestClient[Any, Any]]) -> None:
    tawasul, client = server
    sender = "whatsapp:+966551234567"
    many = inbound_params(ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "hi")
    many |= {f"X{n}": "1" for n in range(300)}
    assert await post_twilio(client, many) == 400
    large = inbound_params(ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "x" * 70_000)
    assert await post_twilio(client, large) == 413
    bad_sid = inbound_params(ACCOUNT_SID, sender, "whatsapp:" + CHARITY, "hi", MessageSid="S\x00")
    assert await post_twilio(client, bad_sid) == 400
    assert await count(tawasul.database, Message) == 0


# --- the dashboard ---


@pytest.fixture
async def office(database: Database, tmp_path: Path) -> Tawasul:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "agent", password_hash=hash_password(PASSWORD), now=utcnow()
        )
    return Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)


async def staff_login(client: Any, next_url: str = "") -> Any:
    page = await client.get("/staff/login")
    text = await page.text()
    token = text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"csrf": token, "username": "amal", "password": PASSWORD, "next": next_url}
    return await client.post("/staff/login", data=form, allow_redirects=False)


async def test_next_and_search_are_checked(office: Tawasul) -> None:
    async with TestClient(TestServer(office.app())) as client:
        for target in ("/staff/\r\nX-Evil: 1", "/staff/%0d%0a", "/staff/\u0085", "/staff/ x"):
            client.session.cookie_jar.clear()
            response = await staff_login(client, target)
            assert response.status == 303
            expected = "/staff/%0d%0a" if target == "/staff/%0d%0a" else "/staff/"
            assert response.headers["Location"] == expected  # percent-encoded is harmless
            assert "X-Evil" not in response.headers
        page = await client.get("/staff/login?next=/staff/%0d%0aX-Evil:%201", allow_redirects=False)
        assert page.status == 303 and page.headers["Location"] == "/staff/"
        for q in ("²", "①", "𐩀", "\x00", "\ud800", "١٢", "REQ-٠٠٠٠٠١", "ﻣﺮﺣﺒﺎ"):
            raw = quote(q.encode("utf-8", "surrogatepass"), safe="")
            response = await client.get(f"/staff/?q={raw}")
            assert response.status == 200, q


async def test_a_live_inbox_page_that_closes_leaves_no_error(
    office: Tawasul, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with served(office.app()) as client:
        assert (await staff_login(client)).status == 303
        stream = await client.get("/staff/handoffs/events")
        assert stream.status == 200
        assert await stream.content.readline() == b"retry: 3000\n"
        stream.close()
        # An event finds the page gone: events go on until one has.
        live, events = office.dashboard.live, itertools.count()

        def published_to_nobody() -> bool:
            live.publish("handoff", id=next(events), change="opened")
            return not live._subscribers

        await eventually(published_to_nobody, "the stream to end")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# --- the client's address ---


def networks(*values: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(value) for value in values]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),  # no proxies: the peer
        ("203.0.113.9", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.9"),  # not our proxy
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),  # 1.1.1.1 forged
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", ["10.0.0.0/8"], "198.51.100.1"),  # two hops
        ("10.0.0.2", "", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", "garbage", ["10.0.0.0/8"], "10.0.0.2"),
        ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
        ("10.0.0.2", "10.0.0.4", ["10.0.0.0/8"], "10.0.0.4"),  # all ours: the farthest
    ],
)
def test_the_client_address_comes_only_from_trusted_proxies(
    peer: str, forwarded: str, trusted: list[str], client: str
) -> None:
    assert client_address(peer, [forwarded], networks(*trusted)) == client


def test_trusted_proxies_are_checked_in_the_configuration(tmp_path: Path) -> None:
    settings = Settings(server={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]})
    assert [str(n) for n in settings.server.trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    config = tmp_path / "config.toml"
    config.write_text('[server]\ntrusted_proxies = ["not an address"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies"):
        load_settings(config)


async def test_behind_a_trusted_proxy_the_web_chat_counts_forwarded_clients(
    database: Database, tmp_path: Path
) -> None:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media"), "trusted_proxies": ["127.0.0.1"]}
    )
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        statuses: dict[str, list[int]] = {"198.51.100.1": [], "198.51.100.2": []}
        for forwarded, seen in statuses.items():
            for n in range(22):
                client.session.cookie_jar.clear()
                response = await client.post(
                    WEB,
                    json={"text": "مرحبا", "id": f"m{n}"},
                    headers={"X-Forwarded-For": f"1.2.3.{n}, {forwarded}"},
                )
                seen.append(response.status)
    for seen in statuses.values():
        assert seen.count(202) == 20 and seen[-2:] == [429, 429]
