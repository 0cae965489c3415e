"""The clock behind follow-ups: APScheduler wakes the dispatcher, the ``followup`` table is truth.

One APScheduler job per pending follow-up, its id the follow-up's key, in a
persistent SQLAlchemy job store (``FollowUpJobStore``): the table ``apscheduler_jobs``
in the project's own database, which APScheduler creates at start (it is not ours, so
not Alembic's).
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
- Many follow-ups at once (a bulk plan, or start-up after a crash) must not cost a
  transaction, a log line and a wake-up each, as ``add_job`` does. Jobs are written in
  batches of ``WRITE_BATCH``, one transaction each (``FollowUpJobStore.put``), as the
  same rows ``add_job`` writes (id, next run time, the pickled ``Job.__getstate__()``,
  see ``job_states``). Start-up compares the rows' keys and due times with the jobs'
  ids and next run times, read as columns: no row object, no job unpickled.
- The job store belongs to one process: the only one, or on PostgreSQL the leader
  (``storage.cluster``; the server starts this scheduler when its process is elected
  and stops it when it is not any more). Other processes announce the follow-ups they
  write to the leader (``pg_notify``). The command line (``requests set-status``)
  writes follow-ups but never touches the job store; a sweep every ``sweep_seconds``
  runs what is due and has no job here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import pickle
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime
from sqlalchemy import create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from bot.followups import FollowUpDispatcher
from storage.db import Database
from storage.models import FOLLOWUP_PENDING
from storage.repositories import FollowUpRepository

log = logging.getLogger(__name__)

JOB_STORE = "followups"
JOB_TABLE = "apscheduler_jobs"
SWEEP_SECONDS = 60.0
# Jobs set or removed per transaction: the event loop waits for the job store's lock at most
# this long when APScheduler wakes meanwhile (and every id is a bound parameter).
WRITE_BATCH = 1_000
# Jobs are written at most this often (seconds): under load the turns change follow-ups
# (a draft's reminder moves with every answer) hundreds of times a second, and each
# write is a transaction on the job store's own connection, which SQLite's other writers
# wait for, and a wake-up of APScheduler, which reads the store. The rows are the truth
# meanwhile: a job is only the alarm clock.
SYNC_SPACING = 0.25
# A job whose time differs from its row's by less than this (seconds) is left alone at start-up.
_SAME_SECONDS = 1.0

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


class FollowUpJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy job store, with writes and a read in bulk.

    The rows are APScheduler's own (id, next run time as a UTC timestamp, the pickled
    ``Job.__getstate__()``), so it runs them like any other job; only a batch goes in one
    transaction. Callers hold the scheduler's job store lock, as APScheduler does.
    """

    def put(self, states: Sequence[dict[str, Any]]) -> None:
        """Store these jobs (their ``Job.__getstate__()``), replacing any of the same ids."""
        rows = [
            {
                "id": state["id"],
                "next_run_time": datetime_to_utc_timestamp(state["next_run_time"]),
                "job_state": pickle.dumps(state, self.pickle_protocol),
            }
            for state in states
        ]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(self.jobs_t)
        replace = {name: insert.excluded[name] for name in ("next_run_time", "job_state")}
        with self.engine.begin() as connection:
            connection.execute(
                insert.on_conflict_do_update(index_elements=["id"], set_=replace), rows
            )

    def remove(self, ids: Sequence[str]) -> None:
        """Remove the jobs of these ids that exist."""
        with self.engine.begin() as connection:
            connection.execute(self.jobs_t.delete().where(self.jobs_t.c.id.in_(ids)))

    def next_run_times(self) -> dict[str, float]:
        """Every job's next run time by id, a UTC timestamp as stored (paused jobs left
        out); no job is unpickled."""
        table = self.jobs_t
        query = select(table.c.id, table.c.next_run_time).where(table.c.next_run_time.is_not(None))
        with self.engine.begin() as connection:
            return {id_: at for id_, at in connection.execute(query)}


