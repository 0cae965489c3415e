"""The migrations as a developer or a DBA runs them: the ``alembic`` command on its own.

``tawasul db upgrade`` and the server run the migrations inside their own connection
(tests/test_storage_migrations.py); ``alembic`` opens its own, reads the URL from ``-x
url=`` or ``TAWASUL_DATABASE__URL``, writes SQL for a DBA offline, and compares the models
with the migrations when a new one is made.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from storage.db import alembic_config

INI = Path(__file__).resolve().parent.parent / "storage" / "alembic.ini"
SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
REVISIONS = list(SCRIPTS.walk_revisions())


def alembic(cwd: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    if url is not None:
        environment["TAWASUL_DATABASE__URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(INI), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=120,
        check=False,
    )


def test_alembic_upgrades_a_database_named_on_its_command_line(tmp_path: Path) -> None:
    database = tmp_path / "named.db"
    done = alembic(tmp_path, "-x", f"url=sqlite:///{database}", "upgrade", "head")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"support_request", "message", "followup"} <= tables
    assert not (tmp_path / "tawasul.db").exists()  # not the ini file's default


def test_alembic_finds_nothing_to_generate_beside_the_scheduler_table(tmp_path: Path) -> None:
    database = tmp_path / "env.db"
    url = f"sqlite+aiosqlite:///{database}"
    assert alembic(tmp_path, "upgrade", "head", url=url).returncode == 0  # from the environment
    # APScheduler makes its own table in the same database: not ours to drop.
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY,"
            " next_run_time FLOAT, job_state BLOB NOT NULL)"
        )
    checked = alembic(tmp_path, "check", url=url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected." in checked.stdout


def test_alembic_writes_the_sql_for_a_dba_without_a_connection(tmp_path: Path) -> None:
    # A host that does not exist: offline, nothing connects to it.
    url = "postgresql://tawasul@db.invalid/tawasul"
    offline = alembic(tmp_path, "-x", f"url={url}", "upgrade", "head", "--sql")
    assert offline.returncode == 0, offline.stderr
    assert "CREATE TABLE support_request (" in offline.stdout
    assert offline.stdout.count("UPDATE alembic_version SET") == len(REVISIONS) - 1
    assert f"UPDATE alembic_version SET version_num='{HEAD}'" in offline.stdout
