"""A server's SQLite WAL is copied back by a thread, not by the commits of its event loop's
connection (storage.db.WalCheckpoints), and stays bounded."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import _WAL_PAGES_INLINE, Database, WalCheckpoints

PAGE = 4096


async def _wal_autocheckpoint(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one())


async def _write_pages(database: Database, pages: int, commits: int = 20) -> None:
    """About ``pages`` new pages, in ``commits`` transactions (each a WAL commit)."""
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS filler (body BLOB)"))
    for _ in range(commits):
        async with database.engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO filler VALUES (randomblob(:size))"),
                [{"size": 3000}] * (pages // commits),
            )


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "wal-checkpoints"]


async def test_the_wal_is_copied_back_by_the_thread(sqlite_database: Database) -> None:
    await sqlite_database.checkpoint_in_background(seconds=0.05)
    assert len(_checkpoint_threads()) == 1
    await _write_pages(sqlite_database, 300)
    checkpoints = sqlite_database._checkpoints
    assert checkpoints is not None
    for _ in range(100):
        last = checkpoints.last
        if last is not None and last[1] > 300 and last[2] == last[1]:
            break
        await asyncio.sleep(0.05)
    assert last is not None and last[1] > 300, last  # the frames our commits wrote
    assert last[2] == last[1], last  # every one of them copied back
    await sqlite_database.dispose()
    assert _checkpoint_threads() == []


async def test_commits_do_not_checkpoint_until_the_wal_is_large(
    sqlite_database: Database, tmp_path: Path
) -> None:
    wal = tmp_path / "tawasul.db-wal"
    # Without the thread, SQLite's commits copy the WAL back at 1,000 pages and start it
    # again: the file never holds much more.
    await _write_pages(sqlite_database, 1600)
    assert wal.stat().st_size < 1300 * PAGE
    # With it (here too slow to run during the test), they leave the WAL alone...
    await sqlite_database.checkpoint_in_background(seconds=3600)
    assert await _wal_autocheckpoint(sqlite_database) == _WAL_PAGES_INLINE
    await _write_pages(sqlite_database, 1600)
    assert wal.stat().st_size > 1500 * PAGE
    # ...until it passes _WAL_PAGES_INLINE pages: then it starts again, bounded.
    await _write_pages(sqlite_database, _WAL_PAGES_INLINE)
    size = wal.stat().st_size
    await _write_pages(sqlite_database, 1600)
    assert wal.stat().st_size == size


async def test_a_connection_made_again_keeps_the_setting(sqlite_database: Database) -> None:
    await sqlite_database.checkpoint_in_background(seconds=3600)
    await sqlite_database.engine.dispose()  # the pool's connection closed, as after an error
    assert await _wal_autocheckpoint(sqlite_database) == _WAL_PAGES_INLINE


async def test_an_in_memory_database_has_no_thread(tmp_path: Path) -> None:
    database = Database("sqlite:///:memory:")
    try:
        await database.upgrade()
        await database.checkpoint_in_background()
        assert _checkpoint_threads() == []
        assert await _wal_autocheckpoint(database) == 1000  # SQLite's own default
    finally:
        await database.dispose()


def test_a_failing_checkpoint_is_said_once_until_it_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 1000)
    checkpoints = WalCheckpoints(str(broken), seconds=0.01)
    with caplog.at_level(logging.WARNING, logger="storage.db"):
        checkpoints.start()
        time.sleep(0.3)  # about 30 rounds, every one failing
        broken.write_bytes(b"")  # an empty file is an empty database
        for _ in range(200):
            if checkpoints.last is not None:
                break
            time.sleep(0.01)
        checkpoints.stop()
    assert checkpoints.last is not None  # it recovered
    said = [record.getMessage() for record in caplog.records]
    assert said == ["WAL checkpoints failing: DatabaseError", "WAL checkpoints working again"]
