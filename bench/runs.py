"""The benchmark's runs: each starts its own server on a fresh database, loads it, measures."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load import (
    TELEGRAM,
    Driver,
    Stage,
    Target,
    closed_loop,
    driver_cpu_seconds,
    open_loop,
    stop_tasks,
)
from bench.proc import Server, free_port, start_server, tawasul_command, write_config
from bench.standins import Recorder, StandIns
from storage.db import normalize_url
from storage.keyring import new_key_text

REPO = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "b7" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
BOT_TOKEN = "7000000001:AAH-bench-telegram-token_0123456789"
WEBHOOK_SECRET = "bench-webhook-secret"
# Stand-ins and driver are on loopback: allow far more than real platforms would.
UNLIMITED_RATE = 100_000
TAWASUL, CEILING, PTB = "tawasul", "ceiling", "ptb"
# A window whose p99 (ack or reply) is slower than this is not a sustained rate.
SUSTAINED_P99_MS = 5000.0


@dataclass(frozen=True, slots=True)
class Setup:
    """What every run shares: where to work, which database, how long and how hard."""

    workdir: Path
    database_url: str | None
    quick: bool
    duration: float
    think: float
    steps: tuple[int, ...]
    latency_rate: float
    conversations: int
    conversations_rate: float
    jobs: int
    reply_timeout: float = 30.0

    @property
    def warmup(self) -> float:
        return max(2 * self.think, 3.0) if self.quick else max(2 * self.think, 5.0)


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p95: float
    p99: float


@dataclass(frozen=True, slots=True)
class Window:
    """The figures of one measured window."""

    label: str
    beneficiaries: int
    rate: float
    ack: Percentiles | None
    reply: Percentiles | None
    errors: int
    sent: int


@dataclass
class RunResult:
    """One run, as the report shows it; ``best`` is the window its headline figures come from."""

    name: str
    system: str
    load: str
    best: Window
    windows: list[Window]
    errors: int
    lost: int | None
    peak_mib: float
    server_cpu: float
    driver_cpu: float
    wall: float
    startup: float
    notes: list[str] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)


def percentiles(values: Sequence[float]) -> Percentiles | None:
    """Nearest-rank p50/p95/p99 of ``values`` (seconds) in milliseconds; None when empty."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))] * 1000

    return Percentiles(rank(0.50), rank(0.95), rank(0.99))


def window_figures(driver: Driver, stage: Stage, beneficiaries: int) -> Window:
    """The figures of the messages sent within ``stage``."""
    inside = [s for s in driver.tally.samples if stage.start <= s.sent < stage.end]
    acked = [s for s in inside if s.status == 200]
    replied = [s.replied - s.sent for s in acked if not math.isnan(s.replied)]
    errors = sum(1 for s in inside if s.failed)
    return Window(
        stage.label,
        beneficiaries,
        len(acked) / (stage.end - stage.start),
        percentiles([s.acked - s.sent for s in acked]),
        percentiles(replied),
        errors,
        len(inside),
    )


async def settled(driver: Driver, stage: Stage) -> None:
    """Wait (the load going on) until every message sent in ``stage`` was answered or failed."""
    deadline = time.perf_counter() + driver.reply_timeout + 1
    pending = [s for s in driver.tally.samples if stage.start <= s.sent < stage.end]
    while time.perf_counter() < deadline:
        pending = [s for s in pending if not s.done]
        if not pending:
            return
        await asyncio.sleep(0.2)


async def reset_database(url: str) -> None:
    """PostgreSQL only: drop every table (the whole ``public`` schema) for an empty start."""
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def count_rows(url: str, query: str) -> dict[str, int]:
    """``query``'s rows as {first column: second column}."""
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(query))).all()
        return {str(row[0]): int(row[1]) for row in rows}
    finally:
        await engine.dispose()


def server_command(system: str, workdir: Path, port: int, database_url: str, api: str) -> list[str]:
    """The command line that starts ``system`` listening on ``port``."""
    if system == CEILING:
        return [
            *(sys.executable, "-m", "bench.ceiling", "--port", str(port)),
            *("--database-url", database_url),
        ]
    if system == PTB:
        data = workdir / "ptb"
        data.mkdir(exist_ok=True)
        return [
            *(sys.executable, "-m", "bench.ptb_baseline", "--port", str(port)),
            *("--token", BOT_TOKEN, "--webhook-secret", WEBHOOK_SECRET),
            *("--api-base-url", api, "--data-dir", str(data)),
        ]
    public_url = f"http://127.0.0.1:{port}"
    config = write_config(
        workdir / "config.toml",
        {
            "database": {"url": database_url},
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "public_url": public_url,
                "media_dir": str(workdir / "media"),
            },
            "organization": {"quiet_hours": "00:00-00:00"},
            "telegram": {
                "token": BOT_TOKEN,
                "webhook_secret": WEBHOOK_SECRET,
                "api_base_url": api,
                "messages_per_second": UNLIMITED_RATE,
            },
            "whatsapp": {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from_number": "+966550000000",
                "api_base_url": api,
                "messages_per_second": UNLIMITED_RATE,
            },
        },
    )
    return tawasul_command("serve", "--config", str(config))


