"""Failover: two ``tawasul serve`` processes on one PostgreSQL database, follow-ups falling
due all the time, and the scheduler's leader killed with SIGKILL, a few times over.

A driver starts a new Telegram beneficiary's intake every ``EVERY`` seconds (greeting,
menu 1, the notice agreed, a name: a draft whose reminder is due ``REMINDER_AFTER``
later), sending to the processes in turn. Each round waits for one leader and one
standby, takes the leader out of the driver's turns, kills it and measures two figures
from the kill: when the survivor's ``/healthz`` says ``leader``, and when the first
follow-up it ran (an outbound proactive message stored after the kill: the standby runs
none and the dead process nothing) was accepted by the platform stand-in (its
``sent_at``). Then the killed process is started again and rejoins the turns as the
standby."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from bench.load import TELEGRAM, Beneficiary, Driver
from bench.proc import Server
from bench.runs import TAWASUL, Setup, running
from storage.db import normalize_url
from storage.models import Message, MessageKind

# A new intake every EVERY seconds, its reminder REMINDER_AFTER seconds after its name:
# follow-ups fall due about twice a second, so a gap is measured to within about 0.5 s.
EVERY = 0.5
REMINDER_AFTER = 1
# Greeting, menu option 1, the privacy notice agreed, a name: a draft with its first answer.
INTAKE_STEPS = 4
WAIT = 30.0  # seconds; a safety net, not a figure


@dataclass(frozen=True, slots=True)
class Round:
    """Seconds from the leader's SIGKILL to the survivor leading, and to its first
    follow-up accepted by the platform."""

    leader_after: float
    followup_after: float


@dataclass
class FailoverResult:
    """The rounds measured, and what the report says beside them."""

    rounds: list[Round]
    notes: list[str] = field(default_factory=list)
    twice: int = 0  # beneficiaries given their reminder more than once
    wall: float = 0.0

    def figures(self) -> dict[str, tuple[float, float]]:
        """Median and maximum of each figure, in seconds."""
        leader = [r.leader_after for r in self.rounds]
        followup = [r.followup_after for r in self.rounds]
        return {
            "new leader (/healthz)": (statistics.median(leader), max(leader)),
            "next follow-up sent": (statistics.median(followup), max(followup)),
        }


async def _role(http: aiohttp.ClientSession, server: Server) -> str:
    try:
        async with http.get(server.url + "/healthz", timeout=aiohttp.ClientTimeout(2)) as r:
            return str((await r.json()).get("scheduler", ""))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return ""


async def _roles(http: aiohttp.ClientSession, servers: list[Server]) -> list[str]:
    return [await _role(http, server) for server in servers]


async def _first_followup_sent(database_url: str, after: datetime) -> datetime | None:
    """When the first proactive message stored after ``after`` was accepted, if yet."""
    engine = create_async_engine(normalize_url(database_url))
    try:
        async with engine.connect() as connection:
            found: datetime | None = await connection.scalar(
                select(func.min(col(Message.sent_at))).where(
                    col(Message.direction) == "out",
                    col(Message.kind) == MessageKind.PROACTIVE,
                    col(Message.created_at) > after,
                    col(Message.sent_at).is_not(None),
                )
            )
            return found
    finally:
        await engine.dispose()


async def _reminded_twice(database_url: str) -> int:
    engine = create_async_engine(normalize_url(database_url))
    try:
        async with engine.connect() as connection:
            twice = (
                select(col(Message.identity_id))
                .where(col(Message.direction) == "out", col(Message.kind) == MessageKind.PROACTIVE)
                .group_by(col(Message.identity_id))
                .having(func.count() > 1)
                .subquery()
            )
            return int(await connection.scalar(select(func.count()).select_from(twice)) or 0)
    finally:
        await engine.dispose()


async def _intake(driver: Driver, person: Beneficiary) -> None:
    while not person.done and not driver.stopping:
        if not await driver.send(person):
            return  # sent to the process just killed: its draft may stay half-begun
        await asyncio.sleep(driver.think_time())


async def _feed(driver: Driver) -> None:
    """A new beneficiary's intake every ``EVERY`` seconds until the driver stops."""
    running_now: set[asyncio.Task[None]] = set()
    try:
        while not driver.stopping:
            task = asyncio.create_task(_intake(driver, driver.beneficiary(TELEGRAM)))
            running_now.add(task)
            task.add_done_callback(running_now.discard)
            await asyncio.sleep(EVERY)
    finally:
        for task in list(running_now):
            task.cancel()
        await asyncio.gather(*running_now, return_exceptions=True)


async def run(setup: Setup) -> FailoverResult:
    """``setup.failover_rounds`` kills of the leader, each measured (PostgreSQL only)."""
    if not setup.database_url:
        raise ValueError("the failover run needs PostgreSQL (--database-url)")
    two = replace(setup, processes=2)
    extra = {"followups": {"intake_reminder_after": f"{REMINDER_AFTER}s"}}
    started = time.perf_counter()
    result = FailoverResult([])
    async with (
        running(two, "failover", TAWASUL, extra) as (servers, target, recorder, url),
        aiohttp.ClientSession() as http,
        Driver(
            target,
            recorder,
            think=setup.think,
            reply_timeout=setup.reply_timeout,
            upto=INTAKE_STEPS,
        ) as driver,
    ):
        feeder = asyncio.create_task(_feed(driver))
        try:
            # Until reminders flow: three messages a think time apart, then the delay.
            await asyncio.sleep(INTAKE_STEPS * setup.think * 1.2 + REMINDER_AFTER + 2)
            for round_ in range(1, setup.failover_rounds + 1):
                deadline = time.perf_counter() + WAIT
                while sorted(roles := await _roles(http, servers.members)) != [
                    "leader",
                    "standby",
                ]:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"no leader and standby: {roles}")
                    await asyncio.sleep(0.1)
                index = roles.index("leader")
                leader, survivor = servers.members[index], servers.members[1 - index]
                driver.urls.remove(leader.url)  # the balancer notices at once
                leader.process.kill()
                killed_at, killed = datetime.now(UTC), time.perf_counter()
                await leader.process.wait()
                while await _role(http, survivor) != "leader":
                    if time.perf_counter() - killed > WAIT:
                        raise RuntimeError("no new leader")
                    await asyncio.sleep(0.05)
                leader_after = time.perf_counter() - killed
                while (sent := await _first_followup_sent(url, killed_at)) is None:
                    if time.perf_counter() - killed > WAIT:
                        raise RuntimeError("no follow-up sent after the kill")
                    await asyncio.sleep(0.05)
                result.rounds.append(Round(leader_after, (sent - killed_at).total_seconds()))
                if round_ == setup.failover_rounds:
                    break
                restarted = await servers.restart(index)
                driver.urls.append(restarted.url)
                await asyncio.sleep(2 * EVERY + 1)
        finally:
            driver.stopping = True
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        result.twice = await _reminded_twice(url)
        failed = {what: n for what, n in driver.tally.problems.items()}
        result.notes.append(
            f"a new Telegram intake every {EVERY:g} s, each draft's reminder due "
            f"{REMINDER_AFTER} s after its first answer (follow-ups due about every "
            f"{EVERY:g} s: the gap includes up to that much with nothing due); "
            f"{len(driver.tally.samples)} messages sent"
        )
        if failed:
            result.notes.append(
                "messages on their way to a killed process (a platform would send them "
                "again): " + ", ".join(f"{what}: {n}" for what, n in sorted(failed.items()))
            )
    result.wall = time.perf_counter() - started
    return result
