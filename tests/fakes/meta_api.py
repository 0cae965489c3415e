"""A local WhatsApp Cloud API (messages and media) and signed webhooks, for our Graph client.

Usage::

    async with FakeMeta(PHONE_NUMBER_ID, ACCESS_TOKEN) as api:
        channel = WhatsAppCloudChannel(..., api_base_url=api.base_url)
        ...
        assert [m["text"]["body"] for m in api.messages] == [...]
        api.fail(131047)                                 # the next send call fails
        media_id = api.add_media(b"%PDF...", "application/pdf")

    body, headers = signed_notification(payload, APP_SECRET)
    await http.post("/webhooks/whatsapp-cloud", data=body, headers=headers)

``POST /{version}/{phone_number_id}/messages`` checks the bearer token, the
``User-Agent`` (Meta's description asks for ``name/1.2.3``) and validates the JSON
against ``tests/fixtures/meta_message_send.json`` (Meta's own schemas, with its limits:
three buttons of at most 20 characters, ten rows of at most 24, a body of at most
1,024), plus what the descriptions only say in words (distinct button titles and ids,
non-empty texts, 4,096 characters of text). A request that breaks one gets Meta's
error JSON (code 100, HTTP 400), as the live API answers. Every call is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Self

from aiohttp import web

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "meta_message_send.json"
MAX_TEXT_CHARS = 4096

# Sentences the Graph API answers with for the errors tests usually ask for.
ERROR_MESSAGES: Mapping[int, str] = {
    4: "Application request limit reached",
    100: "Invalid parameter",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131051: "Unsupported message type",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132001: "Template name does not exist in the translation",
}


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received, whatever became of it."""

    method: str
    path: str
    authorized: bool
    user_agent: str
    body: Any = None
    status: int = 200


@dataclass(frozen=True)
class Failure:
    code: int
    status: int
    retry_after: str | None


@dataclass
class _MediaFile:
    data: bytes
    mime_type: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))


class SignedNotification(NamedTuple):
    """A webhook request body and the headers Meta sends with it."""

    body: bytes
    headers: dict[str, str]


def signed_notification(payload: Mapping[str, Any], app_secret: str) -> SignedNotification:
    """A notification as Meta posts it: JSON, signed with the app secret."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    return SignedNotification(body, headers)


def notification(phone_number_id: str, **value: Any) -> dict[str, Any]:
    """The envelope of one notification about ``phone_number_id`` (``messages=[…]``,
    ``statuses=[…]``, ``contacts=[…]``)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "966550000000",
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def inbound(wa_id: str, wamid: str, kind: str = "text", **body: Any) -> dict[str, Any]:
    """One entry of ``messages``: ``inbound(wa_id, id, "text", body="…")``."""
    return {"from": wa_id, "id": wamid, "timestamp": "1733140000", "type": kind, kind: body}


def contact(wa_id: str, name: str = "Beneficiary") -> dict[str, Any]:
    return {"profile": {"name": name}, "wa_id": wa_id}


def status(wamid: str, state: str, wa_id: str, code: int | None = None) -> dict[str, Any]:
    """One entry of ``statuses``, with Meta's error when ``code`` is given."""
    entry: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": "1733140100",
        "recipient_id": wa_id,
    }
    if code is not None:
        entry["errors"] = [
            {
                "code": code,
                "title": ERROR_MESSAGES.get(code, "Error"),
                "message": ERROR_MESSAGES.get(code, "Error"),
                "error_data": {"details": "details that may quote the number"},
            }
        ]
    return entry


