"""The Twilio channel against captured-style webhooks and a local Twilio API (the real client)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fakes.twilio_api import FakeTwilio, inbound_params, signed_form, status_params

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
from handlers.twilio import EMPTY_TWIML, INBOUND_PATH, STATUS_PATH, TwilioChannel, split_body

ACCOUNT_SID = "AC" + "3f" * 16
AUTH_TOKEN = "9c" * 16
PUBLIC_URL = "https://tawasul.example.org/"  # the trailing slash must not matter
BUSINESS = "+966550000000"
SMS_SENDER = "+966112345678"
BENEFICIARY = "+966551234567"
WA_BENEFICIARY = f"whatsapp:{BENEFICIARY}"
WA_BUSINESS = f"whatsapp:{BUSINESS}"
STATUS_CALLBACK = "https://tawasul.example.org/webhooks/whatsapp/status"
TEMPLATE_SID = "HX" + "ab" * 16


@dataclass
class Inbox:
    """What the server would be given: messages and status callbacks."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[DeliveryReceipt] = field(default_factory=list)
    failing: bool = False
    busy: Overloaded | None = None

    async def receive(self, message: InboundMessage) -> None:
        if self.failing:
            raise RuntimeError("database is down")
        if self.busy is not None:
            raise self.busy
        self.messages.append(message)

    async def on_status(self, receipt: DeliveryReceipt) -> None:
        self.statuses.append(receipt)


@pytest.fixture
async def api() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def make_channel(api_base_url: str, inbox: Inbox) -> TwilioChannel:
    return TwilioChannel(
        ACCOUNT_SID,
        AUTH_TOKEN,
        BUSINESS,
        public_url=PUBLIC_URL,
        api_base_url=api_base_url,
        sms_from_number=SMS_SENDER,
        on_status=inbox.on_status,
        templates={"status_changed": TEMPLATE_SID},
    )


@pytest.fixture
async def channel(api: FakeTwilio, inbox: Inbox) -> AsyncIterator[TwilioChannel]:
    twilio = make_channel(api.base_url, inbox)
    await twilio.start()
    try:
        yield twilio
    finally:
        await twilio.stop()


@pytest.fixture
async def http(channel: TwilioChannel, inbox: Inbox) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app.add_routes(channel.routes(inbox.receive))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def test_it_is_a_channel() -> None:
    twilio: Channel = make_channel("http://127.0.0.1:9", Inbox())
    assert twilio.names == ("whatsapp", "sms")


async def post_signed(
    http: TestClient[Any, Any], path: str, params: dict[str, str], token: str = AUTH_TOKEN
) -> Any:
    body, headers = signed_form(PUBLIC_URL.rstrip("/") + path, params, token)
    return await http.post(path, data=body, headers=headers)


# --- inbound: captured-style payloads ---

