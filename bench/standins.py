"""Lean local stand-ins for the Twilio Messages API and the Telegram Bot API.

They answer what the real clients expect and record, per recipient, when each reply
arrived (``time.perf_counter()``) and its text. They are on the measurement path, so they
validate nothing beyond what the clients need to carry on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TWILIO_MESSAGES = "/2010-04-01/Accounts/{sid}/Messages.json"
# Methods the server may call that need nothing but ``true`` back.
_TELEGRAM_TRUE = frozenset(
    {
        "setwebhook",
        "deletewebhook",
        "sendchataction",
        "answercallbackquery",
        "logout",
        "close",
        "setmycommands",
        "deletemycommands",
    }
)


@dataclass(slots=True)
class Inbox:
    """What one recipient received: arrival times and texts, and whoever waits for more."""

    times: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    waiter: asyncio.Future[None] | None = None

    def add(self, text: str) -> None:
        self.times.append(time.perf_counter())
        self.texts.append(text)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait_beyond(self, count: int, within: float) -> bool:
        """Wait until more than ``count`` replies arrived; False after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while len(self.times) <= count:
                    self.waiter = asyncio.get_running_loop().create_future()
                    await self.waiter
        except TimeoutError:
            return len(self.times) > count
        finally:
            self.waiter = None
        return True


class Recorder:
    """Inboxes by recipient key: ``whatsapp:+9665…`` for Twilio, ``tg:<chat id>`` for Telegram."""

    def __init__(self) -> None:
        self.inboxes: dict[str, Inbox] = {}
        self.other_calls = 0

    def inbox(self, key: str) -> Inbox:
        found = self.inboxes.get(key)
        if found is None:
            found = self.inboxes[key] = Inbox()
        return found

    def total(self) -> int:
        return sum(len(inbox.times) for inbox in self.inboxes.values())


class StandIns:
    """Twilio and the Bot API on one loopback aiohttp server (their paths do not clash).

    Args:
        recorder: where replies are recorded.
        account_sid: the Twilio account whose Messages resource is served.
        bot_token: the Telegram token (digits before ``:`` are the bot id).
    """

    def __init__(self, recorder: Recorder, account_sid: str, bot_token: str) -> None:
        self.recorder = recorder
        self.account_sid = account_sid
        self.bot_token = bot_token
        bot_id = bot_token.split(":", 1)[0]
        self._me = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "Tawasul",
            "username": "tawasul_bench_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        # Telegram numbers a private chat's messages in one sequence, both ways; the driver
        # numbers the beneficiaries' from 1, so the bot's start far above.
        self._message_ids = itertools.count(1_000_000_000)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(TWILIO_MESSAGES.format(sid="{sid}"), self._twilio_create)
        app.router.add_route("*", "/bot{token}/{method}", self._telegram)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _twilio_create(self, request: web.Request) -> web.Response:
        form = await request.post()
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        self.recorder.inbox(to).add(body)
        message_sid = "SM" + secrets.token_hex(16)
        uri = TWILIO_MESSAGES.format(sid=self.account_sid).removesuffix(".json")
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": None,
                "date_sent": None,
                "date_updated": None,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": message_sid,
                "status": "queued",
                "subresource_uris": {"media": f"{uri}/{message_sid}/Media.json"},
                "to": to,
                "uri": f"{uri}/{message_sid}.json",
            },
            status=201,
        )

    async def _telegram(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.bot_token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"].lower()
        params = await _telegram_params(request)
        result: Any
        if method in ("sendmessage", "editmessagetext"):
            chat_id = params.get("chat_id")
            text = str(params.get("text", ""))
            if method == "sendmessage":
                self.recorder.inbox(f"tg:{chat_id}").add(text)
            else:
                self.recorder.other_calls += 1
            result = {
                "message_id": params.get("message_id") or next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": _int(chat_id), "type": "private", "first_name": "Beneficiary"},
                "from": self._me,
                "text": text,
            }
        elif method == "getme":
            result = self._me
        elif method in _TELEGRAM_TRUE or method.startswith("set"):
            self.recorder.other_calls += 1
            result = True
        else:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.json_response({"ok": True, "result": result})


async def _telegram_params(request: web.Request) -> dict[str, Any]:
    """The call's parameters: JSON body, form or query (PTB sends a form)."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def telegram_json(value: Any) -> str:
    """JSON as the Bot API sends it (no ASCII escaping), for updates built by the driver."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
