"""Backups and restores that cannot be done: one clear reason each, and nothing written
(what `tawasul backup` and `tawasul restore` print on one line)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.backup import DATABASE_FILE, MANIFEST, BackupError, backup, restore, sqlite_file

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("sqlite+aiosqlite:///:memory:", "not a SQLite file: nothing to back up"),
        ("sqlite:///file:shared?mode=memory&uri=true", "not a SQLite file: nothing to back up"),
        ("not a url at all", "database.url: not a database URL"),
    ],
)
def test_a_database_that_is_no_file_has_nothing_to_back_up(url: str, why: str) -> None:
    with pytest.raises(BackupError, match=why):
        sqlite_file(url)


def test_a_missing_database_is_not_backed_up_and_no_folder_is_made(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    with pytest.raises(BackupError, match=r"no database at .*nothing to back up"):
        backup(f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "media", target, NOW)
    assert not target.exists()


def test_a_target_that_is_a_file_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "tawasul.db"
    sqlite3.connect(database).close()
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(BackupError, match="exists and is not an empty folder"):
        backup(f"sqlite:///{database}", tmp_path / "media", tmp_path / "taken", NOW)
    assert (tmp_path / "taken").read_text() == "not a folder"


def a_backup_of(tmp_path: Path, content: bytes | None) -> Path:
    """A folder that looks like a finished backup, its database file ``content`` (None: a
    valid SQLite database that is not Tawasul's)."""
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / MANIFEST).write_text("{}")
    if content is None:
        with sqlite3.connect(folder / DATABASE_FILE) as connection:
            connection.execute("CREATE TABLE notes (text TEXT)")
    else:
        (folder / DATABASE_FILE).write_bytes(content)
    return folder


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "the backup holds no Tawasul database"),
        (b"SQLite format 3\x00" + b"\xff" * 200, "cannot restore into"),
        (b"these are not the pages of a database" * 20, "cannot restore into"),
    ],
)
def test_a_backup_that_is_not_tawasuls_is_not_restored(
    tmp_path: Path, content: bytes | None, why: str
) -> None:
    source = a_backup_of(tmp_path, content)
    live = tmp_path / "live" / "tawasul.db"
    with pytest.raises(BackupError, match=why):
        restore(source, f"sqlite:///{live}", tmp_path / "media", force=True)
    assert not live.exists()  # nothing half-written where the server will look