SID = "SM" + "5a" * 16
INBOUND_CASES = {
    "whatsapp_arabic_text": (
        inbound_params(
            ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "السلام عليكم، أريد طلب دعم", message_sid=SID
        ),
        dict(address=Address("whatsapp", BENEFICIARY), text="السلام عليكم، أريد طلب دعم"),
    ),
    "sms_without_prefix": (
        inbound_params(ACCOUNT_SID, BENEFICIARY, SMS_SENDER, "حالة طلبي", message_sid=SID),
        dict(address=Address("sms", BENEFICIARY), text="حالة طلبي"),
    ),
    "button_reply": (
        inbound_params(
            ACCOUNT_SID,
            WA_BENEFICIARY,
            WA_BUSINESS,
            "ممتاز",
            message_sid=SID,
            MessageType="button",
            ButtonText="ممتاز",
            ButtonPayload="5",
        ),
        dict(address=Address("whatsapp", BENEFICIARY), text="ممتاز", payload="5"),
    ),
    "location": (
        inbound_params(
            ACCOUNT_SID,
            WA_BENEFICIARY,
            WA_BUSINESS,
            message_sid=SID,
            MessageType="location",
            Latitude="21.5433",
            Longitude="39.1728",
        ),
        dict(address=Address("whatsapp", BENEFICIARY), location=Location(21.5433, 39.1728)),
    ),
    "two_media": (
        inbound_params(
            ACCOUNT_SID,
            WA_BENEFICIARY,
            WA_BUSINESS,
            "صورة الهوية والتقرير",
            message_sid=SID,
            MessageType="image",
            NumMedia="2",
            MediaUrl0=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1",
            MediaContentType0="image/jpeg",
            MediaUrl1=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME2",
            MediaContentType1="application/pdf",
        ),
        dict(
            address=Address("whatsapp", BENEFICIARY),
            text="صورة الهوية والتقرير",
            media=(
                Media(
                    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1",
                    "image/jpeg",
                ),
                Media(
                    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME2",
                    "application/pdf",
                ),
            ),
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(INBOUND_CASES))
async def test_inbound_payload_becomes_one_neutral_message(
    case: str, http: TestClient[Any, Any], inbox: Inbox
) -> None:
    params, expected = INBOUND_CASES[case]
    response = await post_signed(http, INBOUND_PATH, params)
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert await response.text() == EMPTY_TWIML
    [message] = inbox.messages
    defaults: dict[str, Any] = dict(text="", payload=None, media=(), location=None)
    for name, value in (defaults | expected).items():
        assert getattr(message, name) == value, name
    assert message.platform_message_id == SID
    assert message.received_at.tzinfo is not None


@pytest.mark.parametrize("token", ["forged", None])
async def test_bad_or_missing_signature_is_refused_and_nothing_stored(
    token: str | None, http: TestClient[Any, Any], inbox: Inbox
) -> None:
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا")
    if token:
        response = await post_signed(http, INBOUND_PATH, params, token="0" * 32)
    else:
        body, headers = signed_form(PUBLIC_URL + INBOUND_PATH, params, AUTH_TOKEN)
        del headers["X-Twilio-Signature"]
        response = await http.post(INBOUND_PATH, data=body, headers=headers)
    assert response.status == 403
    assert inbox.messages == []


async def test_a_body_changed_after_signing_is_refused(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا")
    _, headers = signed_form(PUBLIC_URL.rstrip("/") + INBOUND_PATH, params, AUTH_TOKEN)
    forged, _ = signed_form("x", params | {"Body": "تم"}, AUTH_TOKEN)
    response = await http.post(INBOUND_PATH, data=forged, headers=headers)
    assert response.status == 403
    assert inbox.messages == []


async def test_json_is_refused(http: TestClient[Any, Any], inbox: Inbox) -> None:
    response = await http.post(INBOUND_PATH, json={"MessageSid": SID, "From": WA_BENEFICIARY})
    assert response.status == 415
    assert inbox.messages == []


async def test_an_oversized_body_is_refused(http: TestClient[Any, Any], inbox: Inbox) -> None:
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "ا" * 40_000)
    response = await post_signed(http, INBOUND_PATH, params)
    assert response.status == 413
    assert inbox.messages == []


async def test_missing_message_sid_is_a_bad_request(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا")
    del params["MessageSid"]
    response = await post_signed(http, INBOUND_PATH, params)
    assert response.status == 400
    assert inbox.messages == []


async def test_a_failing_receiver_makes_twilio_retry(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    inbox.failing = True
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا")
    response = await post_signed(http, INBOUND_PATH, params)
    assert response.status == 500
    assert "Response" not in await response.text()


async def test_a_busy_bot_asks_twilio_to_retry_later(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    inbox.busy = Overloaded(7)  # the engine's queue is full
    params = inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا")
    response = await post_signed(http, INBOUND_PATH, params)
    assert (response.status, response.headers.get("Retry-After")) == (503, "7")
    assert inbox.messages == []


# --- status callbacks ---


@pytest.mark.parametrize(
    ("status", "error_code", "expected"),
    [
        ("delivered", None, DeliveryReceipt("whatsapp", SID, "delivered")),
        (
            "failed",
            "63016",
            DeliveryReceipt(
                "whatsapp", SID, "failed", "63016: rejected by the platform", outside_window=True
            ),
        ),
        (
            "undelivered",
            "21610",
            DeliveryReceipt(
                "whatsapp", SID, "failed", "21610: rejected by the platform", unreachable=True
            ),
        ),
        (
            "failed",
            "63024",
            DeliveryReceipt(
                "whatsapp", SID, "failed", "63024: rejected by the platform", unreachable=True
            ),
        ),
        ("read", None, DeliveryReceipt("whatsapp", SID, "read")),
    ],
)
async def test_status_callback_becomes_a_neutral_receipt(
    status: str,
    error_code: str | None,
    expected: DeliveryReceipt,
    http: TestClient[Any, Any],
    inbox: Inbox,
) -> None:
    params = status_params(ACCOUNT_SID, SID, status, WA_BENEFICIARY, WA_BUSINESS, error_code)
    response = await post_signed(http, STATUS_PATH, params)
    assert response.status == 200
    assert inbox.statuses == [expected]


async def test_sms_status_and_unknown_statuses(http: TestClient[Any, Any], inbox: Inbox) -> None:
    sms = status_params(ACCOUNT_SID, SID, "undelivered", BENEFICIARY, SMS_SENDER, "30003")
    assert (await post_signed(http, STATUS_PATH, sms)).status == 200
    sending = status_params(ACCOUNT_SID, SID, "sending", WA_BENEFICIARY, WA_BUSINESS)
    assert (await post_signed(http, STATUS_PATH, sending)).status == 200
    assert inbox.statuses == [
        DeliveryReceipt("sms", SID, "failed", "30003: rejected by the platform")
    ]


async def test_status_callback_needs_a_signature(http: TestClient[Any, Any], inbox: Inbox) -> None:
    params = status_params(ACCOUNT_SID, SID, "delivered", WA_BENEFICIARY, WA_BUSINESS)
    response = await post_signed(http, STATUS_PATH, params, token="0" * 32)
    assert response.status == 403
    assert inbox.statuses == []


# --- sending, through the real twilio client ---

WHATSAPP = Address("whatsapp", BENEFICIARY)
SMS = Address("sms", BENEFICIARY)


def long_arabic_reply() -> str:
    line = "نود إعلامك بأن طلبك قيد الدراسة لدى لجنة البحث الاجتماعي، وسنوافيك بالقرار قريباً"
    lines = [f"{n}. {line}" for n in range(1, 41)]
    text = "\n".join(lines)
    text = text[: text.rfind("\n", 0, 3400)] + "\nختاماً، شكراً لتواصلك معنا"
    return text + "." * (3500 - len(text))


async def test_a_long_arabic_reply_goes_in_three_ordered_valid_parts(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    text = long_arabic_reply()
    assert len(text) == 3500
    sent = await channel.send(WHATSAPP, OutboundMessage(text, "ar"))
    assert [call.status for call in api.calls] == [201, 201, 201]
    assert len(api.messages) == 3
    for form in api.messages:
        assert form["To"] == WA_BENEFICIARY
        assert form["From"] == WA_BUSINESS
        assert form["StatusCallback"] == STATUS_CALLBACK
        assert len(form["Body"]) <= 1600
    bodies = api.bodies()
    assert "\n".join(bodies) == text  # cut at line breaks, in order, nothing lost
    assert sent.platform_message_id == api.calls[-1].sid
    assert sent.platform_message_id is not None
    assert sent.platform_message_id.startswith("SM")


async def test_choices_are_numbered_lines_and_sms_goes_from_the_sms_number(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    message = OutboundMessage(
        "هل البيانات صحيحة؟", "ar", (Choice("1", "نعم"), Choice("2", "لا")), inline=True
    )
    await channel.send(SMS, message)
    [form] = api.messages
    assert form["Body"] == "هل البيانات صحيحة؟\n١- نعم\n٢- لا"
    assert form["To"] == BENEFICIARY
    assert form["From"] == SMS_SENDER


async def test_a_template_goes_as_content_sid_and_variables(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    template = TemplateRef("status_changed", {"1": "REQ-000123", "2": "مقبول"})
    await channel.send(WHATSAPP, OutboundMessage("", "ar", template=template))
    [form] = api.messages
    assert form["ContentSid"] == TEMPLATE_SID
    assert json.loads(form["ContentVariables"]) == {"1": "REQ-000123", "2": "مقبول"}
    assert "Body" not in form


async def test_a_template_without_approved_content_is_not_sent(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    template = TemplateRef("checkin", {})
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("", "ar", template=template))
    assert raised.value.permanent
    assert "checkin" in raised.value.reason
    assert api.calls == []


@pytest.mark.parametrize(
    ("status", "code", "permanent", "unreachable"),
    [
        (400, 21610, True, True),
        (400, 21211, True, True),
        (400, 21614, True, True),
        (400, 21408, True, True),
        (400, 63016, True, False),
        (429, 63018, False, False),
        (500, None, False, False),
        (503, 20503, False, False),
        (400, 21606, True, False),
    ],
)
async def test_refusals_become_delivery_errors(
    status: int,
    code: int | None,
    permanent: bool,
    unreachable: bool,
    channel: TwilioChannel,
    api: FakeTwilio,
) -> None:
    api.fail(status=status, code=code, message=f"The 'To' number {BENEFICIARY} is not valid")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("السلام عليكم", "ar"))
    error = raised.value
    assert (error.permanent, error.unreachable) == (permanent, unreachable)
    assert error.code == str(code or status)
    assert BENEFICIARY not in error.reason and "السلام" not in error.reason
    assert BENEFICIARY not in str(error) and error.__suppress_context__
    if code == 63016:
        assert "template" in error.reason


async def test_throttling_tells_when_to_retry(channel: TwilioChannel, api: FakeTwilio) -> None:
    api.fail(status=429, code=20429, retry_after=7)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert raised.value.retry_after == 7
    assert not raised.value.permanent
    await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))  # the next call goes through
    assert api.bodies() == ["مرحبا"]


async def test_retry_after_may_be_an_http_date(channel: TwilioChannel, api: FakeTwilio) -> None:
    in_two_minutes = format_datetime(datetime.now(UTC) + timedelta(minutes=2), usegmt=True)
    api.fail(status=429, code=20429, retry_after=in_two_minutes)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert raised.value.retry_after is not None and 60 < raised.value.retry_after <= 120
    api.fail(status=429, code=20429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # past
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert raised.value.retry_after == 0
    api.fail(status=429, code=20429, retry_after="soon")  # unreadable: the usual back-off
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert raised.value.retry_after is None and not raised.value.permanent


async def test_an_unreachable_api_is_a_transient_error(inbox: Inbox) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    twilio = make_channel(f"http://127.0.0.1:{port}", inbox)
    await twilio.start()
    try:
        with pytest.raises(DeliveryError) as raised:
            await twilio.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    finally:
        await twilio.stop()
    assert not raised.value.permanent


# --- media ---


async def test_fetch_media_follows_the_redirect_with_credentials(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 100
    url = api.add_media("ME1", photo, "image/jpeg")
    assert await channel.fetch_media(Media(url, "image/jpeg")) == photo
    first, second = api.media_requests
    assert first.path == "/media/ME1" and first.authorized
    assert second.path == "/cdn/ME1"


@pytest.mark.parametrize("chunked", [False, True])
async def test_fetch_media_refuses_an_oversized_file(
    chunked: bool, channel: TwilioChannel, api: FakeTwilio
) -> None:
    url = api.add_media("big", b"\0" * (MAX_MEDIA_BYTES + 1), "application/pdf", chunked=chunked)
    with pytest.raises(MediaError, match="larger"):
        await channel.fetch_media(Media(url, "application/pdf"))


async def test_fetch_media_of_a_missing_file_or_without_credentials_fails(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    with pytest.raises(MediaError, match="404"):
        await channel.fetch_media(Media(f"{api.base_url}/media/nothing", "image/jpeg"))
    with pytest.raises(MediaError, match="403"):
        await channel.fetch_media(Media(f"{api.base_url}/cdn/nothing", "image/jpeg"))


# --- splitting ---


def test_split_body_keeps_short_text_whole_and_cuts_long_text_within_the_limit() -> None:
    assert split_body("مرحبا") == ["مرحبا"]
    assert split_body("  \n ") == []
    words = " ".join(["كلمة"] * 1000)  # no line break at all: cut at spaces
    parts = split_body(words)
    assert all(len(p) <= 1600 for p in parts)
    assert " ".join(parts) == words
    emoji = "🙂" * 1000  # two UTF-16 units each, as Twilio counts
    assert [len(p) for p in split_body(emoji)] == [800, 200]
