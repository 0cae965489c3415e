"""The Twilio channel at its edges: webhooks Twilio would never sign as they are, fields
that are not what they claim, and sends that cannot go.

Through the channel's routes (signed as Twilio signs) and the real twilio client against
the stand-in; nothing here reaches a flow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fakes.twilio_api import FakeTwilio, inbound_params, status_params
from test_handlers_twilio import (
    ACCOUNT_SID,
    BENEFICIARY,
    SMS,
    TEMPLATE_SID,
    WA_BENEFICIARY,
    WA_BUSINESS,
    WHATSAPP,
    Inbox,
    api,
    channel,
    http,
    inbox,
    post_signed,
)

from bot.config import Settings
from bot.server import Tawasul
from flows.types import Address, OutboundMessage
from handlers.base import DeliveryError, MediaError
from handlers.twilio import INBOUND_PATH, MAX_WEBHOOK_FIELDS, STATUS_PATH, TwilioChannel
from storage.db import Database

__all__ = ["api", "channel", "http", "inbox"]  # the fixtures, shared with the channel's tests

SID = "SM" + "7e" * 16


def message(**fields: str) -> dict[str, str]:
    return inbound_params(ACCOUNT_SID, WA_BENEFICIARY, WA_BUSINESS, "مرحبا", message_sid=SID) | (
        fields
    )


# --- inbound ---


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"MessageSid": "12" + "7e" * 16}, "MessageSid is not a Twilio id"),
        ({"MessageSid": "SM-" + "7e" * 16}, "MessageSid is not a Twilio id"),
        ({"From": "whatsapp:abc"}, "From is not a phone address"),
        ({"From": "+96655"}, "From is not a phone address"),
    ],
)
async def test_an_inbound_webhook_with_a_field_that_is_not_what_it_claims_is_400(
    http: TestClient[Any, Any], inbox: Inbox, fields: dict[str, str], why: str
) -> None:
    response = await post_signed(http, INBOUND_PATH, message(**fields))
    assert response.status == 400
    assert why in await response.text()
    assert inbox.messages == []


async def test_a_form_that_cannot_be_read_is_400_before_its_signature(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (
        b"Body=\xff\xfe&From=whatsapp%3A%2B966551234567",  # not UTF-8
        "&".join(f"f{n}=x" for n in range(MAX_WEBHOOK_FIELDS + 1)).encode(),
    ):
        response = await http.post(INBOUND_PATH, data=body, headers=form)
        assert response.status == 400
        assert await response.text() == "undecodable form"
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("nan", "39.17"), ("21.5", "-inf"), ("90.5", "39.17"), ("21.5", "181"), ("شمال", "1")],
)
async def test_a_location_that_is_no_place_on_earth_arrives_without_one(
    http: TestClient[Any, Any], inbox: Inbox, latitude: str, longitude: str
) -> None:
    fields = {"MessageType": "location", "Latitude": latitude, "Longitude": longitude}
    assert (await post_signed(http, INBOUND_PATH, message(**fields))).status == 200
    [arrived] = inbox.messages
    assert arrived.location is None and arrived.platform_message_id == SID


async def test_media_not_on_twilios_host_arrives_but_is_never_fetched(
    http: TestClient[Any, Any], inbox: Inbox, channel: TwilioChannel, api: FakeTwilio
) -> None:
    good = api.add_media("id.jpg", b"\xff\xd8 photo", "image/jpeg")
    elsewhere = [
        "file:///etc/passwd",
        "https://api.twilio.com:99999/x",  # no such port
        "https:///no-host",
        "http://169.254.169.254/latest/meta-data/",
    ]
    fields = {f"MediaUrl{n}": url for n, url in enumerate(elsewhere)}
    fields |= {"NumMedia": "6", "MediaUrl5": good, "MediaContentType5": "image/jpeg"}
    # MediaUrl4 is missing although NumMedia counts it: left out.
    assert (await post_signed(http, INBOUND_PATH, message(**fields))).status == 200
    [arrived] = inbox.messages
    assert [m.url for m in arrived.media] == [*elsewhere, good]
    for media in arrived.media[:-1]:
        with pytest.raises(MediaError, match="not on the Twilio API's host"):
            await channel.fetch_media(media)
    assert api.media_requests == []  # not even Twilio was asked for them
    assert await channel.fetch_media(arrived.media[-1]) == b"\xff\xd8 photo"


# --- status callbacks ---


@pytest.mark.parametrize(
    ("drop", "fields", "why"),
    [
        ("MessageSid", {"SmsSid": ""}, "MessageSid and MessageStatus are required"),
        ("MessageStatus", {}, "MessageSid and MessageStatus are required"),
        (None, {"MessageSid": "not-a-sid"}, "MessageSid is not a Twilio id"),
    ],
)
async def test_a_status_callback_without_its_message_or_status_is_400(
    http: TestClient[Any, Any], inbox: Inbox, drop: str | None, fields: dict[str, str], why: str
) -> None:
    params = status_params(ACCOUNT_SID, SID, "delivered", WA_BENEFICIARY, WA_BUSINESS) | fields
    if drop is not None:
        del params[drop]
    response = await post_signed(http, STATUS_PATH, params)
    assert response.status == 400
    assert await response.text() == why
    assert inbox.statuses == []


async def test_an_error_code_that_is_not_a_number_is_not_kept(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    params = status_params(ACCOUNT_SID, SID, "failed", WA_BENEFICIARY, WA_BUSINESS, "63016")
    params["ErrorCode"] = "<script>"
    assert (await post_signed(http, STATUS_PATH, params)).status == 200
    [receipt] = inbox.statuses
    assert receipt.status == "failed" and "<script>" not in (receipt.reason or "")
    assert not receipt.outside_window  # 63016 would have meant that; the code was not kept


# --- sending ---


async def test_what_cannot_go_is_refused_for_good(channel: TwilioChannel, api: FakeTwilio) -> None:
    for address, outbound in (
        (Address("telegram", "5550001"), OutboundMessage("مرحبا", "ar")),
        (WHATSAPP, OutboundMessage("  \n ", "ar")),
        (SMS, OutboundMessage("", "ar")),
    ):
        with pytest.raises(DeliveryError) as raised:
            await channel.send(address, outbound)
        assert raised.value.permanent, address
    assert api.calls == []


async def test_an_answer_twilio_never_gives_is_tried_again(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    api.fail(status=302, message="Found")
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert not raised.value.permanent
    assert "unexpected answer (HTTP 302)" in raised.value.reason


async def test_a_retry_after_date_without_a_zone_is_read_as_utc(
    channel: TwilioChannel, api: FakeTwilio
) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    api.fail(status=429, code=20429, retry_after=later.strftime("%a, %d %b %Y %H:%M:%S"))
    with pytest.raises(DeliveryError) as raised:
        await channel.send(WHATSAPP, OutboundMessage("مرحبا", "ar"))
    assert raised.value.retry_after is not None and 240 < raised.value.retry_after <= 300


def test_sms_has_no_window_and_no_templates_whatsapp_has_its_own(
    channel: TwilioChannel,
) -> None:
    whatsapp, sms = channel.capabilities("whatsapp"), channel.capabilities("sms")
    assert whatsapp.window == timedelta(hours=24) and whatsapp.templates == {"status_changed"}
    assert sms.window is None and sms.templates == frozenset()
    assert whatsapp.per_second == sms.per_second  # one sender's rate for both


# --- configuration ---


def test_numbers_that_are_not_e164_are_refused_at_once() -> None:
    for from_number, sms_from in (("0550000000", None), ("+966550000000", "whatsapp:1234")):
        with pytest.raises(ValueError, match=r"E\.164"):
            TwilioChannel(
                ACCOUNT_SID,
                "9c" * 16,
                from_number,
                public_url="https://bot.example.org",
                sms_from_number=sms_from,
                templates={"status_changed": TEMPLATE_SID},
            )


async def test_whatsapp_half_configured_is_skipped_with_what_is_missing(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.twilio")
    settings = Settings(
        server={"media_dir": str(tmp_path / "media")},
        whatsapp={"account_sid": ACCOUNT_SID, "from_number": BENEFICIARY},
    )
    tawasul = Tawasul(settings, database)
    assert "whatsapp" not in tawasul.channels and "sms" not in tawasul.channels
    assert "WhatsApp and SMS skipped: whatsapp.auth_token, server.public_url not set" in [
        r.getMessage() for r in caplog.records
    ]
