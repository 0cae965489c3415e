"""The clock behind follow-ups: APScheduler wakes the dispatcher, the ``followup`` table is truth.

One APScheduler job per pending follow-up, its id the follow-up's key, in a
persistent ``SQLAlchemyJobStore``: the table ``apscheduler_jobs`` in the project's
own database, which APScheduler creates at start (it is not ours, so not Alembic's).
What shapes this module (see DESIGN.md, "Facts that shape the design"):

- APScheduler deletes a one-shot job when it starts running it, so a crash during a
  run loses the job. The row stays pending, and start-up reconciles the two: every
  pending follow-up without a job gets one (due ones run at once, once: coalesced,
  no misfire limit) and every job without a pending follow-up goes.
- The job store is synchronous and blocks the event loop on each access. Jobs are
  written by a background task in a worker thread after the commit, never inside a
  webhook, and only when a matter changes (see ``FollowUpPlanner``), not per message.
  APScheduler still reads the store in the event loop when it wakes (one indexed
  query per wake-up).
- The job store belongs to one process. The command line (``requests set-status``)
  writes follow-ups but never touches it; a sweep every ``sweep_seconds`` runs what
  is due and has no job here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from bot.followups import FollowUpDispatcher
from storage.db import Database
from storage.models import FOLLOWUP_PENDING
from storage.repositories import FollowUpRepository

log = logging.getLogger(__name__)

JOB_STORE = "followups"
JOB_TABLE = "apscheduler_jobs"
SWEEP_SECONDS = 60.0
# A job whose time differs from its row's by less than this is left alone at start-up.
_SAME_TIME = timedelta(seconds=1)

# The scheduler running in this process, for the job function (jobs are pickled into the
# job store, so they name a module-level function and the key, nothing else).
_running: FollowUpScheduler | None = None


async def run_followup(key: str) -> None:
    """What every follow-up's job calls: carry out the follow-up ``key``."""
    scheduler = _running
    if scheduler is None:  # a job left from a scheduler that has stopped
        log.warning("follow-up %s woke with no scheduler running", key)
        return
    await scheduler.run_job(key)


