"""Shared fixtures: databases (SQLite always, PostgreSQL when one is configured)."""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.keyring import Keyring, key_file_for, new_key_text

# e.g. postgresql://postgres@127.0.0.1:5432/test; its public schema is wiped per test.
POSTGRESQL_URL_ENV = "TAWASUL_TEST_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")
POSTGRESQL_SKIP = f"set {POSTGRESQL_URL_ENV} to run PostgreSQL tests"


def _database_per_worker() -> None:
    """Under pytest-xdist (``-n 2``) each worker gets a PostgreSQL database of its own
    (``test_gw0``, ...), created once: advisory locks, LISTEN/NOTIFY and the per-test
    truncation are per database, so workers never see each other's rows."""
    worker, url = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get(POSTGRESQL_URL_ENV)
    if not worker or not url:
        return
    import psycopg

    base, _, name = url.partition("?")[0].rpartition("/")
    own = f"{name}_{worker}"
    with psycopg.connect(url, autocommit=True) as connection:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if connection.execute(query, (own,)).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{own}"')
    os.environ[POSTGRESQL_URL_ENV] = f"{base}/{own}"


_database_per_worker()


# Migrating from nothing costs about 2 s on PostgreSQL and 0.6 s on SQLite, once per
# test: the first test of a run migrates, the others start from what it left.
_migrated: dict[str, Any] = {}
# PostgreSQL has no key file: one key for the run (each test starts from an empty schema).
POSTGRESQL_KEY = new_key_text()
POSTGRESQL_KEYS = Keyring.from_text(POSTGRESQL_KEY)


async def _reset_postgresql(database: Database) -> None:
    """Empty the schema: truncated when it is the migrated one, else dropped and migrated."""
    async with database.engine.begin() as connection:
        tables = [
            row[0]
            for row in await connection.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        head = _migrated.get("postgresql")
        # Exactly the migrated tables: one a test added (a job store's, say) means a drop.
        if head is not None and set(head[1]) == set(tables):
            version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            if [row[0] for row in version] == [head[0]]:
                data = ", ".join(f'"{t}"' for t in tables if t != "alembic_version")
                await connection.exec_driver_sql(f"TRUNCATE {data} RESTART IDENTITY CASCADE")
                return
        await connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        await connection.exec_driver_sql("CREATE SCHEMA public")
    await database.upgrade()
    async with database.engine.connect() as connection:
        query = "SELECT version_num FROM alembic_version"
        version = (await connection.exec_driver_sql(query)).all()
        tables = (
            await connection.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ).all()
    _migrated["postgresql"] = (version[0][0], [row[0] for row in tables])


async def _sqlite_template() -> Path:
    """A migrated SQLite file to copy, made once per run."""
    template: Path | None = _migrated.get("sqlite")
    if template is None:
        folder = tempfile.mkdtemp(prefix="tawasul-template-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = Path(folder) / "tawasul.db"
        database = Database(f"sqlite:///{template}")
        await database.upgrade()
        await database.dispose()
        with sqlite3.connect(template) as connection:  # everything in the main file
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _migrated["sqlite"] = template
    return template


async def open_database(backend: str, tmp_path: Path) -> Database:
    """An empty, upgraded database of ``backend``; skips when PostgreSQL is not configured."""
    if backend == "sqlite":
        path = tmp_path / "tawasul.db"
        template = await _sqlite_template()
        shutil.copyfile(template, path)
        shutil.copyfile(key_file_for(template), key_file_for(path))  # the template's key
        database = Database(f"sqlite:///{path}")
    else:
        url = os.environ.get(POSTGRESQL_URL_ENV)
        if not url:
            pytest.skip(POSTGRESQL_SKIP)
        database = Database(url, keyring=POSTGRESQL_KEYS)
        await _reset_postgresql(database)
    await database.upgrade()  # at head already: a read
    return database


def _loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection or name lookup beyond this machine fails the test loudly."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise AssertionError(f"test tried to reach {address[0]}: only loopback is allowed")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, upgraded database, once per backend."""
    db = await open_database(request.param, tmp_path)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, upgraded SQLite file database, for tests that need no second backend."""
    db = await open_database("sqlite", tmp_path)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """A session on ``database``; the test commits when it wants to."""
    async with database.session() as db_session:
        yield db_session


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    # A tuple in one process, a list once pytest-xdist has sent it from a worker.
    return str(longrepr[2]) if isinstance(longrepr, tuple | list) and len(longrepr) == 3 else ""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once why the PostgreSQL half of the suite did not run (other skips are not counted)."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if POSTGRESQL_SKIP in _skip_reason(report)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} PostgreSQL tests skipped: set {POSTGRESQL_URL_ENV} "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test) to run them"
        )


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    """A local Twilio API for the real twilio client (see tests/fakes/twilio_api.py)."""
    from channels import ACCOUNT_SID, AUTH_TOKEN

    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """A local Bot API for python-telegram-bot (see tests/fakes/telegram_api.py)."""
    from channels import TOKEN

    async with FakeTelegram(TOKEN) as api:
        yield api
