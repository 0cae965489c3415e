"""Storage plumbing: URLs, SQLite settings, migrations matching the models, upgrades."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection

from storage.db import Database, alembic_config, normalize_url
from storage.models import metadata


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///tawasul.db", "sqlite+aiosqlite:///tawasul.db"),
        ("sqlite:////var/lib/tawasul/t.db", "sqlite+aiosqlite:////var/lib/tawasul/t.db"),
        ("sqlite+aiosqlite:///t.db", "sqlite+aiosqlite:///t.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p@db:5432/tawasul", "postgresql+asyncpg://u:p@db:5432/tawasul"),
        ("postgres://u:p@db/tawasul", "postgresql+asyncpg://u:p@db/tawasul"),
        ("postgresql+psycopg2://u@db/t", "postgresql+asyncpg://u@db/t"),
        ("postgresql+asyncpg://u@db/t", "postgresql+asyncpg://u@db/t"),
        ("postgresql://u@db/t?sslmode=require", "postgresql+asyncpg://u@db/t?ssl=require"),
    ],
)
def test_urls_are_normalised_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_other_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        normalize_url("mysql://u@db/t")


def test_repr_hides_the_password() -> None:
    database = Database("postgresql://tawasul:s3cret@127.0.0.1/tawasul")
    assert "s3cret" not in repr(database)
    assert database.url == "postgresql+asyncpg://tawasul:s3cret@127.0.0.1/tawasul"
    assert not database.is_sqlite


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _revision(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def test_migrations_match_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_upgrade_is_at_head_and_a_second_upgrade_does_nothing(database: Database) -> None:
    heads = tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert heads == ("0001",)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        await database.upgrade()
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert not [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER"))]
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_revision) == heads


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_database: Database) -> None:
    async with sqlite_database.engine.connect() as connection:
        pragmas = {
            name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    # synchronous=NORMAL reads back as 1.
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,
        "busy_timeout": 5000,
    }


async def test_ping(sqlite_database: Database) -> None:
    assert await sqlite_database.ping()
    # Nothing listens on port 1 of the loopback: refused at once.
    unreachable = Database("postgresql://nobody@127.0.0.1:1/nothing")
    try:
        assert not await unreachable.ping()
    finally:
        await unreachable.dispose()


def test_processes_starting_together_upgrade_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    script = (
        "import asyncio, sys\n"
        "from storage.db import Database\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    await db.upgrade()\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], errors