def job_store_url(database_url: str) -> str | None:
    """The project's database with a synchronous driver, for the job store.

    ``sqlite+aiosqlite:///x.db`` becomes ``sqlite:///x.db`` and ``postgresql+asyncpg://``
    becomes ``postgresql+psycopg://`` (asyncpg's ``ssl`` back to libpq's ``sslmode``).
    None for an in-memory SQLite database, which another connection cannot see.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        return url.set(drivername="sqlite").render_as_string(hide_password=False)
    query = dict(url.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    url = url.set(drivername="postgresql+psycopg", query=query)
    return url.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # The web server writes to the same file: wait for it rather than fail.
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class FollowUpScheduler:
    """APScheduler with one job per pending follow-up, kept in line with the table.

    Args:
        dispatcher: what a job does (``FollowUpDispatcher.run``).
        clock: "now" for the dispatcher; APScheduler itself keeps the wall clock.
        sweep_seconds: how often to run whatever is due without a job here.
    """

    def __init__(
        self,
        database: Database,
        dispatcher: FollowUpDispatcher,
        *,
        clock: Callable[[], datetime],
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self._db = database
        self.dispatcher = dispatcher
        self._clock = clock
        self._sweep_seconds = sweep_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()  # one follow-up at a time: a job and the sweep may meet
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        """Open the job store, reconcile it with the table, then start the clock."""
        global _running
        if _running is not None:
            # Jobs name a function, not a scheduler: one scheduler per process.
            log.warning("another follow-up scheduler runs in this process; its jobs come here")
        url = job_store_url(self._db.url)
        if url is None:
            store: Any = MemoryJobStore()
            log.warning("in-memory database: follow-up jobs are not kept across restarts")
        else:
            self._engine = create_engine(
                url, hide_parameters=True, pool_pre_ping=not self._db.is_sqlite
            )
            if self._db.is_sqlite:
                event.listen(self._engine, "connect", _sqlite_pragmas)
            store = SQLAlchemyJobStore(engine=self._engine, tablename=JOB_TABLE)
        scheduler = AsyncIOScheduler(timezone=UTC, jobstores={JOB_STORE: store})
        # Paused: nothing runs before the job store agrees with the table. Creates the
        # job store's table when it is missing (a blocking moment, once).
        scheduler.start(paused=True)
        scheduler.add_job(
            self._sweep,
            IntervalTrigger(seconds=self._sweep_seconds, timezone=UTC),
            id="followup-sweep",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler = scheduler
        _running = self
        try:
            await self.reconcile()
        except Exception:
            log.exception("follow-up jobs not reconciled; the sweep runs what is due")
        self._stopping = False
        self._worker = asyncio.create_task(self._work(), name="followup-jobs")
        scheduler.resume()

    async def stop(self) -> None:
        """Stop the clock; jobs already committed are written first (briefly)."""
        global _running
        worker, self._worker = self._worker, None
        if worker is not None:
            self._stopping = True
            self._wake.set()  # the worker writes what is left, then ends
            try:
                await asyncio.wait_for(worker, 5)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("follow-up jobs not all written at stop; the next start reconciles")
        scheduler, self._scheduler = self._scheduler, None
        if _running is self:
            _running = None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def sync(self, keys: Iterable[str]) -> None:
        """After a commit: bring these follow-ups' jobs in line with their rows.

        Returns at once; a background task writes the job store. Order does not matter:
        the task reads each row as it is when it writes. Nothing happens when the
        scheduler is not running (start-up reconciles).
        """
        if self._scheduler is None:
            return
        before = len(self._dirty)
        self._dirty.update(keys)
        if len(self._dirty) > before:
            self._wake.set()

    async def run_job(self, key: str) -> None:
        """A job woke for ``key`` (APScheduler removed the one-shot job already)."""
        await self._run(key, self._clock(), from_job=True)

    async def run_due(self, now: datetime | None = None) -> int:
        """Run every pending follow-up due at ``now`` (default: the clock), soonest first.

        The same code as each job runs; the sweep calls it, and tests call it with the
        time they choose. Returns how many were run.
        """
        now = now or self._clock()
        async with self._db.session() as session:
            keys = [row.key for row in await FollowUpRepository(session).pending(due_by=now)]
        for key in keys:
            await self._run(key, now, from_job=False)
        return len(keys)

    async def reconcile(self) -> None:
        """Every pending follow-up gets its job, at its time; every other job goes."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        async with self._db.session() as session:
            rows = {r.key: r.due_at for r in await FollowUpRepository(session).pending()}
        jobs = await self.jobs()
        plan: list[tuple[str, datetime | None]] = [
            (key, due)
            for key, due in rows.items()
            if key not in jobs or abs(jobs[key] - due) > _SAME_TIME
        ]
        plan += [(key, None) for key in jobs if key not in rows]
        if plan:
            await asyncio.to_thread(self._write, scheduler, plan)
        log.info(
            "follow-ups: %d pending, %d job(s) set, %d removed",
            len(rows),
            sum(1 for _, due in plan if due is not None),
            sum(1 for _, due in plan if due is None),
        )

    async def jobs(self) -> dict[str, datetime]:
        """The follow-up jobs in the job store: key -> next run time."""
        scheduler = self._scheduler
        if scheduler is None:
            return {}

        def read() -> dict[str, datetime]:
            found = scheduler.get_jobs(jobstore=JOB_STORE)
            return {job.id: job.next_run_time for job in found if job.next_run_time}

        return await asyncio.to_thread(read)

    # --- internals ---

    async def _run(self, key: str, now: datetime, *, from_job: bool) -> None:
        async with self._lock:
            try:
                status = await self.dispatcher.run(key, now)
            except Exception:
                log.exception("follow-up %s failed", key)
                status = await self.dispatcher.failed(key, now)
        # A job that ran is gone from the store already; one due again needs a new one,
        # and one run by the sweep may still have one to remove.
        if status == FOLLOWUP_PENDING or not from_job:
            self.sync([key])

    async def _sweep(self) -> None:
        try:
            await self.run_due()
        except Exception:
            log.exception("follow-up sweep failed")

    async def _work(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync_now()
            except Exception:
                # The rows are safe; the sweep and the next start catch up.
                log.exception("follow-up jobs not updated")

    async def _sync_now(self) -> None:
        scheduler = self._scheduler
        keys, self._dirty = sorted(self._dirty), set()
        if scheduler is None or not keys:
            return
        plan: list[tuple[str, datetime | None]] = []
        async with self._db.session() as session:
            followups = FollowUpRepository(session)
            for key in keys:
                row = await followups.get(key)
                pending = row is not None and row.status == FOLLOWUP_PENDING
                plan.append((key, row.due_at if row is not None and pending else None))
        await asyncio.to_thread(self._write, scheduler, plan)

    @staticmethod
    def _write(scheduler: AsyncIOScheduler, plan: list[tuple[str, datetime | None]]) -> None:
        """Set or remove jobs (blocking: runs in a worker thread)."""
        for key, due in plan:
            if due is None:
                with contextlib.suppress(JobLookupError):
                    scheduler.remove_job(key, jobstore=JOB_STORE)
                continue
            scheduler.add_job(
                run_followup,
                DateTrigger(run_date=due, timezone=UTC),
                args=(key,),
                id=key,
                name=key,
                jobstore=JOB_STORE,
                replace_existing=True,
                # After downtime a missed follow-up runs once, however late.
                coalesce=True,
                misfire_grace_time=None,
            )