@asynccontextmanager
async def running(
    setup: Setup, name: str, system: str
) -> AsyncIterator[tuple[Server, Target, Recorder, str]]:
    """Stand-ins, then ``system`` on a fresh database in its own directory; stopped after."""
    workdir = setup.workdir / name
    workdir.mkdir(parents=True)
    database_url = setup.database_url or f"sqlite:///{workdir / 'tawasul.db'}"
    if setup.database_url:
        await reset_database(setup.database_url)
    recorder = Recorder()
    standins = StandIns(recorder, ACCOUNT_SID, BOT_TOKEN)
    await standins.start()
    try:
        port = free_port()
        command = server_command(system, workdir, port, database_url, standins.base_url)
        url = f"http://127.0.0.1:{port}"
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        environment = {"PYTHONPATH": pythonpath}
        if setup.database_url:  # PostgreSQL has no key file: the run's own key
            environment["TAWASUL_PRIVACY__KEY"] = new_key_text()
        server = await start_server(command, url + "/healthz", cwd=workdir, env=environment)
        try:
            target = Target(url, url, AUTH_TOKEN, ACCOUNT_SID, WEBHOOK_SECRET)
            yield server, target, recorder, database_url
        finally:
            await server.stop()
    finally:
        await standins.close()


async def quiet(recorder: Recorder, *, still: float = 1.0, most: float = 15.0) -> None:
    """Wait until no reply has arrived for ``still`` seconds (at most ``most``)."""
    deadline = time.perf_counter() + most
    seen = -1
    while time.perf_counter() < deadline and recorder.total() != seen:
        seen = recorder.total()
        await asyncio.sleep(still)


async def lost_messages(
    system: str, database_url: str, driver: Driver, notes: list[str]
) -> int | None:
    """Acknowledged but not stored, plus (Tawasul) replies still unsent or failed."""
    acked = sum(1 for s in driver.tally.samples if s.status == 200)
    if system == PTB:
        notes.append("lost: not counted (PicklePersistence keeps no message log)")
        return None
    if system == CEILING:
        rows = await count_rows(database_url, "SELECT 'in', count(*) FROM ceiling_inbound")
        notes.append(f"stored {rows.get('in', 0)} of {acked} acknowledged")
        return max(0, acked - rows.get("in", 0))
    directions = await count_rows(
        database_url, "SELECT direction, count(*) FROM message GROUP BY direction"
    )
    outbound = await count_rows(
        database_url,
        "SELECT status, count(*) FROM message WHERE direction = 'out' GROUP BY status",
    )
    stored = directions.get("in", 0)
    unsent = sum(n for status, n in outbound.items() if status not in ("sent", "delivered", "read"))
    notes.append(
        f"stored {stored} inbound of {acked} acknowledged; outbound by status: "
        + ", ".join(f"{status} {n}" for status, n in sorted(outbound.items()))
    )
    return max(0, acked - stored) + unsent


async def measure(
    setup: Setup,
    name: str,
    system: str,
    load: str,
    drive: Any,
    *,
    wait_replies: bool = True,
    upto: int | None = None,
) -> RunResult:
    """Start ``system``, run ``drive(driver) -> (windows, best)``, then count what was lost."""
    async with running(setup, name, system) as (server, target, recorder, database_url):
        notes: list[str] = []
        async with Driver(
            target,
            recorder,
            wait_replies=wait_replies,
            think=setup.think,
            reply_timeout=setup.reply_timeout,
            upto=upto,
        ) as driver:
            server.mark_cpu()
            cpu_before, started = driver_cpu_seconds(), time.perf_counter()
            windows, best = await drive(driver)
            if wait_replies:
                await quiet(recorder)
            wall = time.perf_counter() - started
            driver_cpu = driver_cpu_seconds() - cpu_before
            server_cpu = server.cpu_since_mark()
            _now, peak = server.memory_mib()
        tally = driver.tally
        lost = await lost_messages(system, database_url, driver, notes)
        notes.append(
            f"conversations: {tally.conversations_finished} finished, "
            f"{tally.conversations_broken} broken; {len(tally.samples)} messages sent"
        )
        if tally.open_loop_missed:
            notes.append(f"open loop: {tally.open_loop_missed} sends fell due with nobody ready")
        if driver_cpu / wall > 0.9:
            notes.append("the driver used over 90% of a core: it may be the bottleneck")
        return RunResult(
            name,
            system,
            load,
            best,
            windows,
            sum(tally.problems.values()),
            lost,
            peak,
            server_cpu,
            driver_cpu,
            wall,
            server.started_in,
            notes,
            dict(tally.problems),
        )


