"""The WhatsApp Cloud API channel against captured-style notifications and a local Graph API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, eventually, make_settings, settled
from fakes.meta_api import (
    FakeMeta,
    contact,
    inbound,
    notification,
    signed_notification,
    status,
    texts,
)
from sqlalchemy import select
from sqlmodel import col

from bot.config import ConfigError, Settings, load_settings, template_warnings
from bot.engine import utcnow
from bot.server import Tawasul
from flows.types import (
    Address,
    Choice,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
    TemplateRef,
)
from handlers.base import (
    MAX_MEDIA_BYTES,
    Channel,
    DeliveryError,
    DeliveryReceipt,
    MediaError,
    Overloaded,
)
from handlers.whatsapp_cloud import (
    CHANNEL,
    USER_AGENT,
    WEBHOOK_PATH,
    WhatsAppCloudChannel,
    delivery_error,
    translate,
)
from storage.db import Database
from storage.models import Message
from storage.repositories import IdentityRepository, MessageRepository

PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "EAAG" + "x1" * 20
APP_SECRET = "c0ffee" * 5
VERIFY_TOKEN = "tawasul-verify-0123"
WA_ID = "966551234567"
BENEFICIARY = Address(CHANNEL, "+" + WA_ID)
LIST_BUTTON = {"ar": "عرض الخيارات", "en": "Show options"}


@dataclass
class Inbox:
    """What the server would be given: messages and receipts."""

    messages: list[InboundMessage] = field(default_factory=list)
    receipts: list[DeliveryReceipt] = field(default_factory=list)
    failing: bool = False
    busy: Overloaded | None = None

    async def receive(self, message: InboundMessage) -> None:
        if self.failing:
            raise RuntimeError("database is down")
        if self.busy is not None:
            raise self.busy
        self.messages.append(message)

    async def on_status(self, receipt: DeliveryReceipt) -> None:
        if self.failing:
            raise RuntimeError("database is down")
        self.receipts.append(receipt)


@pytest.fixture
async def api() -> AsyncIterator[FakeMeta]:
    async with FakeMeta(PHONE_NUMBER_ID, ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def make_channel(api_base_url: str, inbox: Inbox) -> WhatsAppCloudChannel:
    return WhatsAppCloudChannel(
        PHONE_NUMBER_ID,
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        api_base_url=api_base_url,
        on_status=inbox.on_status,
        templates={"status_update": "request_status_update"},
        list_button=LIST_BUTTON,
    )


@pytest.fixture
async def channel(api: FakeMeta, inbox: Inbox) -> AsyncIterator[WhatsAppCloudChannel]:
    cloud = make_channel(api.base_url, inbox)
    await cloud.start()
    try:
        yield cloud
    finally:
        await cloud.stop()


@pytest.fixture
async def http(channel: WhatsAppCloudChannel, inbox: Inbox) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app.add_routes(channel.routes(inbox.receive))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def test_it_is_a_channel() -> None:
    cloud: Channel = make_channel("http://127.0.0.1:9", Inbox())
    assert cloud.names == ("whatsapp_cloud",)


def test_the_user_agent_is_what_meta_describes() -> None:
    import re

    assert re.fullmatch(r"[a-zA-Z0-9\-_]+/[0-9]+\.[0-9]+\.[0-9]+", USER_AGENT)


async def post(
    http: TestClient[Any, Any], payload: dict[str, Any], secret: str = APP_SECRET
) -> Any:
    body, headers = signed_notification(payload, secret)
    return await http.post(WEBHOOK_PATH, data=body, headers=headers)


# --- webhook verification ---


async def test_verification_answers_the_challenge(http: TestClient[Any, Any]) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = await http.get(WEBHOOK_PATH, params=query)
    assert response.status == 200
    assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ],
)
async def test_verification_refuses_anything_else(
    http: TestClient[Any, Any], query: dict[str, str]
) -> None:
    response = await http.get(WEBHOOK_PATH, params=query)
    assert response.status == 403
    assert "1" not in await response.text()


# --- signatures ---


async def test_a_signed_notification_is_taken(http: TestClient[Any, Any], inbox: Inbox) -> None:
    payload = notification(
        PHONE_NUMBER_ID,
        contacts=[contact(WA_ID)],
        messages=[inbound(WA_ID, "wamid.A1", body="السلام عليكم")],
    )
    response = await post(http, payload)
    assert response.status == 200
    assert [m.text for m in inbox.messages] == ["السلام عليكم"]


@pytest.mark.parametrize("how", ["wrong_secret", "no_header", "sha1", "tampered"])
async def test_an_unsigned_or_wrongly_signed_notification_is_403(
    http: TestClient[Any, Any], inbox: Inbox, how: str
) -> None:
    payload = notification(PHONE_NUMBER_ID, messages=[inbound(WA_ID, "wamid.A1", body="hi")])
    body, headers = signed_notification(
        payload, "other-secret" if how == "wrong_secret" else APP_SECRET
    )
    if how == "no_header":
        del headers["X-Hub-Signature-256"]
    if how == "sha1":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].replace("sha256", "sha1")
    if how == "tampered":
        body = body.replace(b"hi", b"ho")
    response = await http.post(WEBHOOK_PATH, data=body, headers=headers)
    assert response.status == 403
    assert inbox.messages == []


async def test_a_signed_body_that_is_no_json_is_400(http: TestClient[Any, Any]) -> None:
    import hashlib
    import hmac

    body = b"{not json"
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await http.post(
        WEBHOOK_PATH, data=body, headers={"X-Hub-Signature-256": f"sha256={digest}"}
    )
    assert response.status == 400


async def test_not_stored_is_500_so_meta_sends_it_again(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    inbox.failing = True
    payload = notification(PHONE_NUMBER_ID, messages=[inbound(WA_ID, "wamid.A1", body="hi")])
    assert (await post(http, payload)).status == 500
    inbox.failing = False
    assert (await post(http, payload)).status == 200
    assert [m.platform_message_id for m in inbox.messages] == ["wamid.A1"]


async def test_a_busy_bot_asks_meta_to_retry_later(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    inbox.busy = Overloaded(7)  # the engine's queue is full
    payload = notification(PHONE_NUMBER_ID, messages=[inbound(WA_ID, "wamid.A1", body="hi")])
    answer = await post(http, payload)
    assert (answer.status, answer.headers.get("Retry-After")) == (503, "7")
    assert inbox.messages == []


async def test_another_numbers_notifications_are_acknowledged_and_ignored(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    payload = notification("999999999", messages=[inbound(WA_ID, "wamid.A1", body="hi")])
    assert (await post(http, payload)).status == 200
    assert inbox.messages == []


# --- inbound: captured-style payloads ---

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
GRAPH = "https://graph.facebook.com/v23.0"
INBOUND_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "arabic_text": (
        inbound(WA_ID, "wamid.T", body="أريد طلب دعم"),
        dict(text="أريد طلب دعم"),
    ),
    "button_reply": (
        inbound(
            WA_ID,
            "wamid.B",
            "interactive",
            type="button_reply",
            button_reply={"id": "2", "title": "حالة طلبي"},
        ),
        dict(text="حالة طلبي", payload="2"),
    ),
    "list_reply": (
        inbound(
            WA_ID,
            "wamid.L",
            "interactive",
            type="list_reply",
            list_reply={"id": "rate_5", "title": "ممتاز", "description": ""},
        ),
        dict(text="ممتاز", payload="rate_5"),
    ),
    "template_quick_reply": (
        inbound(WA_ID, "wamid.Q", "button", payload="menu", text="القائمة"),
        dict(text="القائمة", payload="menu"),
    ),
    "document_with_caption": (
        inbound(
            WA_ID,
            "wamid.D",
            "document",
            id="1234567890",
            mime_type="application/pdf",
            filename="salary.pdf",
            caption="كشف الراتب",
            sha256="x",
        ),
        dict(
            text="كشف الراتب",
            media=(Media(f"{GRAPH}/1234567890", "application/pdf", "salary.pdf"),),
        ),
    ),
    "image": (
        inbound(WA_ID, "wamid.I", "image", id="555", mime_type="image/jpeg", sha256="x"),
        dict(media=(Media(f"{GRAPH}/555", "image/jpeg"),)),
    ),
    "location": (
        inbound(WA_ID, "wamid.P", "location", latitude=24.7136, longitude=46.6753),
        dict(location=Location(24.7136, 46.6753)),
    ),
    "unsupported_kind_still_arrives": (
        inbound(WA_ID, "wamid.U", "unsupported", errors=[{"code": 131051}]),
        dict(),
    ),
}


@pytest.mark.parametrize("case", INBOUND_CASES)
def test_inbound_translation(case: str) -> None:
    raw, expected = INBOUND_CASES[case]
    messages, receipts = translate(
        notification(PHONE_NUMBER_ID, contacts=[contact(WA_ID)], messages=[raw]),
        PHONE_NUMBER_ID,
        NOW,
        GRAPH,
    )
    assert receipts == []
    want = InboundMessage(
        address=BENEFICIARY,
        received_at=NOW,
        platform_message_id=raw["id"],
        **expected,
    )
    assert messages == [want]


@pytest.mark.parametrize(
    "raw",
    [
        inbound(WA_ID, "wamid.R", "reaction", message_id="wamid.X", emoji="👍"),
        {"from": WA_ID, "id": "wamid.S", "type": "system", "system": {"body": "changed"}},
        inbound("+966", "wamid.N", body="bad sender"),
        {"from": WA_ID, "type": "text", "text": {"body": "no id"}},
        "not an object",
    ],
)
def test_what_is_not_a_message_is_skipped_without_losing_the_batch(raw: Any) -> None:
    good = inbound(WA_ID, "wamid.OK", body="hi")
    messages, _ = translate(
        notification(PHONE_NUMBER_ID, messages=[raw, good]), PHONE_NUMBER_ID, NOW, GRAPH
    )
    assert [m.platform_message_id for m in messages] == ["wamid.OK"]


STATUS_CASES = {
    "sent": (status("wamid.1", "sent", WA_ID), DeliveryReceipt(CHANNEL, "wamid.1", "sent")),
    "delivered": (
        status("wamid.1", "delivered", WA_ID),
        DeliveryReceipt(CHANNEL, "wamid.1", "delivered"),
    ),
    "read": (status("wamid.1", "read", WA_ID), DeliveryReceipt(CHANNEL, "wamid.1", "read")),
    "outside_window": (
        status("wamid.1", "failed", WA_ID, 131047),
        DeliveryReceipt(
            CHANNEL,
            "wamid.1",
            "failed",
            reason="whatsapp cloud 131047: outside the 24-hour window; an approved template"
            " is needed",
            outside_window=True,
        ),
    ),
    "undeliverable": (
        status("wamid.1", "failed", WA_ID, 131026),
        DeliveryReceipt(
            CHANNEL,
            "wamid.1",
            "failed",
            reason="whatsapp cloud 131026: undeliverable (not on WhatsApp, or terms not accepted)",
            unreachable=True,
        ),
    ),
}


@pytest.mark.parametrize("case", STATUS_CASES)
async def test_status_webhooks_become_neutral_receipts(
    http: TestClient[Any, Any], inbox: Inbox, case: str
) -> None:
    raw, receipt = STATUS_CASES[case]
    assert (await post(http, notification(PHONE_NUMBER_ID, statuses=[raw]))).status == 200
    assert inbox.receipts == [receipt]
    assert WA_ID not in (receipt.reason or "")  # Meta's details quote the number; never kept


async def test_a_receipt_not_stored_is_500(http: TestClient[Any, Any], inbox: Inbox) -> None:
    inbox.failing = True
    raw = status("wamid.1", "delivered", WA_ID)
    assert (await post(http, notification(PHONE_NUMBER_ID, statuses=[raw]))).status == 500


# --- sending ---


async def test_text_goes_as_one_text_message(channel: WhatsAppCloudChannel, api: FakeMeta) -> None:
    sent = await channel.send(BENEFICIARY, OutboundMessage("مرحباً بك", "ar"))
    assert texts(api.messages) == ["مرحباً بك"]
    assert api.messages[0]["to"] == WA_ID
    assert sent.platform_message_id and sent.platform_message_id.startswith("wamid.")
    call = api.calls_to("POST", "/v23.0/")[0]
    assert call.authorized and call.user_agent == USER_AGENT
    assert api.refused == []


MENU = tuple(
    Choice(str(n), label)
    for n, label in enumerate(
        ["طلب دعم جديد", "حالة طلبي", "تقييم الخدمة", "التحدث مع موظف"], start=1
    )
)


async def test_up_to_three_short_choices_are_reply_buttons(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    message = OutboundMessage(
        "هل البيانات صحيحة؟", "ar", (Choice("yes", "نعم"), Choice("no", "لا"))
    )
    await channel.send(BENEFICIARY, message)
    interactive = api.messages[0]["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"]["text"] == "هل البيانات صحيحة؟"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "yes", "title": "نعم"},
        {"id": "no", "title": "لا"},
    ]


async def test_four_to_ten_choices_are_a_list(channel: WhatsAppCloudChannel, api: FakeMeta) -> None:
    await channel.send(BENEFICIARY, OutboundMessage("القائمة", "ar", MENU))
    interactive = api.messages[0]["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "عرض الخيارات"
    rows = interactive["action"]["sections"][0]["rows"]
    assert [(r["id"], r["title"]) for r in rows] == [(c.payload, c.label) for c in MENU]


async def test_the_list_button_speaks_the_messages_language(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    menu = tuple(Choice(str(n), f"Option {n}") for n in range(1, 6))
    await channel.send(BENEFICIARY, OutboundMessage("Menu", "en", menu))
    assert api.messages[0]["interactive"]["action"]["button"] == "Show options"


@pytest.mark.parametrize(
    "choices",
    [
        # eleven choices: more than a list holds
        tuple(Choice(str(n), f"خيار {n}") for n in range(1, 12)),
        # a label longer than a row's 24 characters
        (Choice("1", "نعم"), Choice("2", "لا، أريد تعديل بيانات الطلب قبل الإرسال")),
        # two choices drawn the same: Meta wants distinct titles
        (Choice("1", "نعم"), Choice("2", "نعم")),
    ],
)
async def test_choices_that_fit_neither_go_as_numbered_text(
    channel: WhatsAppCloudChannel, api: FakeMeta, choices: tuple[Choice, ...]
) -> None:
    await channel.send(BENEFICIARY, OutboundMessage("اختر رقماً", "ar", choices))
    assert api.messages[0]["type"] == "text"
    body = api.messages[0]["text"]["body"]
    assert body.startswith("اختر رقماً\n١- ")
    assert f"{len(choices)}"[-1] in body.translate(str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789"))
    assert api.refused == []


async def test_a_long_label_for_a_button_still_fits_a_list_row(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    choices = (Choice("1", "نعم، البيانات صحيحة"), Choice("2", "لا"))  # 19 > 20? no: 19 fits
    long = (Choice("1", "نعم، جميع البيانات صحيحة"), Choice("2", "لا"))  # 24: a row, not a button
    await channel.send(BENEFICIARY, OutboundMessage("تأكيد", "ar", choices))
    await channel.send(BENEFICIARY, OutboundMessage("تأكيد", "ar", long))
    assert [m["interactive"]["type"] for m in api.messages] == ["button", "list"]
    assert api.refused == []


async def test_a_body_over_1024_goes_as_numbered_text(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    text = "ملخص الطلب " * 100  # 1,100 characters
    await channel.send(BENEFICIARY, OutboundMessage(text, "ar", (Choice("yes", "نعم"),)))
    assert [m["type"] for m in api.messages] == ["text"]
    assert api.messages[0]["text"]["body"].endswith("١- نعم")


async def test_a_long_text_is_split_within_4096_and_resumed_from_a_part(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    text = "\n".join(f"سطر رقم {n} من نص طويل جداً" for n in range(400))  # ~10,000 chars
    seen: list[int] = []

    async def before_part(index: int) -> None:
        seen.append(index)

    await channel.send(BENEFICIARY, OutboundMessage(text, "ar"), before_part=before_part)
    parts = texts(api.messages)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
    assert seen == [1, 2]
    api.messages.clear()
    await channel.send(BENEFICIARY, OutboundMessage(text, "ar"), first_part=2)
    assert texts(api.messages) == parts[2:]


async def test_a_template_goes_by_name_in_the_messages_language(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    template = TemplateRef("status_update", {"2": "مقبول", "1": "REQ-000123"})
    await channel.send(BENEFICIARY, OutboundMessage("تغيرت حالة طلبك", "ar", template=template))
    assert api.messages[0]["template"] == {
        "name": "request_status_update",
        "language": {"policy": "deterministic", "code": "ar"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "REQ-000123"},
                    {"type": "text", "text": "مقبول"},
                ],
            }
        ],
    }
    assert api.refused == []


async def test_a_template_kind_without_a_name_is_refused_for_good(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    with pytest.raises(DeliveryError) as raised:
        await channel.send(
            BENEFICIARY, OutboundMessage("x", "ar", template=TemplateRef("checkin", {}))
        )
    assert raised.value.permanent
    assert api.calls == []


@pytest.mark.parametrize(
    ("status_code", "code", "permanent", "unreachable", "outside", "retry_after"),
    [
        (400, 131047, True, False, True, None),
        (400, 131026, True, True, False, None),
        (400, 130429, False, False, False, None),
        (400, 131056, False, False, False, None),
        (429, 4, False, False, False, 7.0),
        (400, 131051, True, False, False, None),
        (400, 132001, True, False, False, None),
        (500, 131000, False, False, False, None),
    ],
)
async def test_graph_errors_become_neutral_outcomes(
    channel: WhatsAppCloudChannel,
    api: FakeMeta,
    status_code: int,
    code: int,
    permanent: bool,
    unreachable: bool,
    outside: bool,
    retry_after: float | None,
) -> None:
    api.fail(code, status=status_code, retry_after="7" if retry_after else None)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(BENEFICIARY, OutboundMessage("مرحباً", "ar"))
    error = raised.value
    assert (error.permanent, error.unreachable, error.outside_window) == (
        permanent,
        unreachable,
        outside,
    )
    assert error.retry_after == retry_after
    assert error.code == str(code)
    assert WA_ID not in error.reason


def test_an_unknown_error_is_judged_by_its_http_status() -> None:
    assert delivery_error(400, 999999, None).permanent
    assert not delivery_error(503, None, None).permanent


async def test_meta_not_reachable_is_retried(inbox: Inbox) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cloud = make_channel(f"http://127.0.0.1:{port}", inbox)
    await cloud.start()
    try:
        with pytest.raises(DeliveryError) as raised:
            await cloud.send(BENEFICIARY, OutboundMessage("مرحباً", "ar"))
    finally:
        await cloud.stop()
    assert not raised.value.permanent


async def test_an_address_of_another_channel_is_refused(channel: WhatsAppCloudChannel) -> None:
    with pytest.raises(DeliveryError):
        await channel.send(Address("whatsapp", "+" + WA_ID), OutboundMessage("x", "ar"))


# --- media ---


async def test_media_is_fetched_by_id_then_url_with_the_token(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    media_id = api.add_media(b"%PDF-1.7 salary", "application/pdf")
    media = Media(f"{api.base_url}/v23.0/{media_id}", "application/pdf", "salary.pdf")
    assert await channel.fetch_media(media) == b"%PDF-1.7 salary"
    lookup, download = api.calls
    assert lookup.path == f"/v23.0/{media_id}" and lookup.authorized
    assert download.path.startswith("/download/") and download.authorized


async def test_media_too_large_or_unknown_or_foreign_is_refused(
    channel: WhatsAppCloudChannel, api: FakeMeta
) -> None:
    big = api.add_media(b"x" * (MAX_MEDIA_BYTES + 1), "image/jpeg")
    with pytest.raises(MediaError):
        await channel.fetch_media(Media(f"{api.base_url}/v23.0/{big}", "image/jpeg"))
    assert not any(c.path.startswith("/download/") for c in api.calls)  # size known first
    with pytest.raises(MediaError):
        await channel.fetch_media(Media(f"{api.base_url}/v23.0/4040404", "image/jpeg"))
    before = len(api.calls)
    with pytest.raises(MediaError):
        await channel.fetch_media(Media("https://example.org/v23.0/1", "image/jpeg"))
    assert len(api.calls) == before  # the token never leaves for another host


# --- the stand-in itself refuses what Meta refuses ---


async def test_the_stand_in_refuses_what_breaks_metas_limits(api: FakeMeta) -> None:
    import aiohttp

    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID}
    too_many = [{"type": "reply", "reply": {"id": str(n), "title": str(n)}} for n in range(4)]
    bad = [
        {**base, "type": "text", "text": {"body": "x" * 4097}},
        {
            **base,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "q"},
                "action": {"buttons": too_many},
            },
        },
        {**base, "type": "template", "template": {"name": "t", "language": {"code": "ar"}}},
    ]
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}", "User-Agent": USER_AGENT}
    url = f"{api.base_url}/v23.0/{PHONE_NUMBER_ID}/messages"
    async with aiohttp.ClientSession() as session:
        for body in bad:
            async with session.post(url, json=body, headers=headers) as answer:
                assert answer.status == 400
                assert (await answer.json())["error"]["code"] == 100
        async with session.post(
            url, json=bad[0], headers={**headers, "User-Agent": "python-aiohttp"}
        ) as answer:
            assert answer.status == 400
    assert len(api.refused) == 3 and api.messages == []


# --- the whole server: the channel wired in, the outbox and the 24-hour window ---


def cloud_settings(tmp_path: Path, api: FakeMeta, **templates: str) -> Settings:
    return make_settings(
        tmp_path,
        whatsapp_cloud={
            "phone_number_id": PHONE_NUMBER_ID,
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "api_base_url": api.base_url,
            "templates": templates,
        },
    )


class CloudPhone:
    """A beneficiary on WhatsApp through Meta: signed notifications in, the Graph API out."""

    def __init__(self, client: TestClient[Any, Any], api: FakeMeta, database: Database) -> None:
        self.client, self.api, self.database, self.count = client, api, database, 0

    async def send(self, kind: str = "text", **body: Any) -> list[dict[str, Any]]:
        """Send one message; returns the messages the server sent for it."""
        self.count += 1
        before = len(self.api.messages)
        raw = inbound(WA_ID, f"wamid.in{self.count}", kind, **body)
        payload = notification(PHONE_NUMBER_ID, contacts=[contact(WA_ID)], messages=[raw])
        assert (await post(self.client, payload)).status == 200
        await eventually(lambda: len(self.api.messages) > before, "a reply")
        await settled(self.database, "whatsapp_cloud")  # a turn may have a second reply
        return self.api.messages[before:]


async def test_a_conversation_through_the_cloud_api(
    database: Database, api: FakeMeta, tmp_path: Path
) -> None:
    tawasul = Tawasul(cloud_settings(tmp_path, api), database)
    assert "whatsapp_cloud" in tawasul.channels
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = CloudPhone(client, api, database)
        [menu] = await phone.send(body="السلام عليكم")
        assert menu["interactive"]["type"] == "list"
        rows = menu["interactive"]["action"]["sections"][0]["rows"]
        assert rows[0]["title"] == "طلب دعم جديد"
        tapped = await phone.send(
            "interactive", type="list_reply", list_reply={"id": rows[0]["id"], "title": "x"}
        )
        assert "الاسم" in " ".join(texts(tapped))  # the intake's first question
    assert api.refused == []
    async with database.session() as session:
        identity = await IdentityRepository(session).find(BENEFICIARY)
    assert identity is not None


async def test_a_failed_status_131047_sends_the_message_again_as_its_template(
    database: Database, api: FakeMeta, tmp_path: Path
) -> None:
    settings = cloud_settings(tmp_path, api, status_update="request_status_update")
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = CloudPhone(client, api, database)
        await phone.send(body="مرحبا")
        async with database.session() as session:
            identity = await IdentityRepository(session).find(BENEFICIARY)
        assert identity is not None and identity.id is not None
        template = TemplateRef("status_update", {"1": "REQ-000001", "2": "مقبول"})
        async with database.session() as session, session.begin():
            notice = await MessageRepository(session).enqueue(
                identity.id,
                CHANNEL,
                OutboundMessage("تغيرت حالة طلبك", "ar", template=template),
                utcnow(),
                kind="proactive",
            )
        tawasul.outbox.wake()
        await eventually(lambda: texts(api.messages)[-1] == "تغيرت حالة طلبك", "the notice")

        async def stored_id() -> str | None:
            async with database.session() as session:
                found = await session.get(Message, notice)
                return found.platform_message_id if found is not None else None

        wamid = None
        for _ in range(500):
            wamid = await stored_id()
            if wamid:
                break
            await asyncio.sleep(0.02)
        assert wamid is not None
        failed = notification(PHONE_NUMBER_ID, statuses=[status(wamid, "failed", WA_ID, 131047)])
        assert (await post(client, failed)).status == 200
        await eventually(lambda: api.messages[-1]["type"] == "template", "the template")
    assert api.messages[-1]["template"]["name"] == "request_status_update"
    assert api.refused == []


async def test_outside_the_window_without_a_template_nothing_goes(
    database: Database, api: FakeMeta, tmp_path: Path
) -> None:
    tawasul = Tawasul(cloud_settings(tmp_path, api), database)
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(
            BENEFICIARY, utcnow() - timedelta(hours=25)
        )
        assert identity.id is not None
        reminder = await MessageRepository(session).enqueue(
            identity.id, CHANNEL, OutboundMessage("تذكير", "ar"), utcnow(), kind="proactive"
        )
    async with TestClient(TestServer(tawasul.app())):
        await settled(database, CHANNEL)  # the running outbox has tried it
    async with database.session() as session:
        found = await session.get(Message, reminder)
    assert found is not None and found.status == "failed"
    assert "24-hour window" in (found.error or "")
    assert api.messages == []


async def test_delivery_receipts_reach_the_case_file(
    database: Database, api: FakeMeta, tmp_path: Path
) -> None:
    tawasul = Tawasul(cloud_settings(tmp_path, api), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = CloudPhone(client, api, database)
        await phone.send(body="مرحبا")

        async def sent_ids() -> list[str]:
            async with database.session() as session:
                rows = await session.scalars(
                    select(Message.platform_message_id).where(
                        col(Message.direction) == "out", col(Message.status) == "sent"
                    )
                )
                return [r for r in rows if r]

        ids: list[str] = []
        for _ in range(500):
            ids = await sent_ids()
            if ids:
                break
            await asyncio.sleep(0.02)
        assert ids
        read = notification(PHONE_NUMBER_ID, statuses=[status(ids[0], "read", WA_ID)])
        assert (await post(client, read)).status == 200
    async with database.session() as session:
        statuses = set(
            await session.scalars(
                select(Message.status).where(col(Message.platform_message_id) == ids[0])
            )
        )
    assert statuses == {"read"}


async def test_a_redelivered_attachment_is_not_fetched_again(
    database: Database, api: FakeMeta, tmp_path: Path
) -> None:
    tawasul = Tawasul(cloud_settings(tmp_path, api), database)
    media_id = api.add_media(b"%PDF-1.7 rent contract", "application/pdf")
    document = inbound(
        WA_ID, "wamid.doc", "document", id=media_id, mime_type="application/pdf", sha256="x"
    )
    payload = notification(PHONE_NUMBER_ID, contacts=[contact(WA_ID)], messages=[document])
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = CloudPhone(client, api, database)
        for line in INTAKE_WHATSAPP[: INTAKE_WHATSAPP.index("تم")]:  # up to the documents
            await phone.send(body=line)
        assert (await post(client, payload)).status == 200
        assert len(api.calls_to("GET", f"/v23.0/{media_id}")) == 1  # the step takes it
        assert (await post(client, payload)).status == 200  # Meta sends it again
    # Checked against the log before fetching: the second delivery fetches nothing.
    assert len(api.calls_to("GET", f"/v23.0/{media_id}")) == 1
    async with database.session() as session:
        stored = await session.scalars(
            select(Message.id).where(col(Message.platform_message_id) == "wamid.doc")
        )
        assert len(list(stored)) == 1


# --- its configuration section ---


def test_the_section_takes_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAWASUL_WHATSAPP_CLOUD__ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("TAWASUL_WHATSAPP_CLOUD__APP_SECRET", APP_SECRET)
    cloud = Settings(whatsapp_cloud={"phone_number_id": PHONE_NUMBER_ID}).whatsapp_cloud
    assert cloud.access_token is not None and cloud.app_secret is not None
    assert cloud.access_token.get_secret_value() == ACCESS_TOKEN
    assert ACCESS_TOKEN not in repr(cloud) and APP_SECRET not in repr(cloud)
    assert (cloud.api_base_url, cloud.api_version) == ("https://graph.facebook.com", "v23.0")


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"templates": {"no_such_kind": "t"}}, "whatsapp_cloud.templates"),
        ({"templates": {"checkin": "Has Capitals"}}, "whatsapp_cloud.templates.checkin"),
        ({"phone_number_id": "+966550000000"}, "whatsapp_cloud.phone_number_id"),
        ({"api_version": "23"}, "whatsapp_cloud.api_version"),
        ({"token": "x"}, "whatsapp_cloud.token: unknown key"),
    ],
)
def test_a_wrong_key_is_refused_with_its_name(
    tmp_path: Path, section: dict[str, Any], problem: str
) -> None:
    import json as json_module

    config = tmp_path / "config.toml"
    lines = [f"{key} = {json_module.dumps(value)}" for key, value in section.items()]
    if "templates" in section:
        lines = ["[whatsapp_cloud.templates]"] + [
            f'{kind} = "{name}"' for kind, name in section["templates"].items()
        ]
    else:
        lines = ["[whatsapp_cloud]", *lines]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert problem in str(refused.value)


def test_kinds_sent_without_a_cloud_template_are_warned_about() -> None:
    settings = Settings(
        whatsapp_cloud={"phone_number_id": PHONE_NUMBER_ID, "templates": {"checkin": "c"}}
    )
    [line] = template_warnings(settings)
    assert line.startswith("whatsapp_cloud.templates") and "status_update" in line
    assert "checkin" not in line.split(":")[0] and "fail" in line


def test_the_channel_declares_itself_and_is_found() -> None:
    from bot.channels import capabilities_of, channel_names

    assert set(channel_names()) >= {"console", "whatsapp", "sms", "telegram", "web", CHANNEL}
    declared = capabilities_of(CHANNEL)
    assert declared.window == timedelta(hours=24) and declared.phone_numbers
    assert {"image", "document"} <= declared.media and declared.text_limit == 4096
    configured = make_channel("http://127.0.0.1:9", Inbox()).capabilities(CHANNEL)
    assert configured.templates == {"status_update"}
    assert configured.per_second == pytest.approx(64.0)  # 80% of Meta's 80 a second
