"""The follow-up scheduler when it is not running, or not alone: jobs find nothing to do,
questions get empty answers, and a second scheduler in one process is warned about."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.scheduler import run_followup
from bot.server import Tawasul
from storage.db import Database


def office(database: Database, tmp_path: Path) -> Tawasul:
    return Tawasul(Settings(server={"media_dir": str(tmp_path / "media")}), database)


async def test_a_job_that_wakes_with_no_scheduler_running_does_nothing_but_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_followup("checkin:request:1")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "follow-up checkin:request:1 woke with no scheduler running"
    ]


async def test_a_scheduler_not_started_has_no_jobs_and_stops_quietly(
    sqlite_database: Database, tmp_path: Path
) -> None:
    scheduler = office(sqlite_database, tmp_path).scheduler
    assert not scheduler.running
    assert await scheduler.jobs() == {}
    await scheduler.reconcile()  # nothing to bring in line with
    scheduler.sync(["checkin:request:1"])  # start-up reconciles: nothing kept here
    await scheduler.flush()
    await scheduler.stop()
    assert await scheduler.jobs() == {}


async def test_a_second_scheduler_in_one_process_is_warned_about(
    sqlite_database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = office(sqlite_database, tmp_path), office(sqlite_database, tmp_path)
    await first.scheduler.start()
    try:
        await second.scheduler.start()
        try:
            assert (
                "another follow-up scheduler runs in this process; its jobs come here"
                in caplog.text
            )
        finally:
            await second.scheduler.stop()
    finally:
        await first.scheduler.stop()
    assert not first.scheduler.running and not second.scheduler.running
