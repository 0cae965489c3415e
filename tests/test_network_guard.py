"""The suite's guard: nothing in a test reaches beyond this machine."""

from __future__ import annotations

import socket

import aiohttp
import pytest


def test_a_public_address_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="only loopback"), socket.socket() as sock:
        sock.connect(("203.0.113.7", 443))


async def test_a_public_name_fails_before_any_lookup() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AssertionError, match=r"api\.telegram\.org"):
            await session.get("https://api.telegram.org/")


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
