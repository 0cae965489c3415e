"""The benchmark's runs: each starts its own server on a fresh database, loads it, measures."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url, text
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
from bench.proc import (
    Server,
    cpu_seconds,
    free_port,
    start_server,
    tawasul_command,
    write_config,
)
from bench.standins import Recorder, StandIns
from storage.db import normalize_url
from storage.keyring import new_key_text

if TYPE_CHECKING:
    from bench.failover import FailoverResult

REPO = Path(__file__).resolve().parent.parent
ACCOUNT_SID = "AC" + "b7" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
BOT_TOKEN = "7000000001:AAH-bench-telegram-token_0123456789"
WEBHOOK_SECRET = "bench-webhook-secret"
# Stand-ins and driver are on loopback: allow far more than real platforms would.
UNLIMITED_RATE = 100_000
TAWASUL, CEILING, PTB, PTB_DURABLE = "tawasul", "ceiling", "ptb", "ptb, durable"
# PicklePersistence's default flush interval; a run shortens it so that each measured
# window includes at least ``FLUSHES_PER_WINDOW`` flushes.
PTB_FLUSH_DEFAULT = 60.0
FLUSHES_PER_WINDOW = 2.5
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
    # ``tawasul serve`` processes behind the driver (PostgreSQL only; the ceiling too)
    processes: int = 1
    failover_rounds: int = 5

    @property
    def ptb_flush(self) -> float:
        """Seconds between PicklePersistence's writes: PTB's 60 s, or less so that a
        measured window includes at least two of them."""
        return min(PTB_FLUSH_DEFAULT, self.duration / FLUSHES_PER_WINDOW)

    def against_ptb(self) -> Setup:
        """The Telegram runs' setup: windows long enough for two of PicklePersistence's
        flushes at PTB's default interval (150 s), unless a quick run."""
        if self.quick:
            return self
        return replace(self, duration=max(self.duration, FLUSHES_PER_WINDOW * PTB_FLUSH_DEFAULT))

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
    processes: int = 1
    handled: int = 0  # messages acknowledged in the whole run
    database_cpu: float | None = None  # PostgreSQL's backends, when on this machine


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


def server_command(
    system: str,
    workdir: Path,
    port: int,
    database_url: str,
    api: str,
    *,
    public_url: str = "",
    first: bool = True,
    ptb_flush: float = PTB_FLUSH_DEFAULT,
    extra: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """The command line that starts ``system`` listening on ``port``; ``public_url`` is the
    one address of several processes (``first`` the one that creates the ceiling's table)."""
    if system == CEILING:
        return [
            *(sys.executable, "-m", "bench.ceiling", "--port", str(port)),
            *("--database-url", database_url),
            *(() if first else ("--keep-table",)),
        ]
    if system in (PTB, PTB_DURABLE):
        data = workdir / "ptb"
        data.mkdir(exist_ok=True)
        return [
            *(sys.executable, "-m", "bench.ptb_baseline", "--port", str(port)),
            *("--token", BOT_TOKEN, "--webhook-secret", WEBHOOK_SECRET),
            *("--api-base-url", api, "--data-dir", str(data)),
            *("--flush-interval", f"{ptb_flush:g}"),
            *(("--persist-every-update",) if system == PTB_DURABLE else ()),
        ]
    public_url = public_url or f"http://127.0.0.1:{port}"
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
            **(extra or {}),
        },
    )
    return tawasul_command("serve", "--config", str(config))


