"""Storage plumbing: URLs, SQLite settings, migrations matching the models, upgrades."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.columns import UtcDateTime
from storage.db import Database, alembic_config, normalize_url
from storage.models import Handoff, metadata
from storage.repositories import HandoffRepository, RequestRepository, StaffRepository


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
    assert heads == ("0016",)
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


# Rows as revision 0001 knew them: plain tables, so that the models' newer columns stay out.
_NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
_BENEFICIARY = sa.table(
    "beneficiary",
    sa.column("id"),
    sa.column("national_id"),
    sa.column("full_name"),
    sa.column("mobile"),
    sa.column("city"),
    sa.column("created_at", UtcDateTime()),
)
_IDENTITY = sa.table(
    "channel_identity",
    sa.column("id"),
    sa.column("channel"),
    sa.column("user_id"),
    sa.column("beneficiary_id"),
    sa.column("language"),
    sa.column("opted_out"),
    sa.column("unreachable"),
    sa.column("created_at", UtcDateTime()),
)
_REQUEST = sa.table(
    "support_request",
    sa.column("id"),
    sa.column("reference"),
    sa.column("beneficiary_id"),
    sa.column("identity_id"),
    sa.column("channel"),
    sa.column("answers", sa.JSON()),
    sa.column("need"),
    sa.column("status"),
    sa.column("decision_due_at", UtcDateTime()),
    sa.column("signed_at", UtcDateTime()),
    sa.column("signed_channel"),
    sa.column("linked_existing"),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
)
_HANDOFF = sa.table(
    "handoff",
    sa.column("id"),
    sa.column("identity_id"),
    sa.column("reason"),
    sa.column("urgent"),
    sa.column("status"),
    sa.column("opened_at", UtcDateTime()),
    sa.column("closed_at", UtcDateTime()),
)


async def _migrate(
    database: Database, action: Callable[[Config, str], None], revision: str
) -> None:
    """Run ``alembic upgrade`` or ``downgrade`` to ``revision`` the way ``Database.upgrade``
    runs migrations (SQLite rebuilds tables, so foreign keys are off meanwhile)."""
    async with database.engine.connect() as connection:
        if database.is_sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.run_sync(lambda sync: action(alembic_config(sync), revision))
        await connection.commit()
        if database.is_sqlite:
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(connection).get_columns(table)}


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def test_downgrade_to_0001_and_upgrade_again_keep_the_data(database: Database) -> None:
    await _migrate(database, command.downgrade, "0001")
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_revision) == ("0001",)
        assert not {"staff", "staff_post"} & await connection.run_sync(_tables)
        assert "claimed_by" not in await connection.run_sync(_columns, "handoff")

    async with database.engine.begin() as connection:
        await connection.execute(
            _BENEFICIARY.insert().values(
                id=1,
                national_id="1000000008",
                full_name="فاطمة",
                mobile="+966501234567",
                city="الرياض",
                created_at=_NOW,
            )
        )
        for identity_id, user_id in ((1, "+966501234567"), (2, "+966507654321")):
            await connection.execute(
                _IDENTITY.insert().values(
                    id=identity_id,
                    channel="whatsapp",
                    user_id=user_id,
                    beneficiary_id=1,
                    language="ar",
                    opted_out=False,
                    unreachable=False,
                    created_at=_NOW,
                )
            )
        await connection.execute(
            _REQUEST.insert().values(
                id=1,
                reference="REQ-000001",
                beneficiary_id=1,
                identity_id=1,
                channel="whatsapp",
                answers={"name": "فاطمة"},
                need="food_basket",
                status="submitted",
                decision_due_at=_NOW,
                signed_at=_NOW,
                signed_channel="whatsapp",
                linked_existing=False,
                created_at=_NOW,
                updated_at=_NOW,
            )
        )
        # No ids given: PostgreSQL's sequence must hand out the next ones afterwards.
        for status, reason, urgent, closed_at in (
            ("closed", "requested", False, _NOW),
            ("open", "crisis", True, None),
        ):
            await connection.execute(
                _HANDOFF.insert().values(
                    identity_id=1,
                    reason=reason,
                    urgent=urgent,
                    status=status,
                    opened_at=_NOW,
                    closed_at=closed_at,
                )
            )
        closed_id, open_id = (
            await connection.scalars(sa.select(_HANDOFF.c.id).order_by(_HANDOFF.c.id))
        ).all()

    await database.upgrade()
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_revision) == ("0016",)
        assert await connection.run_sync(_diff) == []

    async with database.session() as session, session.begin():
        request = await RequestRepository(session).get_by_reference("REQ-000001")
        assert request is not None and request.answers == {"name": "فاطمة"}
        handoffs = HandoffRepository(session)
        closed, open_ = await handoffs.get(closed_id), await handoffs.get(open_id)
        assert closed is not None and open_ is not None
        assert (closed.status, closed.closed_at, closed.claimed_by) == ("closed", _NOW, None)
        assert (open_.status, open_.urgent, open_.reason) == ("open", True, "crisis")
        assert [h.id for h in await handoffs.list_open()] == [open_id]
        sara = await StaffRepository(session).add("sara", "researcher", now=_NOW)
        assert sara.id is not None
        assert await handoffs.claim(open_id, sara.id, _NOW)
        await handoffs.record_post(open_id, "tg:-100:1", _NOW)

    # The rebuilt handoff table still allows one open handoff per identity, and
    # still enforces its foreign keys.
    for row, constraint in (
        (Handoff(identity_id=1, reason="keyword", opened_at=_NOW), "one_open"),
        (Handoff(identity_id=2, reason="keyword", opened_at=_NOW, claimed_by=999), "foreign"),
    ):
        async with database.session() as session:
            with pytest.raises(IntegrityError) as refused:
                async with session.begin():
                    session.add(row)
            message = str(refused.value).lower()
            assert ("unique" if constraint == "one_open" else "foreign") in message
            if constraint == "one_open" and not database.is_sqlite:
                assert "ix_handoff_one_open_per_identity" in message
    async with database.session() as session, session.begin():
        session.add(Handoff(identity_id=2, reason="keyword", opened_at=_NOW))
        await session.flush()
