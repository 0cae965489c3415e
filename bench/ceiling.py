"""The ceiling: a bare aiohttp endpoint doing one database commit per webhook, nothing else.

It uses Tawasul's database stack (``storage.db.Database``: the same async driver, pragmas
and engine settings), so the only difference from the real server is the work it skips:
no signature check, no conversation, no reply.

    python -m bench.ceiling --port 8081 --database-url sqlite:///ceiling.db
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import Database

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

metadata = MetaData()
inbound = Table(
    "ceiling_inbound",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)


async def _store(request: web.Request, sender: str, body: str, message_id: str) -> None:
    row = {
        "sender": sender,
        "body": body,
        "message_id": message_id,
        "received_at": datetime.now(UTC),
    }
    async with request.app[ENGINE].begin() as connection:
        await connection.execute(insert(inbound).values(row))


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def whatsapp(request: web.Request) -> web.Response:
    form = await request.post()
    await _store(
        request,
        str(form.get("From", "")),
        str(form.get("Body", "")),
        str(form.get("MessageSid", "")),
    )
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def _telegram_fields(update: Mapping[str, Any]) -> tuple[str, str, str]:
    """Sender, text and update id of a message or a button tap."""
    message = update.get("message") or {}
    query = update.get("callback_query") or {}
    sender = (message.get("from") or query.get("from") or {}).get("id", "")
    body = message.get("text") or message.get("caption") or query.get("data") or ""
    return str(sender), str(body), str(update.get("update_id", ""))


async def telegram(request: web.Request) -> web.Response:
    update = await request.json()
    await _store(request, *_telegram_fields(update))
    return web.Response()


def make_app(engine: AsyncEngine) -> web.Application:
    app = web.Application()
    app[ENGINE] = engine
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/webhooks/whatsapp", whatsapp)
    app.router.add_post("/webhooks/telegram", telegram)
    return app


async def serve(port: int, database_url: str, *, create: bool = True) -> None:
    """Create the table afresh (unless another process did), answer on
    127.0.0.1:``port`` until SIGINT or SIGTERM."""
    database = Database(database_url)
    if create:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
            await connection.run_sync(metadata.create_all)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(make_app(database.engine), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        log.info("ceiling listening on 127.0.0.1:%d", port)
        await stop.wait()
    finally:
        await runner.cleanup()
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--keep-table",
        action="store_true",
        help="another process behind the same address created the table already",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.port, args.database_url, create=not args.keep_table))


if __name__ == "__main__":
    main()