@dataclass
class Servers:
    """The processes of one run behind one address: their CPU summed, memory per process."""

    members: list[Server] = field(default_factory=list)
    # How each was started (command, folder, environment), to start it again.
    launches: list[tuple[list[str], Path, dict[str, str]]] = field(default_factory=list)

    async def restart(self, index: int) -> Server:
        """Start the ``index``-th process again (after it died), as it was started."""
        command, folder, environment = self.launches[index]
        health = self.members[index].url + "/healthz"
        server = await start_server(command, health, cwd=folder, env=environment)
        self.members[index] = server
        return server

    @property
    def started_in(self) -> float:
        return max((s.started_in for s in self.members), default=0.0)

    def mark_cpu(self) -> None:
        for server in self.members:
            server.mark_cpu()

    def cpu_since_mark(self) -> float:
        return sum(server.cpu_since_mark() for server in self.members)

    def memory_mib(self) -> tuple[float, float]:
        """The largest process's resident memory now and at its peak."""
        figures = [server.memory_mib() for server in self.members]
        return max((f[0] for f in figures), default=0.0), max((f[1] for f in figures), default=0.0)

    async def stop(self) -> None:
        for server in self.members:
            await server.stop()


def is_local(database_url: str) -> bool:
    """Whether the database server runs on this machine (its CPU can be read in /proc)."""
    host = make_url(normalize_url(database_url)).host
    return host in (None, "", "127.0.0.1", "localhost", "::1")


async def backend_cpu(database_url: str) -> dict[int, float]:
    """PostgreSQL only: CPU seconds used so far by each backend connected to this database."""
    engine = create_async_engine(normalize_url(database_url))
    try:
        async with engine.connect() as connection:
            pids = (
                await connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            ).scalars()
            return {int(pid): cpu_seconds(int(pid)) for pid in pids}
    finally:
        await engine.dispose()


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends alive at the end used since ``before`` (a backend born
    meanwhile from zero; one that ended meanwhile is not counted)."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


@asynccontextmanager
async def running(
    setup: Setup, name: str, system: str, extra: dict[str, dict[str, Any]] | None = None
) -> AsyncIterator[tuple[Servers, Target, Recorder, str]]:
    """Stand-ins, then ``system`` on a fresh database in its own directory (with
    ``setup.processes`` processes behind one address, the PTB baseline always one);
    stopped after."""
    workdir = setup.workdir / name
    workdir.mkdir(parents=True)
    database_url = setup.database_url or f"sqlite:///{workdir / 'tawasul.db'}"
    if setup.database_url:
        await reset_database(setup.database_url)
    recorder = Recorder()
    standins = StandIns(recorder, ACCOUNT_SID, BOT_TOKEN)
    await standins.start()
    servers = Servers()
    try:
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        environment = {"PYTHONPATH": pythonpath}
        if setup.database_url:  # PostgreSQL has no key file: the run's own key, shared
            environment["TAWASUL_PRIVACY__KEY"] = new_key_text()
        count = 1 if system in (PTB, PTB_DURABLE) else setup.processes
        public_url = ""
        for n in range(count):
            folder = workdir if count == 1 else workdir / f"p{n}"
            folder.mkdir(exist_ok=True)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            public_url = public_url or url
            command = server_command(
                system,
                folder,
                port,
                database_url,
                standins.base_url,
                public_url=public_url,
                first=n == 0,
                ptb_flush=setup.ptb_flush,
                extra=extra,
            )
            # One after the other: the first brings the schema up to date.
            server = await start_server(command, url + "/healthz", cwd=folder, env=environment)
            servers.members.append(server)
            servers.launches.append((command, folder, environment))
        urls = [server.url for server in servers.members]
        target = Target(
            urls[0], public_url, AUTH_TOKEN, ACCOUNT_SID, WEBHOOK_SECRET, tuple(urls[1:])
        )
        yield servers, target, recorder, database_url
    finally:
        await servers.stop()
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
    if system in (PTB, PTB_DURABLE):
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
    unanswered = await count_rows(
        database_url,
        "SELECT 'queued', count(*) FROM message WHERE direction = 'in' AND status = 'queued'",
    )
    stored = directions.get("in", 0)
    queued = unanswered.get("queued", 0)  # stored, acknowledged, its turn never taken
    unsent = sum(n for status, n in outbound.items() if status not in ("sent", "delivered", "read"))
    notes.append(
        f"stored {stored} inbound of {acked} acknowledged ({queued} never answered); "
        "outbound by status: "
        + ", ".join(f"{status} {n}" for status, n in sorted(outbound.items()))
    )
    return max(0, acked - stored) + queued + unsent