class FakeMeta:
    """The Graph API's messages and media endpoints on a loopback port."""

    def __init__(
        self,
        phone_number_id: str,
        access_token: str,
        version: str = "v23.0",
        schema_path: Path = SCHEMA_PATH,
    ) -> None:
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.version = version
        spec = json.loads(schema_path.read_text(encoding="utf-8"))
        self.schemas: dict[str, Any] = spec["schemas"]
        self.user_agent = re.compile(spec["user_agent_pattern"])
        self.calls: list[Call] = []
        self.messages: list[dict[str, Any]] = []  # accepted sends, in order
        self.refused: list[tuple[dict[str, Any], str]] = []  # what the schema refused, why
        self._failures: list[Failure] = []
        self._media: dict[str, _MediaFile] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._send)
        app.router.add_get("/{version}/{media_id}", self._media_url)
        app.router.add_get("/download/{token}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, code: int, *, status: int = 400, retry_after: str | None = None) -> None:
        """The next send call answers with Meta's error ``code``."""
        self._failures.append(Failure(code, status, retry_after))

    def add_media(self, data: bytes, mime_type: str) -> str:
        """A media id a beneficiary's message could carry."""
        media_id = str(10**15 + len(self._media) + 1)
        self._media[media_id] = _MediaFile(data, mime_type)
        return media_id

    def calls_to(self, method: str, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]

    # --- endpoints ---

    def _record(self, request: web.Request, body: Any = None, status: int = 200) -> Call:
        expected = f"Bearer {self.access_token}"
        authorized = hmac.compare_digest(request.headers.get("Authorization", ""), expected)
        call = Call(
            request.method,
            request.path,
            authorized,
            request.headers.get("User-Agent", ""),
            body,
            status,
        )
        self.calls.append(call)
        return call

    async def _send(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        call = self._record(request, body)
        if not call.authorized:
            return _error(401, 190, "Invalid OAuth access token")
        if not self.user_agent.fullmatch(call.user_agent):
            return _error(400, 100, "User-Agent does not match name/1.2.3")
        if request.match_info["version"] != self.version:
            return _error(400, 2635, "Unsupported API version")
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return _error(400, 100, "Unsupported post request: unknown phone number id")
        if not isinstance(body, dict):
            return _error(400, 100, "JSON object expected")
        problem = validate(body, self.schemas)
        if problem is not None:
            self.refused.append((body, problem))
            return _error(400, 100, f"Invalid parameter: {problem}")
        if self._failures:
            failure = self._failures.pop(0)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            message = ERROR_MESSAGES.get(failure.code, "Error")
            return _error(failure.status, failure.code, message, headers)
        self.messages.append(body)
        wamid = "wamid." + secrets.token_urlsafe(24)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    async def _media_url(self, request: web.Request) -> web.Response:
        call = self._record(request)
        if not call.authorized:
            return _error(401, 190, "Invalid OAuth access token")
        media = self._media.get(request.match_info["media_id"])
        if media is None or request.query.get("phone_number_id", self.phone_number_id) != (
            self.phone_number_id
        ):
            return _error(404, 100, "Unsupported get request")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/download/{media.token}",
                "mime_type": media.mime_type,
                "sha256": hashlib.sha256(media.data).hexdigest(),
                "file_size": str(len(media.data)),
                "id": request.match_info["media_id"],
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        call = self._record(request)
        if not call.authorized:
            return web.Response(status=404)  # as Meta's CDN: no token, no file
        for media in self._media.values():
            if media.token == request.match_info["token"]:
                return web.Response(body=media.data, content_type=media.mime_type)
        return web.Response(status=404)


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "A" + secrets.token_hex(8),
        }
    }
    return web.json_response(body, status=status, headers=dict(headers or {}))


# --- a small validator for Meta's schemas (OpenAPI 3 with discriminators) ---


def validate(body: Mapping[str, Any], schemas: Mapping[str, Any]) -> str | None:
    """The first way ``body`` breaks Meta's ``Message`` schema or its stated rules."""
    problem = _check(body, {"$ref": "#/components/schemas/Message"}, "message", schemas)
    return problem or _rules(body)


