"""The database handle: async engine, sessions, migrations and a health check."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from storage import prepared
from storage.columns import KEYRING_ATTRIBUTE, json_text, json_value
from storage.keyring import Keyring, PrivacyKeyError, new_key_text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any constant will do: it only has to be the same in every process upgrading one database.
_UPGRADE_LOCK_KEY = 0x7A3A5715

_SQLITE_PRAGMAS = (
    # WAL lets the web server read while the outbox writes; NORMAL is durable enough with WAL.
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    # `tawasul serve` and a CLI command may write at once: wait rather than fail at once.
    "PRAGMA busy_timeout=5000",
    # SQLite ignores foreign keys unless asked, per connection.
    "PRAGMA foreign_keys=ON",
    # Deleted rows (an erased applicant, a dropped draft) are overwritten, not left in
    # free pages of the file.
    "PRAGMA secure_delete=ON",
)


# While a thread copies the WAL back (``WalCheckpoints``), the server's own connection
# checkpoints once the WAL passes this many pages (4 KiB each; SQLite's default is
# 1,000). Only a checkpoint by the writer lets the WAL start again from its beginning:
# under load the thread never finds the moment between two transactions, and the WAL
# would grow without end. By then the thread has copied nearly all of it.
_WAL_PAGES_INLINE = 4_000
# How often that thread copies the WAL back.
WAL_CHECKPOINT_SECONDS = 1.0


def normalize_url(url: str) -> str:
    """Return ``url`` with the async driver this project uses for its backend.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db``; ``postgres://`` and
    ``postgresql://`` (also with a sync driver) become ``postgresql+asyncpg://``.
    libpq's ``sslmode`` is passed on as asyncpg's ``ssl``, which takes the same values.
    """
    # Heroku-style URLs say "postgres", which SQLAlchemy does not know.
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
        query = dict(parsed.query)
        if "sslmode" in query:
            sslmode = query.pop("sslmode")
            query.setdefault("ssl", sslmode)
            parsed = parsed.set(query=query)
    else:
        raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def _now_for(is_sqlite: bool) -> Any:
    # A raw statement: written as UtcDateTime writes it (naive UTC text on SQLite).
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if is_sqlite else now


def _set_sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    _run_pragmas(dbapi_connection, _SQLITE_PRAGMAS)


def _run_pragmas(dbapi_connection: DBAPIConnection, pragmas: tuple[str, ...]) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _pragma_outside_transaction(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _private_file(path: str) -> None:
    """Create a new SQLite file readable by its owner only (names, national IDs and
    messages live in it); SQLite gives its -wal and -shm files the same mode."""
    if path == ":memory:" or path.startswith("file:") or not path:
        return
    # An existing database keeps the mode its owner gave it; a missing folder is left
    # for SQLite to report as it always has.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class _InlineSQLite(aiosqlite.Connection):
    """aiosqlite's interface, run in the event loop's own thread.

    aiosqlite hands every call (cursor, execute, fetch, commit) to a thread of its own
    and waits for the answer: about 24 hand-overs for one message, which cost more than
    the SQLite work itself (measured: 6.4 ms a message through the thread, 3.9 ms here).
    A statement on a local file takes microseconds, so it runs where it is called. What
    this gives up: while another process holds SQLite's write lock, the wait for it
    (``busy_timeout``) holds up the whole server; writers keep their transactions short.
    The driver's own transaction handling is off (``isolation_level=None``):
    ``prepared.begin_immediate`` starts every transaction.
    """

    def __init__(self, path: str) -> None:
        connect = functools.partial(
            sqlite3.connect,
            path,
            check_same_thread=False,
            isolation_level=None,
            uri=path.startswith("file:"),
        )
        super().__init__(connect, iter_chunk_size=64)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    async def _connect(self) -> _InlineSQLite:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, _InlineSQLite]:
        return self._connect().__await__()  # no thread to start

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the package's migrations, no ini file needed.

    With ``connection``, the migrations run on it (see ``migrations/env.py``).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _at_head(connection: Connection) -> bool:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(heads)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Two processes starting together must not both create the tables; the lock
        # is released when this transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
    if _at_head(connection):
        return
    log.info("upgrading the database schema")
    command.upgrade(alembic_config(connection), "head")


class WalCheckpoints:
    """SQLite's WAL copied back into the database file by a thread with a connection of
    its own, every ``seconds`` (a passive checkpoint: it never waits for, nor holds up,
    the writer).

    Left to the writing connection, the commit that fills the WAL past 1,000 pages does
    it, fsyncs included: under load that stalled the server's event loop for 10 to
    15 ms about once a second. SQLite releases the GIL while it works, so the copy runs
    beside the event loop, on another core when there is one; the writer's own
    checkpoint (``_WAL_PAGES_INLINE``) finds little left to copy.
    """

    def __init__(self, path: str, seconds: float = WAL_CHECKPOINT_SECONDS) -> None:
        self._path = path
        self._seconds = seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        # The last checkpoint's (busy, pages in the WAL, pages copied back); for tests.
        self.last: tuple[int, int, int] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            log.warning("WAL checkpoints left to the server's connection (%s)", error)
            return
        failing = False  # said once when checkpoints start failing, once when they work again
        try:
            while not self._stopping.wait(self._seconds):
                try:
                    row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as error:  # the next round tries again
                    if not failing:
                        log.warning("WAL checkpoints failing: %s", type(error).__name__)
                    failing = True
                    continue
                if failing:
                    log.warning("WAL checkpoints working again")
                failing = False
                self.last = (int(row[0]), int(row[1]), int(row[2]))
        finally:
            connection.close()


class Database:
    """One database: the async engine, a session factory and the schema migrations.

    Args:
        url: ``sqlite:///path.db``, ``sqlite+aiosqlite:///path.db``,
            ``postgresql://...``, ``postgres://...`` or ``postgresql+asyncpg://...``.
        echo: log every SQL statement, for debugging (parameters are never shown).
        keyring: the keys personal data is encrypted under (``privacy.key``). Without
            it a SQLite file uses the key file beside it (``<name>.key``, mode 0600,
            created with a random key the first time), an in-memory one a key of its
            own, and PostgreSQL none: ``check_keys`` then refuses to start.
    """

    def __init__(self, url: str, *, echo: bool = False, keyring: Keyring | None = None) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        options: dict[str, Any] = {}
        self._keyring = keyring
        self._key_file: Path | None = None
        self._file: str | None = None  # a SQLite database in a file named by its path
        if self.is_sqlite:
            path = parsed.database or ":memory:"
            if path != ":memory:" and not path.startswith("file:"):
                self._file = path
            if keyring is None and self._file is not None:
                # Read when first connecting: a missing folder is SQLite's to report.
                self._key_file = Path(self._file)

            async def connect() -> _InlineSQLite:
                _private_file(path)
                self._use_keys()
                return await _InlineSQLite(path)

            options["async_creator"] = connect
            if path != ":memory:":
                # SQLite has one writer: one connection per process makes its sessions
                # take turns here instead of failing on the file lock.
                options.update(pool_size=1, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            echo=echo,
            # Parameters are names, national IDs and phones: keep them out of error
            # messages and tracebacks, which end up in logs.
            hide_parameters=True,
            json_serializer=json_text,
            json_deserializer=json_value,
            # A PostgreSQL restart must not fail the next messages; SQLite files don't go away.
            pool_pre_ping=not self.is_sqlite,
            **options,
        )
        self._checkpoints: WalCheckpoints | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(self.engine.sync_engine, "connect", self._wal_pages_inline)
            # A transaction that reads and then writes fails at once ("database is
            # locked") when another connection wrote in between; taking the write lock
            # first makes it wait (busy_timeout) instead. It also makes savepoints work
            # as SQLAlchemy expects.
            event.listen(self.engine.sync_engine, "begin", prepared.begin_immediate)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        if self._key_file is None and (keyring is not None or self.is_sqlite):
            # An in-memory database lives as long as this process: so may its key.
            self._keyring = keyring or Keyring.from_text(new_key_text())
            self._use_keys()

    async def checkpoint_in_background(self, seconds: float = WAL_CHECKPOINT_SECONDS) -> None:
        """A SQLite file's WAL copied back by a thread every ``seconds``
        (``WalCheckpoints``) until ``dispose``, by this process's commits only once it
        has grown past ``_WAL_PAGES_INLINE`` pages; nothing on other databases."""
        if self._file is None:
            return
        if self._checkpoints is None:
            self._checkpoints = WalCheckpoints(self._file, seconds)
            self._checkpoints.start()
        async with self.engine.connect() as connection:  # the one pooled connection
            await connection.run_sync(
                _pragma_outside_transaction, f"wal_autocheckpoint={_WAL_PAGES_INLINE}"
            )

    def _wal_pages_inline(
        self, dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
    ) -> None:
        if self._checkpoints is not None:  # a connection made again (after an error)
            _run_pragmas(dbapi_connection, (f"PRAGMA wal_autocheckpoint={_WAL_PAGES_INLINE}",))

    @property
    def keyring(self) -> Keyring:
        self._use_keys()
        assert self._keyring is not None
        return self._keyring

    def _use_keys(self) -> None:
        if self._keyring is None:
            if self._key_file is None:
                raise PrivacyKeyError(
                    "privacy.key is needed with this database: set TAWASUL_PRIVACY__KEY "
                    "to 32 random bytes in base64 (e.g. `openssl rand -base64 32`)"
                )
            self._keyring = Keyring.beside(self._key_file)
        setattr(self.engine.sync_engine.dialect, KEYRING_ATTRIBUTE, self._keyring)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    def session(self) -> AsyncSession:
        """A new session; use it as ``async with db.session() as session``.

        Objects stay usable after commit (``expire_on_commit=False``): the engine
        reads them after its unit of work has been committed.
        """
        return self._sessions()

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration; cheap when it is there already.

        Safe when several processes start at once (they take turns); not meant to
        run twice at once inside one process, as Alembic keeps global state.
        """
        async with self.engine.connect() as connection:
            # The usual case, and a read only: no lock, so a busy database is not held up.
            at_head = await connection.run_sync(_at_head)
        if at_head:
            await self.check_keys()
            return
        async with self.engine.connect() as connection:
            if self.is_sqlite:
                # SQLite rebuilds a table to alter it (Alembic batch mode); with foreign
                # keys enforced, dropping the old copy would fail or cascade. The pragma
                # only takes effect outside a transaction, hence on the driver's own
                # connection, before the first statement begins one. That begin takes the
                # write lock: a second process starting at the same moment waits
                # (busy_timeout), then finds the schema at head.
                await connection.run_sync(_pragma_outside_transaction, "foreign_keys=OFF")
            try:
                await connection.run_sync(_upgrade)
                await connection.commit()
            finally:
                if self.is_sqlite:
                    await connection.rollback()
                    await connection.run_sync(_pragma_outside_transaction, "foreign_keys=ON")
        await self.check_keys()

    async def check_keys(self) -> None:
        """Refuse keys this database was not written under, before anything is read.

        The first start records the key's check value; a later start with another key
        (and without the recorded one among the previous keys) fails with one line.

        Raises:
            PrivacyKeyError: no configured key is the database's, or one's check fails.
        """
        keyring = self.keyring
        async with self.engine.begin() as connection:
            rows = await connection.execute(text("SELECT key_id, check_value FROM privacy_key"))
            known = {key_id: check for key_id, check in rows}
            for key_id in keyring.key_ids:
                if key_id in known and known[key_id] != keyring.check_value(key_id):
                    raise PrivacyKeyError(f"privacy.key: key {key_id} fails its check value")
            if known and not set(known) & set(keyring.key_ids):
                raise PrivacyKeyError(
                    "privacy.key is not the key this database's personal data is encrypted "
                    f"under (key id {', '.join(sorted(known))}); set the right key"
                )
            if keyring.current_id not in known:
                await connection.execute(
                    text(
                        "INSERT INTO privacy_key (key_id, check_value, created_at) "
                        "VALUES (:key_id, :check_value, :created_at) ON CONFLICT DO NOTHING"
                    ),
                    {
                        "key_id": keyring.current_id,
                        "check_value": keyring.check_value(keyring.current_id),
                        "created_at": _now_for(self.is_sqlite),
                    },
                )

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            # The health check polls this: one line, no traceback, on every failure.
            log.warning("database ping failed: %s", type(exc).__name__)
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection (and stop ``checkpoint_in_background``)."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None
        await self.engine.dispose()
