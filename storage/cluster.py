"""Several processes on one PostgreSQL database: the scheduler's leader lock and
notifications between processes, on one connection of each process's own.

The connection is asyncpg's, opened apart from the pool: a session-level advisory lock
belongs to the connection that took it, and a pooled connection goes back to the pool
(and to other work) after each use. The leader is whoever holds ``LEADER_LOCK``; the
others try again every ``retry_seconds``. The lock goes with the connection: when the
leader's process dies, PostgreSQL sees its socket close and releases it at once, and a
standby takes it on its next try. A leader whose connection fails (the database
restarted, the network cut) steps down before it tries again, since it can no longer
know whether it still holds the lock. Being leader is only about cost: every follow-up
is claimed (its row locked, its status checked) in the transaction that runs it, so
even two leaders for a moment would not run one twice.

The same connection LISTENs for what other processes announce (``pg_notify``);
``notify`` sends through a pooled connection, or inside the caller's transaction
(``notify_in``), delivered when it commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database

log = logging.getLogger(__name__)

# Any constant will do: the same in every process of one deployment.
LEADER_LOCK = 0x7A3A5716
RETRY_SECONDS = 2.0
# A notification's payload is at most 8000 bytes; longer lists go in several.
PAYLOAD_BYTES = 7000

# What processes announce to one another.
FOLLOWUPS_CHANNEL = "tawasul_followups"  # follow-up keys written, one a line: the leader syncs
OUTBOX_CHANNEL = "tawasul_outbox"  # messages stored to send: every outbox looks now
LIVE_CHANNEL = "tawasul_live"  # dashboard live events, for the pages of every process

Listener = Callable[[str], None]


def driver_dsn(database_url: str) -> str:
    """The database's URL as asyncpg's own ``connect`` takes it (libpq's form)."""
    url = make_url(database_url)
    query = dict(url.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


def chunks(items: list[str], size: int = PAYLOAD_BYTES) -> list[str]:
    """``items`` joined by newlines into payloads of at most ``size`` bytes each."""
    payloads: list[str] = []
    current: list[str] = []
    length = 0
    for item in items:
        grown = length + len(item.encode()) + 1
        if current and grown > size:
            payloads.append("\n".join(current))
            current, grown = [], len(item.encode()) + 1
        current.append(item)
        length = grown
    if current:
        payloads.append("\n".join(current))
    return payloads


async def notify_in(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Announce ``payload`` on ``channel`` when the session's transaction commits
    (nothing on SQLite, where one process is all there is)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )


class Announcements:
    """What a process that serves nothing (the command line) wrote, told to the servers
    once it is committed: follow-ups to the leader, the outbox to every sender. Nothing
    on SQLite, where a server finds them on its next look (the sweep, the outbox's)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._keys: list[str] = []
        self._outbox = False

    def followups(self, keys: list[str]) -> None:
        self._keys += keys

    def outbox(self) -> None:
        self._outbox = True

    async def send(self) -> None:
        if self._database.is_sqlite or not (self._keys or self._outbox):
            return
        async with self._database.session() as session, session.begin():
            for payload in chunks(self._keys):
                await notify_in(session, FOLLOWUPS_CHANNEL, payload)
            if self._outbox:
                await notify_in(session, OUTBOX_CHANNEL)
        self._keys, self._outbox = [], False


class ClusterLink:
    """This process's dedicated connection: the leader lock and the notifications.

    Args:
        database: a PostgreSQL database.
        on_elected: awaited when this process becomes the leader.
        on_deposed: awaited when it stops being the leader (its connection failed).
        on_reconnected: called after the connection came back: notifications sent
            meanwhile were missed.
        retry_seconds: how often a standby tries the lock, and a leader checks its
            connection.
    """

    def __init__(
        self,
        database: Database,
        *,
        on_elected: Callable[[], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
        on_reconnected: Callable[[], None] = lambda: None,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._database = database
        self._dsn = driver_dsn(database.url)
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._on_reconnected = on_reconnected
        self._retry = retry_seconds
        self._listeners: dict[str, list[Listener]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self.leader = False

    def listen(self, channel: str, listener: Listener) -> None:
        """Call ``listener(payload)`` for every notification on ``channel`` (before
        ``start``)."""
        self._listeners.setdefault(channel, []).append(listener)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cluster-link")

    async def stop(self) -> None:
        """Step down (the lock goes with the connection) and stop listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close()
        if self.leader:
            self.leader = False
            await self._on_deposed()

    async def notify(self, channel: str, payloads: list[str]) -> None:
        """Send each payload on ``channel`` to every listening process, this one too."""
        async with self._database.session() as session, session.begin():
            for payload in payloads:
                await notify_in(session, channel, payload)

    async def _run(self) -> None:
        first, down = True, False
        while True:
            try:
                await self._connect()
                if down:
                    log.info("cluster connection back")
                if not first:
                    self._on_reconnected()
                first, down = False, False
                while True:
                    if not self.leader:
                        await self._try_lock()
                    await asyncio.sleep(self._retry)
                    # Also a keep-alive: a dead connection is found here, not later.
                    await self._checked("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not down:  # once an outage, not every try
                    log.warning("cluster connection lost: %s", type(error).__name__)
                down = True
                await self._close()
                if self.leader:
                    self.leader = False
                    log.warning("no longer the scheduler's leader")
                    await self._on_deposed()
                await asyncio.sleep(self._retry)

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=self._retry * 2)
        self._connection = connection
        for channel, listeners in self._listeners.items():
            await connection.add_listener(channel, _dispatch(listeners))

    async def _try_lock(self) -> None:
        if await self._checked("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
            log.info("this process is the scheduler's leader")
            await self._on_elected()
            self.leader = True  # once its scheduler runs

    async def _checked(self, query: str, *args: object) -> object:
        connection = self._connection
        if connection is None or connection.is_closed():
            raise ConnectionError("no cluster connection")
        return await connection.fetchval(query, *args, timeout=self._retry * 2)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), self._retry)
            except Exception:
                connection.terminate()


def _dispatch(listeners: list[Listener]) -> Callable[..., None]:
    def received(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        for listener in listeners:
            try:
                listener(payload)
            except Exception:
                log.exception("a notification's listener failed")

    return received
