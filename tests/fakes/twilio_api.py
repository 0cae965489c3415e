"""A local Twilio REST API (Messages and media) and signed webhooks, for the real twilio client.

Usage::

    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as api:
        channel = TwilioChannel(..., api_base_url=api.base_url)
        ...
        assert [m["Body"] for m in api.messages] == [...]
        api.fail(status=429, code=20429, retry_after=7)   # the next create call fails
        url = api.add_media("id.jpg", b"...", "image/jpeg")  # a MediaUrl Twilio would send

    body, headers = signed_form(public_url + "/webhooks/whatsapp", params, AUTH_TOKEN)
    await http.post("/webhooks/whatsapp", data=body, headers=headers)

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` checks HTTP basic auth and
validates the form against ``tests/fixtures/twilio_message_create.json`` (Twilio's own
schema, as a validating proxy would, the same as shared/peers/twilio_api_v2010.json), then
as Twilio itself does: unknown names, wrong formats, no ``To``, a ``To`` that is not a
number (21211), a ``whatsapp:`` To from an SMS sender or the other way round (21910),
none of Body/MediaUrl/ContentSid (21619), a Body over 1,600 characters counted in
UTF-16 units as Twilio counts them (21617), ``ContentVariables`` that are not a JSON
object (21656), more than 10 ``MediaUrl`` (21623) get a 400 with a Twilio error JSON,
which the twilio library turns into ``TwilioRestException``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import RequestValidator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "twilio_message_create.json"
MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"
MAX_BODY_CHARS = 1600  # UTF-16 code units, as Twilio counts them
MAX_MEDIA_URLS = 10

# Sentences Twilio answers with for the errors tests usually ask for.
ERROR_MESSAGES: Mapping[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated "
    "by the 'To' number",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit",
    21619: "A text message body or media url must be specified.",
    21623: "Number of media files exceeds allowed limit",
    21656: "The ContentVariables Parameter is invalid.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63016: "Failed to send freeform message because you are outside the allowed window.",
    63018: "Rate limit exceeded for Channel",
}

_PHONE = re.compile(r"^(?:[a-z]+:)?\+?[0-9]{3,15}$|^[A-Za-z0-9 ]{1,11}$")
# A recipient is a number (E.164, or a short code), with a channel prefix or not: an
# alphanumeric sender ID can send but never receive.
_RECIPIENT = re.compile(r"^(?:[a-z]+:)?\+?[0-9]{3,15}$")


@dataclass(frozen=True)
class Failure:
    """How one create call is to fail."""

    status: int
    code: int | None
    message: str
    retry_after: str | None


@dataclass(frozen=True)
class CreateCall:
    """One create call that passed authentication: its form, what we answered."""

    form: dict[str, Any]
    status: int
    sid: str | None
    error: str | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


@dataclass(frozen=True)
class MediaRequest:
    """One request for a media file: which hop, and whether it carried the credentials."""

    path: str
    authorized: bool


@dataclass
class _MediaFile:
    data: bytes
    content_type: str
    chunked: bool
    token: str = field(default_factory=lambda: secrets.token_hex(16))


class SignedForm(NamedTuple):
    """A webhook request body and the headers Twilio sends with it."""

    body: str
    headers: dict[str, str]


def signed_form(url: str, params: Mapping[str, str | Sequence[str]], auth_token: str) -> SignedForm:
    """A form-encoded webhook signed the way Twilio signs it, for the exact ``url``."""
    pairs = [
        (name, value)
        for name, values in params.items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    signature = RequestValidator(auth_token).compute_signature(url, _Multi(multi))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
    }
    return SignedForm(urlencode(pairs), headers)


class _Multi(dict[str, list[str]]):
    """What RequestValidator reads repeated fields from (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def inbound_params(
    account_sid: str,
    sender: str,
    to: str,
    body: str = "",
    *,
    message_sid: str | None = None,
    profile_name: str = "",
    **extra: str,
) -> dict[str, str]:
    """The fields of an inbound message webhook as Twilio sends them.

    ``sender``/``to`` are ``whatsapp:+966…`` for WhatsApp or bare E.164 for SMS;
    ``extra`` adds or overrides fields (``ButtonPayload``, ``Latitude``, ``MediaUrl0``…).
    """
    message_sid = message_sid or sid("SM")
    params = {
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "SmsSid": message_sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    if sender.startswith("whatsapp:"):
        params |= {
            "ProfileName": profile_name,
            "WaId": sender.removeprefix("whatsapp:+"),
            "MessageType": "text",
            "ReferralNumMedia": "0",
        }
    else:
        params |= {"FromCountry": "SA", "ToCountry": "SA"}
    return params | extra


def status_params(
    account_sid: str,
    message_sid: str,
    status: str,
    to: str,
    sender: str,
    error_code: str | None = None,
) -> dict[str, str]:
    """The fields of a message status callback as Twilio sends them."""
    params = {
        "SmsSid": message_sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": message_sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    if sender.startswith("whatsapp:") or to.startswith("whatsapp:"):
        params["ChannelPrefix"] = "whatsapp"
    if error_code:
        params["ErrorCode"] = error_code
    return params


class FakeTwilio:
    """Twilio's Messages API and media store on 127.0.0.1, for one account.

    Attributes:
        base_url: give it to the channel as ``api_base_url``.
        messages: the form of every accepted create call, in order (one value per
            field; array fields such as ``MediaUrl`` as lists).
        calls: every authenticated create call, accepted or not.
        media_requests: every request for a media file, with its hops.
    """

    def __init__(self, account_sid: str, auth_token: str, schema_path: Path = SCHEMA_PATH) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.schema: dict[str, Any] = json.loads(schema_path.read_text(encoding="utf-8"))
        self.messages: list[dict[str, Any]] = []
        self.calls: list[CreateCall] = []
        self.media_requests: list[MediaRequest] = []
        self._failures: list[Failure] = []
        self._media: dict[str, _MediaFile] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # Each create call takes this long to answer; how many overlapped, at most.
        self.answer_after = 0.0
        self.most_at_once = 0
        self.most_at_once_to_one = 0
        self._on_their_way: list[str] = []

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH.replace("{account_sid}", "{AccountSid}"), self._create)
        app.router.add_get("/media/{name}", self._media_first_hop)
        app.router.add_get("/cdn/{name}", self._media_cdn)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what a test asks for ---

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 400,
        code: int | None = None,
        message: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Make the next ``times`` create calls fail with this status and Twilio code,
        and a ``Retry-After`` header when given."""
        text = message or ERROR_MESSAGES.get(code or 0, "Error")
        after = None if retry_after is None else str(retry_after)
        self._failures += [Failure(status, code, text, after)] * times

    def add_media(
        self, name: str, data: bytes, content_type: str = "image/jpeg", *, chunked: bool = False
    ) -> str:
        """Store a file; its URL (behind basic auth, then a redirect to a signed CDN URL).

        ``chunked`` serves it without a Content-Length, so only reading tells its size.
        """
        self._media[name] = _MediaFile(data, content_type, chunked)
        return f"{self.base_url}/media/{name}"

    def bodies(self, to: str | None = None) -> list[str]:
        """The bodies of the accepted messages (to one address when given)."""
        return [m.get("Body", "") for m in self.messages if to is None or m.get("To") == to]

    # --- Messages ---

    async def _create(self, request: web.Request) -> web.Response:
        if request.match_info["AccountSid"] != self.account_sid or not self._authorized(request):
            return _error(401, 20003)
        form = await request.post()
        record = _record(form, self.schema)
        problem = validate(form, self.schema)
        if problem is not None:
            code, text = problem
            self.calls.append(CreateCall(record, 400, None, text))
            return _error(400, code, text)
        if self.answer_after:
            to = str(form.get("To", ""))
            self._on_their_way.append(to)
            self.most_at_once = max(self.most_at_once, len(self._on_their_way))
            self.most_at_once_to_one = max(self.most_at_once_to_one, self._on_their_way.count(to))
            await asyncio.sleep(self.answer_after)
            self._on_their_way.remove(to)
        if self._failures:
            failure = self._failures.pop(0)
            self.calls.append(CreateCall(record, failure.status, None, failure.message))
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return _error(failure.status, failure.code, failure.message, headers)
        message_sid = sid("SM")
        self.calls.append(CreateCall(record, 201, message_sid))
        self.messages.append(record)
        return web.json_response(self._message(message_sid, record), status=201)

    def _message(self, message_sid: str, form: Mapping[str, Any]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=False)
        uri = MESSAGES_PATH.format(account_sid=self.account_sid).removesuffix(".json")
        media = form.get("MediaUrl", [])
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/{message_sid}/Media.json"},
            "to": form.get("To"),
            "uri": f"{uri}/{message_sid}.json",
        }

    # --- media ---

    async def _media_first_hop(self, request: web.Request) -> web.StreamResponse:
        authorized = self._authorized(request)
        self.media_requests.append(MediaRequest(request.path, authorized))
        if not authorized:
            return _error(401, 20003)
        file = self._media.get(request.match_info["name"])
        if file is None:
            return _error(404, 20404)
        location = f"/cdn/{request.match_info['name']}?Signature={file.token}"
        raise web.HTTPTemporaryRedirect(location)

    async def _media_cdn(self, request: web.Request) -> web.StreamResponse:
        self.media_requests.append(MediaRequest(request.path, self._authorized(request)))
        file = self._media.get(request.match_info["name"])
        if file is None or request.query.get("Signature") != file.token:
            return web.Response(status=403, text="AccessDenied")
        if not file.chunked:
            return web.Response(body=file.data, content_type=file.content_type)
        response = web.StreamResponse(headers={"Content-Type": file.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(file.data), 256 * 1024):
                await response.write(file.data[start : start + 256 * 1024])
            await response.write_eof()
        except ConnectionResetError:  # the client stopped reading: what a size limit does
            pass
        return response

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Basic {expected}".encode())


def validate(form: MultiDictProxy[Any], schema: Mapping[str, Any]) -> tuple[int | None, str] | None:
    """The first way ``form`` breaks the schema, as (Twilio error code, message), else None."""
    properties: Mapping[str, Any] = schema["properties"]
    for name in form:
        if name not in properties:
            return None, f"unknown parameter {name}"
    if "To" in form and not _RECIPIENT.match(str(form["To"])):
        return 21211, ERROR_MESSAGES[21211]
    for name in properties:
        values = form.getall(name, [])
        spec = properties[name]
        if len(values) > 1 and spec.get("type") != "array":
            return None, f"{name} given {len(values)} times"
        item = spec.get("items", spec) if spec.get("type") == "array" else spec
        for value in values:
            problem = _check(name, str(value), item)
            if problem:
                return None, problem
    if any(name not in form for name in schema.get("required", ())):
        return 21604, ERROR_MESSAGES[21604]
    for group in schema.get("x-twilio", {}).get("conditional", ()):
        names = [_camel(n) for n in group]
        if not any(form.get(n) for n in names):
            code = 21619 if "Body" in names else None
            return code, ERROR_MESSAGES[21619] if code else f"one of {names} is required"
    to, sender = str(form.get("To", "")), str(form.get("From", ""))
    if sender and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
        return 21910, ERROR_MESSAGES[21910]
    if utf16_units(str(form.get("Body", ""))) > MAX_BODY_CHARS:
        return 21617, ERROR_MESSAGES[21617]
    if len(form.getall("MediaUrl", [])) > MAX_MEDIA_URLS:
        return 21623, ERROR_MESSAGES[21623]
    if "ContentVariables" in form:
        try:
            variables = json.loads(str(form["ContentVariables"]))
        except ValueError:
            variables = None
        if not isinstance(variables, dict):
            return 21656, ERROR_MESSAGES[21656]
    return None


def utf16_units(text: str) -> int:
    """The length Twilio counts: UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


def _check(name: str, value: str, spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type")
    if "enum" in spec and value not in spec["enum"]:
        return f"{name} must be one of {spec['enum']}"
    if kind == "boolean" and value not in ("true", "false", "True", "False"):
        return f"{name} must be a boolean"
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return f"{name} must be an integer"
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return f"{name} must be a number"
    if "minLength" in spec and len(value) < spec["minLength"]:
        return f"{name} is shorter than {spec['minLength']}"
    if "maxLength" in spec and len(value) > spec["maxLength"]:
        return f"{name} is longer than {spec['maxLength']}"
    if "pattern" in spec and not re.search(spec["pattern"], value):
        return f"{name} does not match {spec['pattern']}"
    ignore_format = spec.get("x-twilio", {}).get("ignoreFormat", False)
    fmt = None if ignore_format else spec.get("format")
    if fmt == "phone-number" and not _PHONE.match(value):
        return f"{name} is not a phone number or channel address"
    if fmt == "uri":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or "_" in parts.hostname:
            return f"{name} is not a valid URL"
    if fmt == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return f"{name} is not an ISO 8601 date-time"
    return None


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _record(form: MultiDictProxy[Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema["properties"]
    record: dict[str, Any] = {}
    for name in form:
        if name in record:
            continue
        values = [str(v) for v in form.getall(name)]
        is_array = properties.get(name, {}).get("type") == "array"
        record[name] = values if is_array or len(values) > 1 else values[0]
    return record


def _error(
    status: int,
    code: int | None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code or 0, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }
    if code is None:
        del body["code"]
    return web.json_response(body, status=status, headers=dict(headers or {}))