def sustained(window: Window) -> bool:
    """No errors, and p99 (ack and reply) within ``SUSTAINED_P99_MS``."""
    slowest = max((p.p99 for p in (window.ack, window.reply) if p is not None), default=0.0)
    return window.errors == 0 and slowest <= SUSTAINED_P99_MS


async def stepped(setup: Setup, driver: Driver, mix: str) -> tuple[list[Window], Window]:
    """Closed loop, adding beneficiaries step by step until throughput stops growing (under
    10% more) or a window is not ``sustained``; the best window is the fastest sustained one."""
    tasks: list[asyncio.Task[None]] = []
    windows: list[Window] = []
    try:
        for population in setup.steps:
            tasks += await closed_loop(driver, mix, population - len(tasks))
            start = time.perf_counter() + setup.warmup
            await asyncio.sleep(setup.warmup + setup.duration)
            stage = Stage(f"N={population}", start, start + setup.duration)
            await settled(driver, stage)
            window = window_figures(driver, stage, population)
            windows.append(window)
            previous = max((w.rate for w in windows[:-1]), default=0.0)
            if not sustained(window) or window.rate < 1.1 * previous:
                break
    finally:
        await stop_tasks(driver, tasks)
    clean = [w for w in windows if sustained(w)] or windows
    return windows, max(clean, key=lambda w: w.rate)


async def paced(setup: Setup, driver: Driver, mix: str, rate: float) -> tuple[list[Window], Window]:
    """Open loop at ``rate`` for the warm-up plus the duration, across enough beneficiaries."""
    population = max(50, int(rate * (setup.think * 1.2 + 1.0) * 2))
    started = time.perf_counter()
    await open_loop(driver, mix, rate, population=population, seconds=setup.warmup + setup.duration)
    stage = Stage(
        f"{rate:g} msg/s", started + setup.warmup, started + setup.warmup + setup.duration
    )
    window = window_figures(driver, stage, population)
    return [window], window


async def held(setup: Setup, driver: Driver) -> tuple[list[Window], Window]:
    """Bring ``setup.conversations`` beneficiaries into the intake (greeting, then menu 1:
    each is then asked for a name, with a draft stored) at ``setup.conversations_rate``
    messages a second, a rate the server keeps up with: the figure is its memory."""
    started = time.perf_counter()
    rate = setup.conversations_rate
    taken = await open_loop(
        driver, "mixed", rate, population=setup.conversations, seconds=None, recycle=False
    )
    stage = Stage(f"{setup.conversations} conversations", started, started + taken)
    window = window_figures(driver, stage, setup.conversations)
    return [window], window


RUNS = ("ceiling", "mixed", "latency", "telegram", "ptb", "conversations", "scheduler")


async def run_one(setup: Setup, name: str) -> RunResult | dict[str, float] | None:
    """One named run (see ``RUNS``); None when its reference implementation is missing."""
    if name == "ceiling":
        if not (REPO / "bench" / "ceiling.py").exists():
            return None
        return await measure(
            setup,
            name,
            CEILING,
            "closed loop, half WhatsApp half Telegram, no replies",
            lambda d: stepped(setup, d, "mixed"),
            wait_replies=False,
        )
    if name == "mixed":
        return await measure(
            setup,
            name,
            TAWASUL,
            "closed loop, half WhatsApp half Telegram",
            lambda d: stepped(setup, d, "mixed"),
        )
    if name == "latency":
        return await measure(
            setup,
            name,
            TAWASUL,
            f"open loop at {setup.latency_rate:g} msg/s, half WhatsApp half Telegram",
            lambda d: paced(setup, d, "mixed", setup.latency_rate),
        )
    if name in ("telegram", "ptb"):
        if name == "ptb" and not (REPO / "bench" / "ptb_baseline.py").exists():
            return None
        return await measure(
            setup,
            name,
            PTB if name == "ptb" else TAWASUL,
            "closed loop, Telegram only",
            lambda d: stepped(setup, d, TELEGRAM),
        )
    if name == "conversations":
        return await measure(
            setup,
            name,
            TAWASUL,
            f"{setup.conversations} beneficiaries left mid-intake, "
            f"open loop at {setup.conversations_rate:g} msg/s",
            lambda d: held(setup, d),
            upto=2,
        )
    if name == "scheduler":
        try:
            from bench import scheduler_scale
        except ImportError:
            return None
        workdir = setup.workdir / name
        workdir.mkdir(parents=True)
        return await scheduler_scale.run(setup.database_url, workdir, setup.jobs)
    raise ValueError(f"unknown run {name}")
