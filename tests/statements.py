"""Counting the SQL statements a piece of code sends (the hot path has a budget)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from storage.db import Database


@contextmanager
def counting_statements(database: Database) -> Iterator[list[str]]:
    """The statements sent while the block runs, in order (SQLite's BEGIN left out)."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        if args[2] != "BEGIN IMMEDIATE":  # SQLite's transaction control, like COMMIT
            statements.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