async def measure(
    setup: Setup,
    name: str,
    system: str,
    load: str,
    drive: Any,
    *,
    wait_replies: bool = True,
    upto: int | None = None,
    notes: Sequence[str] = (),
) -> RunResult:
    """Start ``system``, run ``drive(driver) -> (windows, best)``, then count what was lost."""
    async with running(setup, name, system) as (server, target, recorder, database_url):
        notes = list(notes)
        watch_database = (
            setup.database_url is not None
            and system != PTB
            and system != PTB_DURABLE
            and is_local(setup.database_url)
        )
        backends = await backend_cpu(database_url) if watch_database else {}
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
            database_cpu = (
                cpu_used(backends, await backend_cpu(database_url)) if watch_database else None
            )
            _now, peak = server.memory_mib()
            if len(server.members) > 1:
                notes.append(
                    f"{len(server.members)} processes behind one address, the driver's "
                    "messages to each in turn; server CPU is theirs together, peak MiB the "
                    "largest one's ("
                    + ", ".join(f"{s.memory_mib()[1]:.0f}" for s in server.members)
                    + " MiB)"
                )
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
            len(server.members),
            sum(1 for s in tally.samples if s.status == 200),
            database_cpu,
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


RUNS = (
    "ceiling",
    "mixed",
    "latency",
    "telegram",
    "ptb",
    "ptb_durable",
    "conversations",
    "scheduler",
    "failover",
)
# What ``python -m bench`` runs unless told (``--only``): the failover needs PostgreSQL.
DEFAULT_RUNS = RUNS[:-1]


def ptb_notes(setup: Setup, durable: bool) -> list[str]:
    """What the reader must know beside a PTB figure: when its state reaches the disk."""
    if durable:
        return [
            "durable: the pickle written after every update (a handler in group 1 calls "
            "Application.update_persistence), the durability Tawasul gives (it stores the "
            "message before it acknowledges, the state and the reply before it sends it)"
        ]
    flush = setup.ptb_flush
    if flush < PTB_FLUSH_DEFAULT:
        when = (
            f"PicklePersistence flushed every {flush:g} s instead of PTB's default "
            f"{PTB_FLUSH_DEFAULT:g} s, so that each {setup.duration:g} s window includes at "
            "least two flushes"
        )
    else:
        when = f"PicklePersistence flushed every {flush:g} s (PTB's default)"
    return [
        f"{when}; between flushes the conversations are only in memory: with the default, "
        "a crash loses up to a minute of them"
    ]


async def run_one(setup: Setup, name: str) -> RunResult | dict[str, float] | FailoverResult | None:
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
    if name in ("telegram", "ptb", "ptb_durable"):
        setup = setup.against_ptb()
    if name == "telegram":
        return await measure(
            setup,
            name,
            TAWASUL,
            "closed loop, Telegram only",
            lambda d: stepped(setup, d, TELEGRAM),
        )
    if name in ("ptb", "ptb_durable"):
        if not (REPO / "bench" / "ptb_baseline.py").exists():
            return None
        durable = name == "ptb_durable"
        return await measure(
            setup,
            name,
            PTB_DURABLE if durable else PTB,
            "closed loop, Telegram only",
            lambda d: stepped(setup, d, TELEGRAM),
            notes=ptb_notes(setup, durable),
        )
    if name == "conversations":
        return await measure(
            setup,
            name,
            TAWASUL,
            f"{setup.conversations} beneficiaries left mid-intake, "
            f"open loop at {setup.conversations_rate:g} msg/s",
            lambda d: held(setup, d),
            upto=3,  # greeting, menu, consent: at the name question
        )
    if name == "scheduler":
        try:
            from bench import scheduler_scale
        except ImportError:
            return None
        workdir = setup.workdir / name
        workdir.mkdir(parents=True)
        return await scheduler_scale.run(setup.database_url, workdir, setup.jobs)
    if name == "failover":
        from bench import failover

        return await failover.run(setup)
    raise ValueError(f"unknown run {name}")