def job_states(
    scheduler: AsyncIOScheduler, plan: Sequence[tuple[str, datetime]]
) -> list[dict[str, Any]]:
    """What ``scheduler.add_job`` would store for these follow-ups' jobs, key and due time.

    Building a ``Job`` checks its function against its arguments, which costs more than
    all the rest; that check is the same for every follow-up, so one job is built and its
    state copied with each follow-up's id, name, argument, trigger and time.
    """
    key, due = plan[0]
    template = Job(
        scheduler,
        id=key,
        name=key,
        func=run_followup,
        args=(key,),
        kwargs={},
        trigger=DateTrigger(run_date=due, timezone=UTC),
        executor="default",
        # After downtime a missed follow-up runs once, however late.
        coalesce=True,
        misfire_grace_time=None,
        max_instances=1,
        next_run_time=due,
    ).__getstate__()
    return [
        template
        | {
            "id": key,
            "name": key,
            "args": (key,),
            "trigger": DateTrigger(run_date=due, timezone=UTC),
            "next_run_time": due,
        }
        for key, due in plan
    ]


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
        daily: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._db = database
        self._daily = daily  # housekeeping (privacy.retention's purge), on the leader
        self.dispatcher = dispatcher
        self._clock = clock
        self._sweep_seconds = sweep_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._store: FollowUpJobStore | None = None
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()  # one follow-up at a time: a job and the sweep may meet
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()  # the worker and ``flush`` take turns at the job store
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
            log.warning("in-memory database: follow-up jobs are not kept across restarts")
            # One connection for every thread: each would have its own in-memory database.
            # They take turns: every access holds the scheduler's job store lock.
            self._engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            self._engine = create_engine(
                url, hide_parameters=True, pool_pre_ping=not self._db.is_sqlite
            )
            if self._db.is_sqlite:
                event.listen(self._engine, "connect", _sqlite_pragmas)
        store = FollowUpJobStore(engine=self._engine, tablename=JOB_TABLE)
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
        if self._daily is not None:
            scheduler.add_job(
                self._housekeeping,
                IntervalTrigger(hours=24, timezone=UTC),
                id="daily-housekeeping",
                next_run_time=datetime.now(UTC) + timedelta(minutes=1),
                coalesce=True,
                max_instances=1,
            )
        self._scheduler, self._store = scheduler, store
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
        scheduler, self._scheduler, self._store = self._scheduler, None, None
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

    async def flush(self) -> None:
        """Write the jobs ``sync`` was given now, and wait until they are written."""
        async with self._writing:
            await self._sync_now()

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
        scheduler, store = self._scheduler, self._store
        if scheduler is None or store is None:
            return
        async with self._db.session() as session:
            rows = await FollowUpRepository(session).due_times()
        jobs = await self._job_times()
        plan: list[tuple[str, datetime | None]] = [
            (key, due)
            for key, due in rows.items()
            if key not in jobs or abs(jobs[key] - due.timestamp()) > _SAME_SECONDS
        ]
        plan += [(key, None) for key in jobs if key not in rows]
        if plan:
            await asyncio.to_thread(self._write, scheduler, store, plan)
        log.info(
            "follow-ups: %d pending, %d job(s) set, %d removed",
            len(rows),
            sum(1 for _, due in plan if due is not None),
            sum(1 for _, due in plan if due is None),
        )

    async def jobs(self) -> dict[str, datetime]:
        """The follow-up jobs in the job store: key -> next run time."""
        return {key: utc_timestamp_to_datetime(at) for key, at in (await self._job_times()).items()}

    # --- internals ---

    async def _job_times(self) -> dict[str, float]:
        scheduler, store = self._scheduler, self._store
        if scheduler is None or store is None:
            return {}

        def read() -> dict[str, float]:
            with scheduler._jobstores_lock:
                times: dict[str, float] = store.next_run_times()
                return times

        return await asyncio.to_thread(read)

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

    async def _housekeeping(self) -> None:
        if self._daily is None:
            return
        try:
            await self._daily()
        except Exception:
            log.exception("daily housekeeping failed")

    async def _sweep(self) -> None:
        try:
            await self.run_due()
        except Exception:
            log.exception("follow-up sweep failed")

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        written_at = -math.inf
        while not self._stopping:
            await self._wake.wait()
            pause = written_at + SYNC_SPACING - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)  # what is changed meanwhile goes along
            self._wake.clear()
            written_at = loop.time()
            try:
                async with self._writing:
                    await self._sync_now()
            except Exception:
                # The rows are safe; the sweep and the next start catch up.
                log.exception("follow-up jobs not updated")

    async def _sync_now(self) -> None:
        scheduler, store = self._scheduler, self._store
        keys, self._dirty = list(self._dirty), set()
        if scheduler is None or store is None or not keys:
            return
        async with self._db.session() as session:
            due = await FollowUpRepository(session).due_times(keys)
        plan = [(key, due.get(key)) for key in keys]
        await asyncio.to_thread(self._write, scheduler, store, plan)

    @staticmethod
    def _write(
        scheduler: AsyncIOScheduler,
        store: FollowUpJobStore,
        plan: Sequence[tuple[str, datetime | None]],
    ) -> None:
        """Set jobs (at their due time) or remove them (due None); blocking: runs in a
        worker thread."""
        due = [(key, at) for key, at in plan if at is not None]
        gone = [key for key, at in plan if at is None]
        for first in range(0, max(len(due), len(gone)), WRITE_BATCH):
            setting, removing = due[first : first + WRITE_BATCH], gone[first : first + WRITE_BATCH]
            states = job_states(scheduler, setting) if setting else []
            # APScheduler's lock, which it holds while it runs due jobs in the event loop:
            # it must not remove a job that was just replaced under it.
            with scheduler._jobstores_lock:
                if states:
                    store.put(states)
                if removing:
                    store.remove(removing)
        if due and scheduler.state == STATE_RUNNING:
            scheduler.wakeup()  # a new job may be the soonest
