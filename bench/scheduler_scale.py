"""Scheduler scale run: many pending follow-ups, how long they take to plan, and the server's
start-up time and memory with them in the store.

``python -m bench.scheduler_scale [--database-url URL] [--jobs N]`` (SQLite in a temporary
directory by default; a PostgreSQL database given by URL has its public schema wiped).

1. Setup, not timed: ``jobs / 2`` signed requests (with their applicants and identities),
   as the intake would have stored them.
2. Timed (``create_seconds``): the product's own path, as a server filing them in bulk
   would take it: ``FollowUpPlanner.requests_filed`` (a ``decision_due`` days ahead and a
   ``checkin`` in a week per request) in transactions of ``BATCH`` requests, each followed
   by ``FollowUpScheduler.sync``; the clock stops when the job store holds them all.
3. ``tawasul serve`` on that database: seconds from spawn to ``GET /healthz`` answering 200
   (after the scheduler started and reconciled its jobs with the table), its peak memory
   (VmHWM), then whether every pending follow-up still has its job and none ran early. The
   same server on the empty database gives ``startup_seconds_empty`` and ``peak_mib_empty``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import col

from bench.proc import free_port, start_server, tawasul_command, write_config
from bot.followups import FollowUpDispatcher, FollowUpPlanner, FollowUpPolicy
from bot.scheduler import JOB_TABLE, FollowUpScheduler
from flows.lifecycle import SUBMITTED
from storage.db import Database
from storage.keyring import Keyring, new_key_text
from storage.models import (
    FOLLOWUP_PENDING,
    Beneficiary,
    ChannelIdentity,
    FollowUp,
    Message,
    SupportRequest,
)
from storage.repositories import reference_for

BATCH = 1_000  # requests per transaction while planning

# Personal data is encrypted (storage/keyring.py); PostgreSQL has no key file.
_KEY = new_key_text()
_KEYS = Keyring.from_text(_KEY)


async def run(database_url: str | None, workdir: Path, jobs: int = 100_000) -> dict[str, float]:
    """Plan ``jobs`` follow-ups (rounded up to two per request), then start a server on them."""
    url = database_url or f"sqlite:///{workdir / 'scale.db'}"
    # SQLite: the key file beside the database; PostgreSQL: this run's key.
    database = Database(url, keyring=None if database_url is None else _KEYS)
    try:
        if not database.is_sqlite:
            async with database.engine.begin() as connection:
                await connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
                await connection.exec_driver_sql("CREATE SCHEMA public")
        await database.upgrade()
        figures: dict[str, float] = {}
        figures["startup_seconds_empty"], figures["peak_mib_empty"] = await _serve(url, workdir)

        now = datetime.now(UTC)
        requests = await _file_requests(database, (jobs + 1) // 2, now)
        rows_seconds, create_seconds = await _plan(database, requests, now)
        figures |= {"jobs": 2 * len(requests), "create_seconds": create_seconds}
        figures["create_rows_seconds"] = rows_seconds
        figures["startup_seconds"], figures["peak_mib"] = await _serve(url, workdir)
        figures |= await _check(database, now)
        return figures
    finally:
        await database.dispose()


async def _file_requests(database: Database, count: int, now: datetime) -> list[SupportRequest]:
    """``count`` submitted requests, each of its own applicant and identity (not timed)."""
    requests = [
        SupportRequest(
            id=n,
            reference=reference_for(n),
            beneficiary_id=n,
            identity_id=n,
            channel="whatsapp",
            answers={"need": "food"},
            need="food",
            status=SUBMITTED,
            # Spread over the working fortnight, none due while the run lasts.
            decision_due_at=now + timedelta(days=3, minutes=n % 14_400),
            signed_at=now,
            signed_channel="whatsapp",
            created_at=now,
            updated_at=now,
        )
        for n in range(1, count + 1)
    ]
    people = [
        {"id": n, "national_id": f"1{n:09d}", "full_name": "x", "mobile": "+966500000000"}
        for n in range(1, count + 1)
    ]
    identities = [
        {"id": n, "channel": "whatsapp", "user_id": f"+9665{n:08d}", "beneficiary_id": n}
        for n in range(1, count + 1)
    ]
    async with database.session() as session, session.begin():
        await session.execute(insert(Beneficiary), [p | {"city": "riyadh"} for p in people])
        await session.execute(insert(ChannelIdentity), identities)
        await session.execute(insert(SupportRequest), [r.model_dump() for r in requests])
    return requests


async def _plan(
    database: Database, requests: list[SupportRequest], now: datetime
) -> tuple[float, float]:
    """Plan each request's follow-ups; seconds until the rows, and until the jobs, are in."""
    policy = FollowUpPolicy()
    planner = FollowUpPlanner(policy)
    scheduler = FollowUpScheduler(
        database, FollowUpDispatcher(database, policy), clock=lambda: datetime.now(UTC)
    )
    await scheduler.start()
    try:
        started = time.perf_counter()
        for first in range(0, len(requests), BATCH):
            async with database.session() as session, session.begin():
                keys = await planner.requests_filed(session, requests[first : first + BATCH], now)
            scheduler.sync(keys)
        rows = time.perf_counter() - started
        await scheduler.flush()
        return rows, time.perf_counter() - started
    finally:
        await scheduler.stop()


async def _serve(url: str, workdir: Path) -> tuple[float, float]:
    """Start ``tawasul serve`` on ``url``: seconds to its first healthy answer, peak MiB."""
    port = free_port()
    config = write_config(
        workdir / "tawasul.toml",
        {
            "server": {"port": port, "media_dir": str(workdir / "media")},
            "database": {"url": url},
            "organization": {"quiet_hours": "00:00-00:00"},
        },
    )
    key = {} if url.startswith("sqlite") else {"TAWASUL_PRIVACY__KEY": _KEY}
    server = await start_server(
        tawasul_command("serve", "--config", str(config)),
        f"http://127.0.0.1:{port}/healthz",
        cwd=workdir,
        env=key,
    )
    try:
        _, peak = server.memory_mib()
    finally:
        await server.stop()
    return server.started_in, peak


async def _check(database: Database, now: datetime) -> dict[str, float]:
    """Every pending follow-up still has its job, and nothing ran or was sent."""
    async with database.engine.connect() as connection:
        jobs = set(
            (await connection.exec_driver_sql(f"SELECT id FROM {JOB_TABLE}")).scalars().all()
        )
        pending = set(
            (
                await connection.execute(
                    select(col(FollowUp.key)).where(
                        col(FollowUp.status) == FOLLOWUP_PENDING, col(FollowUp.attempts) == 0
                    )
                )
            )
            .scalars()
            .all()
        )
        sent = await connection.scalar(select(func.count()).select_from(Message))
        early = await connection.scalar(
            select(func.count()).select_from(FollowUp).where(col(FollowUp.due_at) <= now)
        )
    return {
        "jobs_in_store_after_start": len(jobs),
        "followups_pending_after_start": len(pending),
        "jobs_matching_pending": len(jobs & pending),
        "due_during_run": early or 0,
        "messages_sent": sent or 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduler_scale", description=__doc__)
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is wiped)")
    parser.add_argument("--jobs", type=int, default=100_000, help="pending follow-ups to plan")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        figures: dict[str, Any] = asyncio.run(run(args.database_url, workdir, args.jobs))
    print(json.dumps({key: round(value, 3) for key, value in figures.items()}, indent=2))


if __name__ == "__main__":
    main()
