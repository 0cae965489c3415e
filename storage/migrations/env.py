"""Alembic environment: runs the migrations on the connection ``Database.upgrade`` hands
over, or on its own connection when started from the ``alembic`` command line.

From the command line (for writing new revisions) the database is, in order: ``-x
url=...``, ``$TAWASUL_DATABASE__URL``, ``sqlalchemy.url`` in ``storage/alembic.ini``::

    alembic -c storage/alembic.ini revision --autogenerate -m "add follow_up"
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.sql.sqltypes import AutoString

from storage.columns import UtcDateTime
from storage.db import normalize_url
from storage.models import metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # A migration is frozen history: it names plain SQLAlchemy types, never our model
    # code, which will have moved on by the time an old migration runs.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    return False


# Tables in the database that are not ours to migrate: APScheduler creates its job
# store's table itself (see bot/scheduler.py); autogenerate must not drop it.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=metadata,
        render_item=_render_item,
        include_name=_include_name,
        compare_type=True,
        **options,
    )


def _run(connection: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("TAWASUL_DATABASE__URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set TAWASUL_DATABASE__URL")
    return normalize_url(url)


async def _run_on_own_connection() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # Called by Database.upgrade inside connection.run_sync: the caller owns the
        # transaction and the application owns the logging configuration.
        _run(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_on_own_connection())


main()
