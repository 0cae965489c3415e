"""The WhatsApp Cloud API channel (Meta): signed webhooks in, the Graph API's messages out."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, Final

import aiohttp
from aiohttp import web

from flows.render import as_plain_text, split_text
from flows.types import (
    LANGUAGES,
    Address,
    Choice,
    InboundMessage,
    Location,
    Media,
    OutboundMessage,
)
from handlers.base import (
    MAX_MEDIA_BYTES,
    BadBody,
    BeforePart,
    Capabilities,
    ChannelSetup,
    ChannelSpec,
    DeliveryError,
    DeliveryReceipt,
    MediaError,
    ReceiptReceiver,
    Receiver,
    Sent,
    parse_json,
    store,
)

logger = logging.getLogger(__name__)

CHANNEL: Final = "whatsapp_cloud"
WEBHOOK_PATH: Final = "/webhooks/whatsapp-cloud"
GRAPH_API: Final = "https://graph.facebook.com"
API_VERSION: Final = "v23.0"
# Meta batches several messages and statuses into one webhook; a megabyte is far beyond
# any real one.
MAX_WEBHOOK_BYTES: Final = 1024 * 1024
API_TIMEOUT_SECONDS: Final = 15.0
MEDIA_TIMEOUT_SECONDS: Final = 10.0

# Meta's limits (the OpenAPI description and the messages reference).
MAX_TEXT_CHARS: Final = 4096
MAX_INTERACTIVE_BODY_CHARS: Final = 1024
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE_CHARS: Final = 20
MAX_BUTTON_ID_CHARS: Final = 256
MAX_LIST_ROWS: Final = 10
MAX_ROW_TITLE_CHARS: Final = 24
MAX_ROW_ID_CHARS: Final = 200
MAX_LIST_BUTTON_CHARS: Final = 20

STATUSES: Final = frozenset({"sent", "delivered", "read", "failed"})
MEDIA_TYPES: Final = ("image", "document", "audio", "video", "sticker")
# The share of the number's throughput the outbox uses, so that replies always have room.
RATE_SHARE: Final = 0.8
CAPABILITIES: Final = Capabilities(
    media=frozenset(MEDIA_TYPES),
    buttons=MAX_LIST_ROWS,
    button_label_chars=MAX_ROW_TITLE_CHARS,
    text_limit=MAX_TEXT_CHARS,
    window=timedelta(hours=24),
    call_seconds=API_TIMEOUT_SECONDS,
    receipts=True,
    phone_numbers=True,
)

_WA_ID = re.compile(r"[1-9]\d{5,14}")
_E164 = re.compile(r"\+[1-9]\d{5,14}")
_MEDIA_ID = re.compile(r"[0-9A-Za-z_.-]{1,128}")

# The Graph API's error codes we act on; reasons are their meaning, never Meta's message
# (it may quote the number).
_OUTSIDE_WINDOW: Final = {131047: "more than 24 hours since the beneficiary wrote"}
_UNREACHABLE: Final[Mapping[int, str]] = {
    131026: "undeliverable (not on WhatsApp, or terms not accepted)",
    131021: "the recipient is the sender",
}
_THROTTLED: Final[Mapping[int, str]] = {
    4: "too many API calls",
    80007: "the business account's rate limit",
    130429: "the number's throughput limit",
    131048: "the spam rate limit",
    131056: "too many messages to this beneficiary in a short time",
}
_FOR_NOW: Final[Mapping[int, str]] = {
    1: "unknown API error",
    2: "the API is unavailable",
    131000: "something went wrong at Meta",
    131016: "the service is unavailable",
}
_REFUSED: Final[Mapping[int, str]] = {
    10: "permission denied",
    190: "the access token expired or is invalid",
    131008: "a required parameter is missing",
    131009: "a parameter is invalid",
    131049: "Meta chose not to deliver it (engagement)",
    131050: "the beneficiary stopped marketing messages",
    131051: "unsupported message type",
    131052: "the media could not be downloaded",
    132000: "the template's parameters do not match",
    132001: "the template does not exist in this language",
    132012: "the template's parameter format does not match",
    133010: "the phone number is not registered",
}


def _user_agent() -> str:
    # Meta's description asks for ``name/1.2.3``; the package's own version says which.
    try:
        version = metadata.version("tawasul")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return f"Tawasul/{version}" if re.fullmatch(r"\d+\.\d+\.\d+", version) else "Tawasul/0.0.0"


USER_AGENT: Final = _user_agent()


class WhatsAppCloudChannel:
    """WhatsApp through Meta's Cloud API, for one business phone number.

    Args:
        phone_number_id: the number's id in the Graph API (not the number itself).
        access_token: a system user's token with ``whatsapp_business_messaging``.
        app_secret: the Meta app's secret; it signs every webhook.
        verify_token: what we told Meta to send when it checks the webhook.
        api_base_url: the Graph API's base (a local fake in tests, a proxy in production).
        api_version: the Graph API version in every path.
        on_status: given a neutral receipt for each status webhook.
        templates: approved message templates, template kind -> template name.
        list_button: the label of the button that opens a list, by language.
        messages_per_second: the number's throughput (the outbox keeps to 80% of it).
    """

    names: tuple[str, ...] = (CHANNEL,)

    def __init__(
        self,
        phone_number_id: str,
        access_token: str,
        app_secret: str,
        verify_token: str,
        *,
        api_base_url: str = GRAPH_API,
        api_version: str = API_VERSION,
        on_status: ReceiptReceiver | None = None,
        templates: Mapping[str, str] | None = None,
        list_button: Mapping[str, str] | None = None,
        messages_per_second: float = 80.0,
    ) -> None:
        if not phone_number_id.isdigit():
            raise ValueError("phone_number_id must be the number's numeric id in the Graph API")
        self._phone_number_id = phone_number_id
        self._access_token = access_token
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token
        self._graph = f"{api_base_url.rstrip('/')}/{api_version.strip('/')}"
        self._on_status = on_status
        self._templates = dict(templates or {})
        self._list_button = {
            language: label
            for language, label in (list_button or {}).items()
            if 0 < len(label) <= MAX_LIST_BUTTON_CHARS
        }
        self._session: aiohttp.ClientSession | None = None
        self._capabilities = replace(
            CAPABILITIES,
            templates=frozenset(self._templates),
            per_second=RATE_SHARE * messages_per_second,
        )

    def capabilities(self, name: str) -> Capabilities:
        return self._capabilities

    @property
    def messages_url(self) -> str:
        return f"{self._graph}/{self._phone_number_id}/messages"

    # --- lifecycle ---

    async def start(self) -> None:
        """Open the one HTTP session used for sends and media downloads."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS),
            )

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # --- webhooks ---

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        """Meta's subscription check (GET) and its signed notifications (POST)."""

        async def verify(request: web.Request) -> web.StreamResponse:
            query = request.query
            token = query.get("hub.verify_token", "")
            challenge = query.get("hub.challenge", "")
            if (
                query.get("hub.mode") != "subscribe"
                or not challenge
                or not hmac.compare_digest(token.encode(), self._verify_token.encode())
            ):
                raise web.HTTPForbidden(text="verification refused")
            return web.Response(text=challenge, content_type="text/plain")

        async def notify(request: web.Request) -> web.StreamResponse:
            body = await self._verified_body(request)
            try:
                payload = parse_json(body)
            except BadBody as error:
                raise web.HTTPBadRequest(text=error.reason) from None
            if not isinstance(payload, dict):
                raise web.HTTPBadRequest(text="a JSON object is expected")
            try:
                messages, receipts = translate(
                    payload, self._phone_number_id, datetime.now(UTC), self._graph
                )
            except (AttributeError, TypeError, ValueError, KeyError, OverflowError):
                # Fields of the wrong type: nothing Meta sends, so nothing to store.
                raise web.HTTPBadRequest(text="malformed notification") from None
            for message in messages:
                # Anything but 200 makes Meta send the whole batch again; the messages
                # already stored are then dropped as redeliveries.
                await store(receive(message), f"inbound {message.platform_message_id}")
            for receipt in receipts:
                if self._on_status is None:
                    break
                await store(self._on_status(receipt), f"status of {receipt.platform_message_id}")
            return web.Response(text="ok")

        return [web.get(WEBHOOK_PATH, verify), web.post(WEBHOOK_PATH, notify)]

    async def _verified_body(self, request: web.Request) -> bytes:
        """The raw body of a notification Meta signed; an HTTP error otherwise."""
        length = request.content_length
        if length is not None and length > MAX_WEBHOOK_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_WEBHOOK_BYTES, length)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_WEBHOOK_BYTES:
                raise web.HTTPRequestEntityTooLarge(MAX_WEBHOOK_BYTES, len(body))
        signature = request.headers.get("X-Hub-Signature-256", "")
        expected = "sha256=" + hmac.new(self._app_secret, bytes(body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise web.HTTPForbidden(text="invalid signature")
        return bytes(body)

    # --- sending ---

    async def send(
        self,
        address: Address,
        message: OutboundMessage,
        *,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Sent:
        """One messages call per part, in order, from ``first_part`` on (see
        ``Channel.send``): a template, an interactive message, or the text in parts."""
        if address.channel != CHANNEL or not _E164.fullmatch(address.user_id):
            raise DeliveryError(f"address on {address.channel} is not ours", permanent=True)
        to = address.user_id.removeprefix("+")
        parts = [
            {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **part}
            for part in self.render(message)
        ]
        if not parts:
            raise DeliveryError("empty message", permanent=True)
        wamid: str | None = None
        for index, part in enumerate(parts):
            if index < first_part:
                continue
            if index > first_part and before_part is not None:
                await before_part(index)
            wamid = await self._post(part)
        return Sent(wamid)

    def render(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """The message as the Graph API's message objects (without the recipient)."""
        if message.template is not None:
            kind = message.template.kind
            name = self._templates.get(kind)
            if name is None:
                raise DeliveryError(f"no approved template for kind {kind}", permanent=True)
            return [template_message(name, message.language, message.template.variables)]
        interactive = interactive_message(
            message, self._list_button.get(message.language) or self._list_button.get("ar")
        )
        if interactive is not None:
            return [interactive]
        return [
            {"type": "text", "text": {"body": part, "preview_url": False}}
            for part in split_text(as_plain_text(message), MAX_TEXT_CHARS)
        ]

    async def _post(self, part: Mapping[str, Any]) -> str | None:
        session = self._require_session()
        try:
            async with session.post(
                self.messages_url, json=part, headers=self._authorization()
            ) as answer:
                status = answer.status
                try:
                    body = await answer.json(content_type=None)
                except ValueError:
                    body = None
                retry_after = _retry_after(answer.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"graph API not reachable: {type(exc).__name__}") from None
        if status != 200 or not isinstance(body, dict) or "error" in body:
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise delivery_error(status, code if isinstance(code, int) else None, retry_after)
        sent = body.get("messages")
        if isinstance(sent, list) and sent and isinstance(sent[0], dict):
            wamid = sent[0].get("id")
            return wamid if isinstance(wamid, str) else None
        return None

    # --- media ---

    async def fetch_media(self, media: Media) -> bytes:
        """The attachment: its id gives a short-lived URL, fetched with the same token."""
        if not media.url.startswith(self._graph + "/"):
            # Our token goes to Meta's API only.
            raise MediaError("not a media reference of this channel")
        session = self._require_session()
        timeout = aiohttp.ClientTimeout(total=MEDIA_TIMEOUT_SECONDS)
        try:
            async with session.get(
                media.url,
                params={"phone_number_id": self._phone_number_id},
                headers=self._authorization(),
                timeout=timeout,
            ) as answer:
                if answer.status != 200:
                    raise MediaError(f"media lookup refused: HTTP {answer.status}")
                found = await answer.json(content_type=None)
            url = found.get("url") if isinstance(found, dict) else None
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise MediaError("media lookup gave no URL")
            size = _int_or_none(found.get("file_size"))
            if size is not None and size > MAX_MEDIA_BYTES:
                raise MediaError(f"media larger than {MAX_MEDIA_BYTES} bytes")
            async with session.get(
                url, headers=self._authorization(), timeout=timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise MediaError(f"media fetch refused: HTTP {response.status}")
                length = response.content_length
                if length is not None and length > MAX_MEDIA_BYTES:
                    raise MediaError(f"media larger than {MAX_MEDIA_BYTES} bytes")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_MEDIA_BYTES:
                        raise MediaError(f"media larger than {MAX_MEDIA_BYTES} bytes")
                return bytes(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise MediaError(f"media fetch failed: {type(exc).__name__}") from None

    def _authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access_token}"}

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("WhatsAppCloudChannel.start() must be awaited first")
        return self._session


# --- translation, pure ---


@dataclass(frozen=True, slots=True)
class _Media:
    kind: str
    media_id: str
    mime_type: str
    filename: str | None
    caption: str


def translate(
    payload: Mapping[str, Any], phone_number_id: str, now: datetime, graph: str = ""
) -> tuple[list[InboundMessage], list[DeliveryReceipt]]:
    """The neutral messages and receipts of one notification, for our number only.

    Anything malformed in one message skips that message, not the batch: the rest of
    what Meta sent is still taken. ``graph`` is the API base media references are under.
    """
    messages: list[InboundMessage] = []
    receipts: list[DeliveryReceipt] = []
    if payload.get("object") != "whatsapp_business_account":
        return messages, receipts
    for change in _changes(payload):
        value = change.get("value")
        if change.get("field") != "messages" or not isinstance(value, dict):
            continue
        metadata_ = value.get("metadata")
        if not isinstance(metadata_, dict) or metadata_.get("phone_number_id") != phone_number_id:
            continue  # another number of the same app
        for raw in _dicts(value.get("messages")):
            message = inbound_message(raw, now, graph)
            if message is not None:
                messages.append(message)
        for raw in _dicts(value.get("statuses")):
            receipt = delivery_receipt(raw)
            if receipt is not None:
                receipts.append(receipt)
    return messages, receipts


def inbound_message(raw: Mapping[str, Any], now: datetime, graph: str) -> InboundMessage | None:
    """The neutral message of one entry of ``messages``; None for what is not one
    (reactions, system notices) or is malformed."""
    wamid, sender, kind = raw.get("id"), raw.get("from"), raw.get("type")
    if not isinstance(wamid, str) or not wamid or not isinstance(sender, str):
        return None
    if not _WA_ID.fullmatch(sender) or kind in ("reaction", "system"):
        return None
    text, payload = "", None
    media: tuple[Media, ...] = ()
    location = None
    body = raw.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        text = _str(body.get("body"))
    elif kind == "interactive":
        reply = body.get(_str(body.get("type")))
        if isinstance(reply, dict) and _str(reply.get("id")):
            payload = _str(reply.get("id"))
            text = _str(reply.get("title")) or payload
    elif kind == "button":  # a template's quick-reply button
        payload = _str(body.get("payload")) or None
        text = _str(body.get("text")) or (payload or "")
    elif kind in MEDIA_TYPES:
        found = _media(kind, body)
        if found is not None:
            media = (
                Media(
                    url=f"{graph}/{found.media_id}",
                    content_type=found.mime_type,
                    filename=found.filename,
                ),
            )
            text = found.caption
    elif kind == "location":
        location = _location(body)
    return InboundMessage(
        address=Address(CHANNEL, "+" + sender),
        received_at=now,
        text=text,
        payload=payload,
        media=media,
        platform_message_id=wamid,
        location=location,
    )


def delivery_receipt(raw: Mapping[str, Any]) -> DeliveryReceipt | None:
    """The neutral receipt of one entry of ``statuses``; None when malformed."""
    wamid, status = raw.get("id"), raw.get("status")
    if not isinstance(wamid, str) or not wamid or status not in STATUSES:
        return None
    if status != "failed":
        return DeliveryReceipt(CHANNEL, wamid, str(status))
    errors = _dicts(raw.get("errors"))
    code = errors[0].get("code") if errors else None
    error = delivery_error(400, code if isinstance(code, int) else None, None)
    return DeliveryReceipt(
        CHANNEL,
        wamid,
        "failed",
        reason=error.reason,
        unreachable=error.unreachable,
        outside_window=error.outside_window,
    )


def delivery_error(status: int, code: int | None, retry_after: float | None) -> DeliveryError:
    """What a refused call (or a failed status) means for the outbox."""
    label = f"whatsapp cloud {code}" if code is not None else f"whatsapp cloud HTTP {status}"
    code_text = str(code) if code is not None else None
    if code in _OUTSIDE_WINDOW:
        return DeliveryError(
            f"{label}: outside the 24-hour window; an approved template is needed",
            permanent=True,
            outside_window=True,
            code=code_text,
        )
    if code is not None and code in _UNREACHABLE:
        return DeliveryError(f"{label}: {_UNREACHABLE[code]}", unreachable=True, code=code_text)
    if (code is not None and code in _THROTTLED) or status == 429:
        meaning = _THROTTLED.get(code or 0, "throttled")
        return DeliveryError(
            f"{label}: {meaning}, retry later", retry_after=retry_after, code=code_text
        )
    if code is not None and code in _FOR_NOW:
        return DeliveryError(f"{label}: {_FOR_NOW[code]}", code=code_text)
    if code is not None and code in _REFUSED:
        return DeliveryError(f"{label}: {_REFUSED[code]}", permanent=True, code=code_text)
    if status >= 500:
        return DeliveryError(f"{label}: Meta failed (HTTP {status})", code=code_text)
    if 400 <= status < 500:
        return DeliveryError(f"{label}: refused (HTTP {status})", permanent=True, code=code_text)
    return DeliveryError(f"{label}: unexpected answer (HTTP {status})", code=code_text)


def interactive_message(message: OutboundMessage, list_button: str | None) -> dict[str, Any] | None:
    """Choices as reply buttons (up to three short ones) or a list (up to ten rows);
    None when they fit neither, and the numbered text goes instead."""
    choices, body = message.choices, message.text.strip()
    if not choices or not body or len(body) > MAX_INTERACTIVE_BODY_CHARS:
        return None
    if not _distinct(choices):
        return None
    if len(choices) <= MAX_BUTTONS and _fits(choices, MAX_BUTTON_TITLE_CHARS, MAX_BUTTON_ID_CHARS):
        buttons = [
            {"type": "reply", "reply": {"id": c.payload, "title": c.label.strip()}} for c in choices
        ]
        return {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": body},
                "action": {"buttons": buttons},
            },
        }
    if (
        list_button is not None
        and len(choices) <= MAX_LIST_ROWS
        and _fits(choices, MAX_ROW_TITLE_CHARS, MAX_ROW_ID_CHARS)
    ):
        rows = [{"id": c.payload, "title": c.label.strip()} for c in choices]
        return {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": body},
                "action": {"button": list_button, "sections": [{"rows": rows}]},
            },
        }
    return None


def template_message(name: str, language: str, variables: Mapping[str, str]) -> dict[str, Any]:
    """An approved template; numbered variables ({{1}}, {{2}}) go by position, named
    ones by name."""
    template: dict[str, Any] = {
        "name": name,
        "language": {"policy": "deterministic", "code": language},
    }
    if variables:
        if all(key.isdigit() for key in variables):
            ordered = sorted(variables.items(), key=lambda item: int(item[0]))
            parameters = [{"type": "text", "text": value} for _key, value in ordered]
        else:
            parameters = [
                {"type": "text", "parameter_name": key, "text": value}
                for key, value in variables.items()
            ]
        template["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": template}


def _fits(choices: Sequence[Choice], title_limit: int, id_limit: int) -> bool:
    return all(
        0 < len(c.label.strip()) <= title_limit
        and 0 < len(c.payload) <= id_limit
        and c.payload == c.payload.strip()
        for c in choices
    )


def _distinct(choices: Sequence[Choice]) -> bool:
    # Meta refuses two buttons or rows with the same id or title.
    labels = [c.label.strip() for c in choices]
    payloads = [c.payload for c in choices]
    return len(set(labels)) == len(labels) and len(set(payloads)) == len(payloads)


def _media(kind: str, body: Mapping[str, Any]) -> _Media | None:
    media_id = _str(body.get("id"))
    if not _MEDIA_ID.fullmatch(media_id):
        return None
    mime_type = _str(body.get("mime_type")).split(";")[0].strip() or "application/octet-stream"
    return _Media(
        kind=kind,
        media_id=media_id,
        mime_type=mime_type,
        filename=_str(body.get("filename")) or None,
        caption=_str(body.get("caption")),
    )


def _location(body: Mapping[str, Any]) -> Location | None:
    try:
        latitude, longitude = float(body["latitude"]), float(body["longitude"])
    except (KeyError, TypeError, ValueError, OverflowError):  # 10**400 is no float
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return Location(latitude, longitude)


def _changes(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        change for entry in _dicts(payload.get("entry")) for change in _dicts(entry.get("changes"))
    ]


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def build(setup: ChannelSetup) -> WhatsAppCloudChannel | None:
    """The channel from the ``[whatsapp_cloud]`` section, when it is complete."""
    section = setup.section
    keys = ("phone_number_id", "access_token", "app_secret", "verify_token")
    missing = [f"whatsapp_cloud.{key}" for key in keys if getattr(section, key) is None]
    if missing:
        logger.info("WhatsApp Cloud API skipped: %s not set", ", ".join(missing))
        return None
    return WhatsAppCloudChannel(
        section.phone_number_id,
        section.access_token.get_secret_value(),
        section.app_secret.get_secret_value(),
        section.verify_token.get_secret_value(),
        api_base_url=section.api_base_url,
        api_version=section.api_version,
        on_status=setup.on_receipt,
        templates=section.templates,
        list_button={
            language: setup.text(language, "choices.list_button") for language in LANGUAGES
        },
        messages_per_second=section.messages_per_second,
    )


SPEC: Final = ChannelSpec(
    names=(CHANNEL,),
    capabilities={CHANNEL: CAPABILITIES},
    section="whatsapp_cloud",
    build=build,
)
