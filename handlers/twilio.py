"""The Twilio channel: WhatsApp Business and SMS webhooks in, the Messages REST API out."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response as TwilioResponse  # type: ignore[import-untyped]
from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    compare,
)
from twilio.rest import Client  # type: ignore[import-untyped]

from flows.render import as_plain_text, split_text
from flows.types import Address, InboundMessage, Location, Media, OutboundMessage
from handlers.base import (
    FORM,
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
    read_body,
    store,
)

logger = logging.getLogger(__name__)

# twilio's own loggers write request URLs and headers at INFO; keep them to warnings so
# that nothing about a beneficiary can reach the logs through them.
for _name in ("twilio.http_client", "twilio.async_http_client"):
    logging.getLogger(_name).setLevel(logging.WARNING)

INBOUND_PATH: Final = "/webhooks/whatsapp"
STATUS_PATH: Final = "/webhooks/whatsapp/status"
TWILIO_API: Final = "https://api.twilio.com"
WHATSAPP_PREFIX: Final = "whatsapp:"
# An empty TwiML answer: Twilio would send any text we answered to the beneficiary.
EMPTY_TWIML: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's webhooks are a few KB; anything much larger is not from Twilio.
MAX_WEBHOOK_BYTES: Final = 64 * 1024
# Twilio's inbound webhook has about 30 fields, plus two per attachment (at most 10).
MAX_WEBHOOK_FIELDS: Final = 200
# Twilio's ids: two letters and 32 hex digits; anything of their shape is taken.
_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{1,62}")
_ERROR_CODE = re.compile(r"[0-9]{1,10}")
# The longest Body Twilio accepts, WhatsApp and SMS alike (error 21617 beyond it).
MAX_BODY_CHARS: Final = 1600
# Twilio itself gives up on a webhook after 15 s; the API answers much faster.
API_TIMEOUT_SECONDS: Final = 15.0
MEDIA_TIMEOUT_SECONDS: Final = 10.0
# Twilio sends at most 10 attachments per message.
MAX_INBOUND_MEDIA: Final = 10
# Twilio's statuses as the outbox knows them; the others (queued, sending…) say nothing new.
STATUSES: Final[Mapping[str, str]] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
}
# The share of the sender's limit the outbox uses, so that replies always have room.
RATE_SHARE: Final = 0.8
WHATSAPP_WINDOW: Final = timedelta(hours=24)
WHATSAPP: Final = Capabilities(
    media=frozenset({"image", "document", "audio", "video"}),
    text_limit=MAX_BODY_CHARS,
    utf16=True,
    window=WHATSAPP_WINDOW,
    call_seconds=API_TIMEOUT_SECONDS,
    receipts=True,
    phone_numbers=True,
)
SMS: Final = Capabilities(
    text_limit=MAX_BODY_CHARS,
    utf16=True,
    call_seconds=API_TIMEOUT_SECONDS,
    receipts=True,
    phone_numbers=True,
)

_E164 = re.compile(r"\+[1-9]\d{5,14}")

# Error codes whose meaning we act on; reasons are the meaning, never Twilio's message
# (it quotes the number).
_UNREACHABLE: Final[Mapping[int, str]] = {
    21610: "the recipient unsubscribed (STOP)",
    21408: "sending to this region is not enabled",
    21211: "invalid recipient number",
    21614: "the recipient number cannot receive messages",
}
# In a failed status callback, also: the number is not on WhatsApp.
_UNREACHABLE_LATER: Final[Mapping[int, str]] = {
    **_UNREACHABLE,
    63024: "invalid message recipient",
}
_OUTSIDE_WINDOW: Final = 63016
_THROTTLED: Final = 63018

# The headers of the last API answer in this task, so that a refused send can tell the
# Retry-After that twilio's exception does not carry. A ContextVar keeps concurrent
# sends apart: each runs in its own task.
_answer_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "twilio_answer_headers", default=None
)


class BaseUrlHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's aiohttp client, sending to ``base_url`` what it would send to Twilio.

    With the default base nothing changes (so ``TWILIO_REGION``/``TWILIO_EDGE`` still
    work); with another one, every ``*.twilio.com`` URL is rewritten onto it, which is
    how tests and a proxy sit in between. It uses the session it is given.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = session
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        if self.base_url == TWILIO_API:
            return url
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host != "twilio.com" and not host.endswith(".twilio.com"):
            return url
        return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")

    async def request(
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (twilio passes it by this name)
        allow_redirects: bool = False,
    ) -> Any:
        # Done here rather than by the parent: it logs the request, passes aiohttp the
        # deprecated ``auth``, and no timeout (aiohttp reads None as "wait forever").
        sent_headers = dict(headers or {})
        if auth is not None:
            sent_headers["Authorization"] = basic_authorization(*auth)
        if isinstance(data, dict):
            data, sent_headers["Content-Type"] = urlencode(data, doseq=True), FORM
        async with self.session.request(
            method.upper(),
            self.rewrite(url),
            params=params,
            data=data,
            headers=sent_headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
        _answer_headers.set(answer.headers)
        return TwilioResponse(answer.status, text, answer.headers)


def basic_authorization(user: str, password: str) -> str:
    """An HTTP basic ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class TwilioChannel:
    """WhatsApp and SMS through one Twilio account.

    Args:
        account_sid: the account (``AC…``); with ``auth_token`` also the API credentials.
        auth_token: signs the webhooks and authenticates API calls and media downloads.
        from_number: the WhatsApp sender in E.164 (``+966550000000``).
        public_url: where Twilio reaches this server; signatures are checked against it.
        api_base_url: the REST API's base (a local fake in tests, a proxy in production).
        sms_from_number: the SMS sender when it is not ``from_number``.
        on_status: given a neutral receipt for each delivery status callback.
        templates: approved WhatsApp templates, template kind -> Content SID (``HX…``).
        messages_per_second: the sender's limit (the outbox keeps to 80% of it).
    """

    names: tuple[str, ...] = ("whatsapp", "sms")

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        public_url: str,
        api_base_url: str = TWILIO_API,
        sms_from_number: str | None = None,
        on_status: ReceiptReceiver | None = None,
        templates: Mapping[str, str] | None = None,
        messages_per_second: float = 1.0,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._whatsapp_from = WHATSAPP_PREFIX + _e164(from_number, "from_number")
        self._sms_from = _e164(sms_from_number or from_number, "sms_from_number")
        self._public_url = public_url.rstrip("/")
        self._api_base_url = api_base_url.rstrip("/")
        self._on_status = on_status
        self._templates = dict(templates or {})
        self._per_second = RATE_SHARE * messages_per_second
        self._validator = RequestValidator(auth_token)
        self._session: aiohttp.ClientSession | None = None
        self._client: Any = None

    @property
    def status_callback_url(self) -> str:
        return self._public_url + STATUS_PATH

    def capabilities(self, name: str) -> Capabilities:
        """WhatsApp with its window and templates, SMS without; one sender's rate for both."""
        if name == "whatsapp":
            return replace(
                WHATSAPP, templates=frozenset(self._templates), per_second=self._per_second
            )
        return replace(SMS, per_second=self._per_second)

    # --- lifecycle ---

    async def start(self) -> None:
        """Open the one HTTP session used for API calls and media downloads."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession()
        http = BaseUrlHttpClient(self._session, self._api_base_url, API_TIMEOUT_SECONDS)
        self._client = Client(self._account_sid, self._auth_token, http_client=http)

    async def stop(self) -> None:
        session, self._session, self._client = self._session, None, None
        if session is not None:
            await session.close()

    # --- webhooks ---

    def routes(self, receive: Receiver) -> list[web.RouteDef]:
        """Inbound messages and status callbacks; both signed by Twilio, form-encoded."""

        async def inbound(request: web.Request) -> web.StreamResponse:
            form = await self._verified_form(request)
            try:
                message = inbound_message(form, datetime.now(UTC))
            except ValueError as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
            await store(receive(message), f"inbound {message.platform_message_id}")
            return _empty_twiml()

        async def status(request: web.Request) -> web.StreamResponse:
            form = await self._verified_form(request)
            sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
            if not sid or not state:
                raise web.HTTPBadRequest(text="MessageSid and MessageStatus are required")
            if not _SID.fullmatch(sid):
                raise web.HTTPBadRequest(text="MessageSid is not a Twilio id")
            receipt = delivery_receipt(form)
            if receipt is None or self._on_status is None:
                return _empty_twiml()
            await store(self._on_status(receipt), f"status of {sid}")
            return _empty_twiml()

        return [web.post(INBOUND_PATH, inbound), web.post(STATUS_PATH, status)]

    async def _verified_form(self, request: web.Request) -> MultiDictProxy[str]:
        """The form of a webhook Twilio signed; an HTTP error otherwise."""
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(text="form-encoded body expected")
        try:
            body = await read_body(request, MAX_WEBHOOK_BYTES)
        except BadBody:
            raise web.HTTPRequestEntityTooLarge(
                MAX_WEBHOOK_BYTES, request.content_length or 0
            ) from None
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_WEBHOOK_FIELDS
            )
        except ValueError:  # also UnicodeDecodeError, and more fields than allowed
            raise web.HTTPBadRequest(text="undecodable form") from None
        form = MultiDictProxy(MultiDict(pairs))
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self._public_url + request.raw_path
        if not signature or not self._signed(url, form, signature):
            logger.warning("webhook %s refused: bad or missing signature", request.path)
            raise web.HTTPForbidden(text="invalid signature")
        return form

    def _signed(self, url: str, form: MultiDictProxy[str], signature: str) -> bool:
        """Whether Twilio signed ``form`` at ``url``. The URL as Twilio was given it first
        (one HMAC, constant-time compared); only when that fails the library's check,
        which computes it twice more (the URL with and without its port)."""
        expected = self._validator.compute_signature(url, form)
        return bool(compare(expected, signature)) or bool(
            self._validator.validate(url, form, signature)
        )

    # --- sending ---

    async def send(
        self,
        address: Address,
        message: OutboundMessage,
        *,
        first_part: int = 0,
        before_part: BeforePart | None = None,
    ) -> Sent:
        """One create call per chunk of the plain text (or one for a template), in order,
        from ``first_part`` on (see ``Channel.send``)."""
        client = self._require_client()
        if address.channel == "whatsapp":
            to, from_ = WHATSAPP_PREFIX + address.user_id, self._whatsapp_from
        elif address.channel == "sms":
            to, from_ = address.user_id, self._sms_from
        else:
            raise DeliveryError(f"channel {address.channel} is not Twilio's", permanent=True)
        common = {"to": to, "from_": from_, "status_callback": self.status_callback_url}
        if message.template is not None:
            kind = message.template.kind
            content_sid = self._templates.get(kind)
            if content_sid is None:
                raise DeliveryError(f"no approved template for kind {kind}", permanent=True)
            variables = json.dumps(dict(message.template.variables), ensure_ascii=False)
            parts = [{"content_sid": content_sid, "content_variables": variables}]
        else:
            parts = [{"body": chunk} for chunk in split_body(as_plain_text(message))]
            if not parts:
                raise DeliveryError("empty message", permanent=True)
        sid: str | None = None
        for index, part in enumerate(parts):
            if index < first_part:
                continue
            if index > first_part and before_part is not None:
                await before_part(index)
            sid = await self._create(client, **common, **part)
        return Sent(sid)

    async def _create(self, client: Any, **fields: str) -> str | None:
        _answer_headers.set(None)
        try:
            created = await client.messages.create_async(**fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            # "from None": twilio's message quotes the number and must not reach a log.
            status, code = int(exc.status), _int_or_none(exc.code)
            raise delivery_error(status, code, _retry_after(_answer_headers.get())) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"twilio not reachable: {type(exc).__name__}") from None
        sid = created.sid
        return sid if isinstance(sid, str) else None

    # --- media ---

    async def fetch_media(self, media: Media) -> bytes:
        """The attachment, with the account's credentials, through Twilio's CDN redirect.

        Only from Twilio's API (or the configured ``api_base_url``): a MediaUrl naming any
        other host is refused unfetched, so a webhook cannot send our credentials, or our
        server's requests, anywhere else.
        """
        hosts = {_origin(TWILIO_API), _origin(self._api_base_url)} - {None}
        if _origin(media.url) not in hosts:
            raise MediaError("media URL not on the Twilio API's host")
        session = self._require_session()
        headers = {"Authorization": basic_authorization(self._account_sid, self._auth_token)}
        timeout = aiohttp.ClientTimeout(total=MEDIA_TIMEOUT_SECONDS)
        try:
            # aiohttp drops the credentials when a redirect leaves the origin (the CDN).
            async with session.get(media.url, headers=headers, timeout=timeout) as response:
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
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaError(f"media fetch failed: {type(exc).__name__}") from None

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("TwilioChannel.start() must be awaited first")
        return self._session

    def _require_client(self) -> Any:
        self._require_session()
        return self._client


# --- translation, pure ---


def inbound_message(form: Mapping[str, str], now: datetime) -> InboundMessage:
    """The neutral message of one inbound webhook.

    Raises:
        ValueError: a required field is missing or ``From`` is no phone address.
    """
    sid, sender = form.get("MessageSid", ""), form.get("From", "")
    if not sid or not sender:
        raise ValueError("MessageSid and From are required")
    if not _SID.fullmatch(sid):
        raise ValueError("MessageSid is not a Twilio id")
    if sender.startswith(WHATSAPP_PREFIX):
        channel, number = "whatsapp", sender.removeprefix(WHATSAPP_PREFIX)
    else:
        channel, number = "sms", sender
    if not _E164.fullmatch(number):
        raise ValueError("From is not a phone address")
    body = form.get("Body", "")
    payload = form.get("ButtonPayload") or None
    text = (form.get("ButtonText") or body or payload or "") if payload else body
    return InboundMessage(
        address=Address(channel, number),
        received_at=now,
        text=text,
        payload=payload,
        media=_media(form),
        platform_message_id=sid,
        location=_location(form),
    )


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port of ``url``; None for anything that is not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    count = _int_or_none(form.get("NumMedia")) or 0
    found = []
    for n in range(min(count, MAX_INBOUND_MEDIA)):
        url = form.get(f"MediaUrl{n}")
        if url:
            content_type = form.get(f"MediaContentType{n}") or "application/octet-stream"
            found.append(Media(url=url, content_type=content_type))
    return tuple(found)


def _location(form: Mapping[str, str]) -> Location | None:
    try:
        latitude, longitude = float(form["Latitude"]), float(form["Longitude"])
    except (KeyError, ValueError):
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return Location(latitude, longitude)


def _status_channel(form: Mapping[str, str]) -> str:
    # Outbound messages' callbacks: To is the beneficiary, From is us; either tells.
    addresses = (form.get("To", ""), form.get("From", ""))
    return "whatsapp" if any(a.startswith(WHATSAPP_PREFIX) for a in addresses) else "sms"


def delivery_receipt(form: Mapping[str, str]) -> DeliveryReceipt | None:
    """The neutral receipt of one status callback; None for a status that says nothing
    new (queued, sending…)."""
    sid, status = form.get("MessageSid", ""), STATUSES.get(form.get("MessageStatus", ""))
    if not sid or status is None:
        return None
    channel = _status_channel(form)
    error_code = form.get("ErrorCode") or None
    if error_code is not None and not _ERROR_CODE.fullmatch(error_code):
        error_code = None  # Twilio's codes are numbers; nothing else is kept
    code = _int_or_none(error_code) if error_code else None
    return DeliveryReceipt(
        channel,
        sid,
        status,
        reason=f"{error_code}: rejected by the platform" if error_code else None,
        unreachable=status == "failed" and code is not None and code in _UNREACHABLE_LATER,
        outside_window=status == "failed" and code == _OUTSIDE_WINDOW and channel == "whatsapp",
    )


def _empty_twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def split_body(text: str, limit: int = MAX_BODY_CHARS) -> list[str]:
    """``text`` in bodies Twilio takes: at most ``limit`` UTF-16 units each."""
    return split_text(text, limit, utf16=True)


def delivery_error(status: int, code: int | None, retry_after: float | None) -> DeliveryError:
    """What a refused create call means for the outbox."""
    label = f"twilio {code}" if code is not None else f"twilio HTTP {status}"
    code_text = str(code) if code is not None else None
    if code is not None and code in _UNREACHABLE:
        return DeliveryError(f"{label}: {_UNREACHABLE[code]}", unreachable=True, code=code_text)
    if code == _OUTSIDE_WINDOW:
        return DeliveryError(
            f"{label}: outside the 24-hour window; an approved template is needed",
            permanent=True,
            outside_window=True,
            code=code_text,
        )
    if code == _THROTTLED or status == 429:
        return DeliveryError(
            f"{label}: throttled, retry later", retry_after=retry_after, code=code_text
        )
    if status >= 500:
        return DeliveryError(f"{label}: Twilio failed (HTTP {status})", code=code_text)
    if 400 <= status < 500:
        return DeliveryError(f"{label}: refused (HTTP {status})", permanent=True, code=code_text)
    return DeliveryError(f"{label}: unexpected answer (HTTP {status})", code=code_text)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), when there is one."""
    value = (headers or {}).get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _e164(number: str, name: str) -> str:
    number = number.removeprefix(WHATSAPP_PREFIX)
    if not _E164.fullmatch(number):
        raise ValueError(f"{name} must be an E.164 number like +966550000000")
    return number


def build(setup: ChannelSetup) -> TwilioChannel | None:
    """The channel from the ``[whatsapp]`` section, when it has what Twilio needs."""
    section = setup.section
    missing = [
        key
        for key, value in (
            ("whatsapp.account_sid", section.account_sid),
            ("whatsapp.auth_token", section.auth_token),
            ("whatsapp.from_number", section.from_number),
            ("server.public_url", setup.public_url),
        )
        if not value
    ]
    if missing:
        logger.info("WhatsApp and SMS skipped: %s not set", ", ".join(missing))
        return None
    assert setup.public_url is not None
    return TwilioChannel(
        section.account_sid,
        section.auth_token.get_secret_value(),
        section.from_number,
        public_url=setup.public_url,
        api_base_url=section.api_base_url,
        sms_from_number=section.sms_from_number,
        on_status=setup.on_receipt,
        templates=section.templates,
        messages_per_second=section.messages_per_second,
    )


SPEC: Final = ChannelSpec(
    names=("whatsapp", "sms"),
    capabilities={"whatsapp": WHATSAPP, "sms": SMS},
    section="whatsapp",
    build=build,
)
