"""Backups of a SQLite installation (database and media) taken while it runs, and restores."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.db import normalize_url
from storage.keyring import key_file_for

MANIFEST = "tawasul-backup.json"
DATABASE_FILE = "tawasul.db"
MEDIA_DIR = "media"
# Wait this long for a writer (a running server) rather than fail with "database is locked".
BUSY_MILLISECONDS = 30_000

PG_DUMP_HINT = (
    "database.url is PostgreSQL: back it up with pg_dump "
    "(pg_dump --format=custom --file=tawasul.dump DBNAME) and copy server.media_dir "
    "beside it; docs/deploy.md says how to restore both"
)


class BackupError(Exception):
    """A backup or restore that cannot be done; ``str()`` is the line for the operator."""


@dataclass(frozen=True, slots=True)
class BackupSummary:
    directory: Path
    messages: int
    media_files: int
    database_bytes: int


def sqlite_file(database_url: str) -> Path:
    """The file behind a SQLite ``database.url``; BackupError for PostgreSQL or memory."""
    try:
        url = make_url(normalize_url(database_url))
    except ValueError as exc:
        raise BackupError(f"database.url: {exc}") from None
    except ArgumentError:  # not a URL at all
        raise BackupError("database.url: not a database URL") from None
    if url.get_backend_name() != "sqlite":
        raise BackupError(PG_DUMP_HINT)
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("database.url is not a SQLite file: nothing to back up")
    return Path(url.database)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_MILLISECONDS / 1000, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout={BUSY_MILLISECONDS}")
    return connection


def _check(connection: sqlite3.Connection, what: str) -> int:
    """Integrity-check a copy; the number of messages it holds."""
    result = connection.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise BackupError(f"{what} failed SQLite's integrity check: {result}")
    try:
        row = connection.execute("SELECT count(*) FROM message").fetchone()
    except sqlite3.DatabaseError:
        raise BackupError(f"{what} holds no Tawasul database") from None
    return int(row[0])


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 before SQLite opens it (SQLite would use 0644)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def _media_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def backup(database_url: str, media_dir: Path, target: Path, now: datetime) -> BackupSummary:
    """Copy the database and then the media folder into ``target`` (new or empty).

    The database is copied with SQLite's online backup API in one step: one read
    transaction, so the copy is the database as it was at one instant, while a running
    server keeps writing (WAL lets it). The media folder is copied afterwards: an
    attachment is written before the message that refers to it is committed, so every
    file the copied database refers to is already there; files that arrive meanwhile
    come along too, unreferenced and harmless.
    """
    source = sqlite_file(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}: nothing to back up")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty folder: choose a new one")
    # National IDs and phone numbers: readable by the server's user only, as the live files.
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)
    partial = target / (DATABASE_FILE + ".partial")
    _private_file(partial)
    src = _connect(source)
    try:
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: everything in one step, one snapshot
            # One self-contained file: the copy keeps no -wal beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            messages = _check(dst, "the copy")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None
    finally:
        src.close()
    partial.rename(target / DATABASE_FILE)
    # The key file (when the key is not in the environment): without it the copy's
    # personal data cannot be read back.
    if key_file_for(source).is_file():
        shutil.copy2(key_file_for(source), key_file_for(target / DATABASE_FILE))
    copied = 0
    for file in _media_files(media_dir):
        (target / MEDIA_DIR).mkdir(exist_ok=True)
        shutil.copy2(file, target / MEDIA_DIR / file.name)
        copied += 1
    manifest = {
        "format": 1,
        "created_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "database": DATABASE_FILE,
        "messages": messages,
        "media_files": copied,
    }
    # Written last: a folder without it is an unfinished backup, and restore refuses it.
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return BackupSummary(target, messages, copied, (target / DATABASE_FILE).stat().st_size)


def restore(source: Path, database_url: str, media_dir: Path, *, force: bool) -> BackupSummary:
    """Put a backup made by ``backup`` back: the database file, then the media files.

    Meant for a stopped server. The database is written through SQLite's backup API, so
    a -wal file left beside an old database cannot be replayed over the restored one.
    Without ``force`` an existing database with any data is not overwritten.
    """
    if not (source / MANIFEST).is_file() or not (source / DATABASE_FILE).is_file():
        raise BackupError(f"{source} is not a finished Tawasul backup (no {MANIFEST})")
    target = sqlite_file(database_url)
    src = sqlite3.connect(f"file:{source / DATABASE_FILE}?mode=ro", uri=True)
    try:
        messages = _check(src, "the backup")
        if target.exists() and not force:
            existing = _connect(target)
            try:
                tables = existing.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
            finally:
                existing.close()
            if tables:
                raise BackupError(
                    f"{target} already holds a database: stop the server, keep a copy of "
                    "it, and run again with --force to replace it"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            _private_file(target)
        dst = _connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore into {target}: {exc}") from None
    finally:
        src.close()
    if key_file_for(source / DATABASE_FILE).is_file():
        shutil.copy2(key_file_for(source / DATABASE_FILE), key_file_for(target))
    restored = 0
    for file in _media_files(source / MEDIA_DIR):
        media_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, media_dir / file.name)
        restored += 1
    return BackupSummary(source, messages, restored, target.stat().st_size)
