"""2,000 web chat visitors holding polls on a real `tawasul serve` leave /healthz answering."""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from channels import eventually
from test_cli import free_port, tawasul_command

from bot.server import SPARE_FILES
from handlers.webchat import COOKIE, MAX_POLLS

VISITORS = 2_000
# The usual default soft limit, which 1,100 held polls used to exhaust.
LOW_SOFT_LIMIT = 1024


def _low_soft_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))


def _wait_for_healthz(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (ConnectionError, urllib.error.URLError):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "tawasul serve did not answer"
            time.sleep(0.2)


async def test_2000_held_polls_leave_healthz_answering(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * VISITORS + 1000:
        pytest.skip(f"the hard open-file limit ({hard}) is too low for this test")
    if soft != resource.RLIM_INFINITY and soft < VISITORS + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * VISITORS + 1000), hard))
    # The server raises its soft limit to the hard one, then holds what that allows.
    cap = MAX_POLLS if hard == resource.RLIM_INFINITY else min(MAX_POLLS, (hard - SPARE_FILES) // 2)
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    environment |= {
        "TAWASUL_SERVER__PORT": str(port),
        "TAWASUL_DATABASE__URL": f"sqlite:///{tmp_path / 'tawasul.db'}",
    }
    process = await asyncio.to_thread(
        subprocess.Popen,
        [*tawasul_command(), "serve"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_low_soft_limit,
    )
    statuses: list[int] = []
    try:
        await asyncio.to_thread(_wait_for_healthz, process, port)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(
            f"http://127.0.0.1:{port}", connector=connector, timeout=timeout
        ) as client:

            async def visitor() -> None:
                # A browser: polls again when answered, stops when told the server is full.
                cookie = {"Cookie": f"{COOKIE}={secrets.token_urlsafe(32)}"}
                while True:
                    async with client.get("/api/chat/messages", headers=cookie) as response:
                        await response.read()
                        statuses.append(response.status)
                        if response.status != 200:
                            return

            visitors = [asyncio.create_task(visitor()) for _ in range(VISITORS)]
            try:
                await eventually(
                    lambda: statuses.count(503) >= VISITORS - cap, "the polls over the cap", 180
                )
                held = sum(not task.done() for task in visitors)
                assert held >= cap // 2, held  # polls really are held meanwhile
                async with client.get("/healthz") as health:
                    assert health.status == 200
                    assert await health.json() == {"status": "ok", "scheduler": "leader"}
                async with client.get("/chat") as page:
                    assert page.status == 200
            finally:
                for task in visitors:
                    task.cancel()
                await asyncio.gather(*visitors, return_exceptions=True)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)
    assert process.returncode == 0, stderr
    assert set(statuses) <= {200, 503}, set(statuses)
    assert "Traceback" not in stderr
    assert stderr.count("polls open, refusing more") == 1  # logged once, not per poll
