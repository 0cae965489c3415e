"""The WhatsApp Cloud API channel at its edges: what Meta might send that is not usable,
notifications too large or of the wrong shape, and a Graph API that answers oddly.

Each case names what the channel must do with it; nothing here reaches a flow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fakes.meta_api import contact, inbound, notification, signed_notification, status
from test_handlers_whatsapp_cloud import (
    APP_SECRET,
    BENEFICIARY,
    GRAPH,
    NOW,
    PHONE_NUMBER_ID,
    WA_ID,
    Inbox,
    api,
    channel,
    http,
    inbox,
    make_channel,
    post,
)

from flows.types import Media, OutboundMessage, TemplateRef
from handlers.base import MAX_MEDIA_BYTES, DeliveryError, DeliveryReceipt, MediaError
from handlers.whatsapp_cloud import (
    CHANNEL,
    MAX_WEBHOOK_BYTES,
    WEBHOOK_PATH,
    WhatsAppCloudChannel,
    template_message,
    translate,
)

__all__ = ["api", "channel", "http", "inbox"]  # the fixtures, shared with the channel's tests

# --- what arrives: usable or not ---


def one(raw: dict[str, Any]) -> Any:
    """The neutral message of one raw entry of ``messages`` (None when skipped)."""
    payload = notification(PHONE_NUMBER_ID, contacts=[contact(WA_ID)], messages=[raw])
    messages, _ = translate(payload, PHONE_NUMBER_ID, NOW, GRAPH)
    return messages[0] if messages else None


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [
        ("nan", 46.6),
        (24.7, "inf"),
        (91.0, 46.6),
        (24.7, -180.5),
        ("الرياض", 46.6),
        (None, 46.6),
        (10**400, 46.6),  # JSON's integers have no limit; a float has
    ],
)
def test_a_location_that_is_no_place_on_earth_arrives_without_one(
    latitude: Any, longitude: Any
) -> None:
    message = one(inbound(WA_ID, "wamid.P", "location", latitude=latitude, longitude=longitude))
    assert message is not None and message.location is None  # the message still counts
    assert message.platform_message_id == "wamid.P"


def test_an_attachment_with_no_usable_id_arrives_without_media() -> None:
    for media_id in ("", "../../etc/passwd", "x" * 129, 12345):
        message = one(inbound(WA_ID, "wamid.I", "image", id=media_id, mime_type="image/jpeg"))
        assert message is not None and message.media == (), media_id
    kept = one(inbound(WA_ID, "wamid.J", "image", id="98_a-b.C", mime_type="image/png; x=1"))
    assert kept.media == (Media(f"{GRAPH}/98_a-b.C", "image/png"),)


def test_a_reply_tap_without_an_id_is_a_message_with_no_payload() -> None:
    message = one(
        inbound(WA_ID, "wamid.B", "interactive", type="button_reply", button_reply={"title": "٢"})
    )
    assert (message.text, message.payload) == ("", None)


def test_changes_that_are_not_messages_and_unknown_receipts_are_left_out() -> None:
    payload = notification(PHONE_NUMBER_ID, statuses=[status("wamid.1", "delivered", WA_ID)])
    payload["entry"][0]["changes"].insert(
        0, {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
    )
    payload["entry"][0]["changes"][1]["value"]["statuses"] += [
        status("wamid.2", "deleted", WA_ID),  # not a status we know
        {"status": "read"},  # no message id
        "not an object",
    ]
    messages, receipts = translate(payload, PHONE_NUMBER_ID, NOW, GRAPH)
    assert messages == []
    assert receipts == [DeliveryReceipt(CHANNEL, "wamid.1", "delivered")]


async def test_a_notification_over_the_size_limit_is_413_before_its_signature(
    http: TestClient[Any, Any], inbox: Inbox
) -> None:
    padding = "x" * (MAX_WEBHOOK_BYTES + 1)
    payload = notification(PHONE_NUMBER_ID, messages=[inbound(WA_ID, "wamid.Z", body=padding)])
    body, headers = signed_notification(payload, APP_SECRET)
    assert (await http.post(WEBHOOK_PATH, data=body, headers=headers)).status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    assert (await http.post(WEBHOOK_PATH, data=chunks(), headers=headers)).status == 413
    assert inbox.messages == []


async def test_receipts_are_acknowledged_and_dropped_without_a_receiver(
    inbox: Inbox, api: Any
) -> None:
    cloud = WhatsAppCloudChannel(
        PHONE_NUMBER_ID, "EAAG" + "x1" * 20, APP_SECRET, "verify", api_base_url=api.base_url
    )
    app = web.Application()
    app.add_routes(cloud.routes(inbox.receive))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        payload = notification(
            PHONE_NUMBER_ID,
            messages=[inbound(WA_ID, "wamid.M", body="مرحبا")],
            statuses=[status("wamid.1", "read", WA_ID)],
        )
        assert (await post(client, payload)).status == 200
    assert [m.platform_message_id for m in inbox.messages] == ["wamid.M"]
    assert inbox.receipts == []


def test_a_phone_number_id_that_is_not_numeric_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="phone_number_id"):
        WhatsAppCloudChannel("my-number", "EAAG" + "x1" * 20, APP_SECRET, "verify")


# --- what goes out ---


def test_a_templates_named_variables_go_by_name_and_numbered_ones_by_position() -> None:
    named = template_message("status_update", "ar", {"reference": "REQ-000001", "status": "مقبول"})
    assert named["template"]["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "reference", "text": "REQ-000001"},
                {"type": "text", "parameter_name": "status", "text": "مقبول"},
            ],
        }
    ]
    numbered = template_message("status_update", "en", {"10": "last", "2": "second", "1": "first"})
    texts = [p["text"] for p in numbered["template"]["components"][0]["parameters"]]
    assert texts == ["first", "second", "last"]  # 10 after 2, not before it
    assert "components" not in template_message("status_update", "ar", {})["template"]


async def test_an_empty_message_is_refused_for_good(channel: WhatsAppCloudChannel) -> None:
    with pytest.raises(DeliveryError) as raised:
        await channel.send(BENEFICIARY, OutboundMessage("   ", "ar"))
    assert raised.value.permanent


@pytest.fixture
async def odd_graph() -> AsyncIterator[tuple[str, list[str]]]:
    """A Graph API that answers oddly: its base URL, and the paths it was asked for."""
    asked: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        path = request.path
        asked.append(path)
        base = f"http://{request.host}"
        if path.endswith(f"/{PHONE_NUMBER_ID}/messages"):
            return web.json_response({"messaging_product": "whatsapp"})  # no message id
        if path.endswith("/messages"):  # another number: a proxy's page, not the API
            return web.Response(text="<html>bad gateway</html>", content_type="text/html")
        lookups: dict[str, Any] = {
            "/v23.0/101": {"id": "101"},  # no url
            "/v23.0/102": {"url": f"{base}/gone"},
            "/v23.0/103": {"url": f"{base}/declared-too-large"},
            "/v23.0/104": {"url": f"{base}/streamed-too-large"},
            "/v23.0/105": {"url": "ftp://files.example.org/x"},
        }
        if path in lookups:
            return web.json_response(lookups[path])
        if path == "/declared-too-large":
            response = web.StreamResponse(headers={"Content-Length": str(MAX_MEDIA_BYTES + 1)})
            await response.prepare(request)
            return response
        if path == "/streamed-too-large":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            block = b"\xff" * (1024 * 1024)
            for _ in range(MAX_MEDIA_BYTES // len(block) + 1):
                await response.write(block)
            await response.write_eof()
            return response
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), asked


async def test_media_the_graph_api_cannot_give_is_refused(
    odd_graph: tuple[str, list[str]], inbox: Inbox
) -> None:
    base, asked = odd_graph
    cloud = make_channel(base, inbox)
    await cloud.start()
    try:
        for media_id, why in (
            ("101", "media lookup gave no URL"),
            ("102", "media fetch refused: HTTP 404"),
            ("103", f"media larger than {MAX_MEDIA_BYTES} bytes"),
            ("104", f"media larger than {MAX_MEDIA_BYTES} bytes"),
            ("105", "media lookup gave no URL"),
        ):
            with pytest.raises(MediaError) as raised:
                await cloud.fetch_media(Media(f"{base}/v23.0/{media_id}", "image/jpeg"))
            assert str(raised.value) == why, media_id
    finally:
        await cloud.stop()
    assert "/gone" in asked and "ftp" not in "".join(asked)


async def test_a_send_answered_without_a_message_id_or_without_json(
    odd_graph: tuple[str, list[str]], inbox: Inbox
) -> None:
    base, _asked = odd_graph
    cloud = make_channel(base, inbox)
    elsewhere = WhatsAppCloudChannel("999", "EAAG" + "x1" * 20, APP_SECRET, "v", api_base_url=base)
    await cloud.start()
    await elsewhere.start()
    try:
        sent = await cloud.send(BENEFICIARY, OutboundMessage("مرحباً", "ar"))
        assert sent.platform_message_id is None  # taken, but no id to match receipts with
        ref = TemplateRef("status_update", {"1": "REQ-000001"})
        sent = await cloud.send(BENEFICIARY, OutboundMessage("", "ar", template=ref))
        assert sent.platform_message_id is None
        with pytest.raises(DeliveryError) as raised:
            await elsewhere.send(BENEFICIARY, OutboundMessage("مرحباً", "ar"))
    finally:
        await cloud.stop()
        await elsewhere.stop()
    error = raised.value
    assert not error.permanent  # tried again later
    assert error.reason == "whatsapp cloud HTTP 200: unexpected answer (HTTP 200)"
