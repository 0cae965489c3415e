"""An app served as `tawasul serve` serves it (aiohttp's runner, handlers not cancelled when
a client leaves), with a client that keeps cookies for 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[aiohttp.ClientSession]:
    """``app`` on a free loopback port, and a client session whose URLs are relative to it.

    aiohttp's TestServer cancels a handler when its client goes away; `tawasul serve`
    does not (aiohttp's default), and what a route does then is what these tests see.
    """
    runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with session_for(f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        await runner.cleanup()


def session_for(base: str) -> aiohttp.ClientSession:
    """A browser-like client of ``base``: it keeps cookies for an IP address, Secure ones
    too (a server with an https public URL marks them so; tests reach it over http)."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    return aiohttp.ClientSession(base, cookie_jar=jar)