def _rules(body: Mapping[str, Any]) -> str | None:
    """What Meta's descriptions say in words rather than in the schema."""
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not re.fullmatch(r"[1-9][0-9]{5,14}", str(body.get("to", ""))):
        return "to must be a phone number in international form"
    if body.get("type") == "text":
        text = body["text"].get("body", "")
        if not text.strip():
            return "text.body must not be empty"
        if len(text) > MAX_TEXT_CHARS:
            return f"text.body longer than {MAX_TEXT_CHARS} characters"
    if body.get("type") == "interactive":
        interactive = body["interactive"]
        if not interactive.get("body", {}).get("text", "").strip():
            return "interactive.body.text must not be empty"
        action = interactive["action"]
        if interactive["type"] == "button":
            replies = [button["reply"] for button in action.get("buttons", [])]
        elif interactive["type"] == "list":
            if not action.get("button", "").strip():
                return "the list's button must not be empty"
            replies = [row for section in action.get("sections", []) for row in section["rows"]]
            if len(replies) > 10:
                return "a list holds at most 10 rows in all"
        else:
            return None
        for key in ("id", "title"):
            values = [str(reply.get(key, "")) for reply in replies]
            if any(not value.strip() or value != value.strip() for value in values):
                return f"every {key} must be non-empty, without blanks around it"
            if len(set(values)) != len(values):
                return f"each {key} must be unique"
    return None


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _merged(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """``allOf`` folded into one schema (its parts' discriminators dropped: the part is
    already the chosen form); ``additionalProperties: false`` then speaks of the union."""
    own = {k: v for k, v in schema.items() if k not in ("allOf", "discriminator")}
    if "allOf" not in schema:
        return own
    merged: dict[str, Any] = {"properties": {}, "required": []}
    for part in [*(_resolve(p, schemas) for p in schema["allOf"]), own]:
        part = _merged(part, schemas)
        for name, spec in part.get("properties", {}).items():
            before = merged["properties"].get(name)
            merged["properties"][name] = spec if before is None else {"allOf": [before, spec]}
        merged["required"] += part.get("required", [])
        for key, value in part.items():
            if key not in ("properties", "required"):
                if key == "additionalProperties" and value is False:
                    merged[key] = False
                else:
                    merged.setdefault(key, value)
    return merged


def _check(
    value: Any, schema: Mapping[str, Any], where: str, schemas: Mapping[str, Any]
) -> str | None:
    schema = _resolve(schema, schemas)
    discriminator = schema.get("discriminator")
    if discriminator is not None and isinstance(value, dict):
        key = value.get(discriminator["propertyName"])
        mapping = discriminator.get("mapping", {})
        if key not in mapping:
            name = discriminator["propertyName"]
            return f"{where}.{name}: {key!r} is not one of {sorted(mapping)}"
        chosen = _resolve({"$ref": mapping[key]}, schemas)
        if chosen is not schema:
            return _check(value, _merged(chosen, schemas), where, schemas)
    schema = _merged(schema, schemas)
    if "oneOf" in schema:
        problems = [_check(value, branch, where, schemas) for branch in schema["oneOf"]]
        matching = [p for p in problems if p is None]
        if len(matching) != 1:
            first = next((p for p in problems if p is not None), "")
            return f"{where}: matches {len(matching)} of its {len(problems)} forms ({first})"
    return _check_plain(value, schema, where, schemas)


def _check_plain(
    value: Any, schema: Mapping[str, Any], where: str, schemas: Mapping[str, Any]
) -> str | None:
    kind = schema.get("type")
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    if kind in types and not isinstance(value, types[kind]):
        return f"{where}: expected {kind}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{where}: longer than {schema['maxLength']} characters"
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{where}: shorter than {schema['minLength']} characters"
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where}: more than {schema['maxItems']} items"
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{where}: fewer than {schema['minItems']} items"
        if "items" in schema:
            for index, item in enumerate(value):
                problem = _check(item, schema["items"], f"{where}[{index}]", schemas)
                if problem:
                    return problem
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{where}.{name}: required"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            for name in value:
                if name not in properties:
                    return f"{where}.{name}: unknown property"
        for name, spec in properties.items():
            if name in value:
                problem = _check(value[name], spec, f"{where}.{name}", schemas)
                if problem:
                    return problem
    return None


def texts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each accepted message says: the text, the interactive body or the template."""
    said = []
    for message in messages:
        if message["type"] == "text":
            said.append(message["text"]["body"])
        elif message["type"] == "interactive":
            said.append(message["interactive"]["body"]["text"])
        else:
            said.append("template:" + message["template"]["name"])
    return said
