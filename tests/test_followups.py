"""Scheduled follow-ups end to end: reminders, check-ins, rating prompts and staff alerts.

Time is the test's to move: the dispatcher runs through ``FollowUpScheduler.run_due(now)``,
the same code every scheduler job runs, with a clock the test turns. A few tests start the
real AsyncIOScheduler (durations of a second or two), stop it and start another on the
same database, as a restart would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from channels import SECRET, TOKEN
from fakes.telegram_api import FakeTelegram
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col
from test_cli import run
from transcript import INTAKE_AR

from bot.config import FollowupSettings, Settings
from bot.desk import StaffDesk
from bot.engine import utcnow
from bot.followups import (
    FOLLOWUPS,
    FollowUpDispatcher,
    FollowUpKind,
    FollowUpPlanner,
    FollowUpPolicy,
    followup_key,
    staff_deadline,
)
from bot.scheduler import (
    FollowUpJobStore,
    FollowUpScheduler,
    job_states,
    job_store_url,
    run_followup,
)
from bot.server import Tawasul
from bot.templates import TemplateKind
from flows.types import Address, ConversationState, InboundMessage
from storage.db import Database
from storage.models import FollowUp, Message, Rating, SupportRequest
from storage.repositories import (
    ConversationRepository,
    FollowUpRepository,
    IdentityRepository,
    StaffRepository,
)

START = datetime(2030, 1, 6, 7, 0, tzinfo=UTC)  # Sunday 6 January 2030, 10:00 in Riyadh
VISITOR = Address("web", "visitor-1")
STAFF_GROUP = -1001234567890
SUBMITTED_AR = "تم الاستلام وينتظر الدراسة"  # the status label the check-in quotes


class Clock:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Office:
    """A Tawasul with a test's clock: a beneficiary talks to its engine, staff use its desk,
    and the test runs whatever follow-ups are due when it says."""

    def __init__(self, tawasul: Tawasul, clock: Clock) -> None:
        self.tawasul, self.clock = tawasul, clock
        self.database = tawasul.database
        self._ids = itertools.count(1)

    async def say(self, text: str, address: Address = VISITOR) -> list[str]:
        message = InboundMessage(address, self.clock(), text, platform_message_id=self._next())
        result = await self.tawasul.engine.handle(message)
        return [item.message.text for item in result.replies]

    async def say_all(self, lines: Iterable[str], address: Address = VISITOR) -> list[str]:
        return [" ".join(await self.say(line, address)) for line in lines]

    async def file(self, address: Address = VISITOR) -> str:
        """A whole intake, signed: the request's reference."""
        replies = await self.say_all(INTAKE_AR, address)
        assert "REQ-" in replies[-1]
        return "REQ-" + replies[-1].split("REQ-")[1][:6]

    async def run_due(self, **delta: float) -> int:
        return await self.tawasul.scheduler.run_due(self.clock.advance(**delta))

    async def sent(self, kind: str | None = None) -> list[Message]:
        """Follow-up messages in the outbox (by their template's kind), oldest first."""
        async with self.database.session() as session:
            rows = (await session.scalars(select(Message).order_by(col(Message.id)))).all()
        return [
            row
            for row in rows
            if row.template is not None
            and row.template["kind"] != "status_update"
            and (kind is None or row.template["kind"] == kind)
        ]

    async def followups(self) -> dict[str, FollowUp]:
        async with self.database.session() as session:
            return {row.key: row for row in await session.scalars(select(FollowUp))}

    async def state(self, address: Address = VISITOR) -> ConversationState:
        async with self.database.session() as session:
            identity = await IdentityRepository(session).find(address)
            assert identity is not None and identity.id is not None
            return await ConversationRepository(session).load(identity.id)

    def _next(self) -> str:
        return f"m{next(self._ids)}"


def _settings(tmp_path: Path, **followups: str) -> Settings:
    return Settings(server={"media_dir": str(tmp_path / "media")}, followups=followups)


@pytest.fixture
async def office(database: Database, tmp_path: Path) -> Office:
    clock = Clock(START)
    return Office(Tawasul(_settings(tmp_path), database, clock=clock), clock)


class DispatcherRuns:
    """The scheduler's dispatcher, recording each run it finished: a job's work is done when
    its key shows here, whatever it did (a stale job does nothing visible)."""

    def __init__(self, dispatcher: FollowUpDispatcher) -> None:
        self.dispatcher = dispatcher
        self.done: list[tuple[str, str | None]] = []

    async def run(self, key: str, now: datetime) -> str | None:
        status = await self.dispatcher.run(key, now)
        self.done.append((key, status))
        return status

    async def failed(self, key: str, now: datetime) -> str | None:
        return await self.dispatcher.failed(key, now)


async def eventually(check: Callable[[], Any], what: str, seconds: float = 10.0) -> Any:
    """Wait (bounded) until the coroutine ``check()`` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- intake: a draft left alone ---


async def test_a_half_done_intake_is_reminded_then_dropped(office: Office) -> None:
    await office.say_all(INTAKE_AR[:4])  # the name answered: a draft
    key = followup_key(FollowUpKind.INTAKE_REMINDER, 1)
    row = (await office.followups())[key]
    assert (row.kind, row.status, row.due_at) == (
        "intake_reminder",
        "pending",
        START + timedelta(1),
    )

    assert await office.run_due(hours=23) == 0
    assert await office.sent() == []
    await office.run_due(hours=1)
    [reminder] = await office.sent()
    assert "بدأتَ تقديم طلب دعم" in reminder.text
    assert [c["label"] for c in reminder.choices] == ["المتابعة من حيث توقفت", "البدء من جديد"]
    assert reminder.kind == "proactive"
    assert reminder.template == {"kind": "intake_reminder", "variables": {}}
    state = await office.state()
    assert (state.flow, state.step) == ("intake", "continue_or_restart")
    row = (await office.followups())[key]
    assert (row.kind, row.due_at) == ("intake_expire", START + timedelta(days=7))

    # "1" continues where it stopped, and the reminder starts over from this message.
    assert "(٢/٨)" in " ".join(await office.say("١"))
    row = (await office.followups())[key]
    assert (row.kind, row.due_at) == ("intake_reminder", office.clock() + timedelta(1))

    # Silent again: one more reminder a day later, the draft dropped a week after the
    # last message, kindly, and "1" starts a new request.
    await office.run_due(days=1)
    assert len(await office.sent("intake_reminder")) == 2
    await office.run_due(days=6)
    [expired] = await office.sent("intake_expire")
    assert "حذفنا ما أدخلته" in expired.text
    state = await office.state()
    assert state.flow == "menu" and "intake_draft" not in state.data
    assert (await office.followups())[key].status == "done"
    assert "سنسألك بضعة أسئلة" in " ".join(await office.say("١"))
    assert await office.run_due(days=30) == 0  # no draft, no reminder


async def test_the_reminder_follows_the_last_message_without_touching_the_job_store(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[list[str]] = []
    monkeypatch.setattr(office.tawasul.scheduler, "sync", lambda keys: synced.append(list(keys)))
    await office.say_all(INTAKE_AR[:4])
    key = followup_key(FollowUpKind.INTAKE_REMINDER, 1)
    assert synced == [[key]]  # the draft appeared: its job is set

    for _ in range(10):  # a beneficiary typing: no query, no job store
        office.clock.advance(minutes=2)
        await office.say("abc")
    assert (await office.followups())[key].due_at == START + timedelta(1)
    office.clock.advance(minutes=10)
    await office.say("abc")  # after a pause: the row moves, the job stays
    last = office.clock()
    assert (await office.followups())[key].due_at == last + timedelta(1)
    assert synced == [[key]]

    # The job wakes at the first time, finds the row later, and is set again: no message.
    office.clock.now = START + timedelta(1)
    await office.tawasul.scheduler.run_job(key)
    assert await office.sent() == []
    assert synced == [[key], [key]]
    office.clock.now = last + timedelta(1)
    await office.run_due()
    assert len(await office.sent("intake_reminder")) == 1


async def test_signing_cancels_the_reminder_and_plans_the_decision_and_checkins(
    office: Office,
) -> None:
    await office.file()
    rows = await office.followups()
    assert rows[followup_key(FollowUpKind.INTAKE_REMINDER, 1)].status == "cancelled"
    assert rows["decision_due:request:1"].due_at == START + timedelta(days=14)  # a Sunday
    assert rows["checkin:request:1"].due_at == START + timedelta(days=7)
    assert {
        row.status
        for key, row in rows.items()
        if key != followup_key(FollowUpKind.INTAKE_REMINDER, 1)
    } == {"pending"}


async def test_starting_over_cancels_the_reminder(office: Office) -> None:
    await office.say_all([*INTAKE_AR[:4], "٠", "١", "٢"])  # leave, come back, start over
    assert (await office.followups())[
        followup_key(FollowUpKind.INTAKE_REMINDER, 1)
    ].status == "cancelled"
    assert await office.run_due(days=2) == 0


# --- check-ins while a request is open ---


async def test_checkins_while_a_request_is_open_end_when_it_is_finished(office: Office) -> None:
    reference = await office.file()
    desk = office.tawasul.desk
    await office.run_due(days=7)
    [checkin] = await office.sent("checkin")
    assert reference in checkin.text and SUBMITTED_AR in checkin.text
    assert checkin.template == {
        "kind": "checkin",
        "variables": {"reference": reference, "status": SUBMITTED_AR},
    }
    assert checkin.kind == "proactive" and checkin.request_id == 1
    await office.run_due(days=7)
    assert len(await office.sent("checkin")) == 2

    # A status change tells the beneficiary: the next check-in is a whole period later.
    office.clock.advance(days=3)
    await desk.set_status(reference, "under_review")
    assert (await office.followups())["checkin:request:1"].due_at == office.clock() + timedelta(7)
    await office.run_due(days=6)
    assert len(await office.sent("checkin")) == 2

    await desk.set_status(reference, "rejected", note="الدخل يتجاوز الحد")
    rows = await office.followups()
    assert rows["checkin:request:1"].status == "cancelled"
    assert rows["decision_due:request:1"].status == "done"  # staff were alerted on day 14
    assert await office.run_due(days=60) == 0
    assert len(await office.sent("checkin")) == 2

    # An appeal opens it again.
    await desk.set_status(reference, "under_review", note="تظلم")
    await office.run_due(days=7)
    assert len(await office.sent("checkin")) == 3


async def test_after_downtime_a_missed_checkin_is_sent_once(office: Office) -> None:
    await office.file()
    await office.run_due(days=7 * 3 + 1)  # three periods missed
    assert len(await office.sent("checkin")) == 1
    row = (await office.followups())["checkin:request:1"]
    assert (row.status, row.due_at) == ("pending", office.clock() + timedelta(7))


# --- the committee's decision date, in the working week ---


@pytest.mark.parametrize(
    ("due", "alert"),
    [
        ("2030-01-17T12:00+03:00", "2030-01-17T12:00+03:00"),  # Thursday: at once
        ("2030-01-18T10:00+03:00", "2030-01-20T08:00+03:00"),  # Friday: Sunday morning
        ("2030-01-19T23:30+03:00", "2030-01-20T08:00+03:00"),  # Saturday night: the same
        ("2030-01-20T07:00+03:00", "2030-01-20T07:00+03:00"),  # Sunday: a working day
        ("2030-01-17T22:30+00:00", "2030-01-20T08:00+03:00"),  # Thursday in UTC, Friday there
    ],
)
def test_staff_deadlines_keep_the_saudi_working_week(due: str, alert: str) -> None:
    at = staff_deadline(datetime.fromisoformat(due), "Asia/Riyadh")
    assert at == datetime.fromisoformat(alert)
    assert at.tzinfo is not None


async def test_a_decision_due_on_friday_alerts_staff_on_sunday_morning(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    office.clock.now = datetime(2030, 1, 4, 7, 0, tzinfo=UTC)  # Friday, 10:00 in Riyadh
    reference = await office.file()
    other = await office.file(Address("web", "visitor-2"))
    await office.tawasul.desk.set_status(other, "under_review")
    await office.tawasul.desk.set_status(other, "accepted")  # decided: no alert for it
    sunday = datetime(2030, 1, 20, 5, 0, tzinfo=UTC)  # 08:00 in Riyadh
    assert (await office.followups())["decision_due:request:1"].due_at == sunday

    caplog.set_level(logging.WARNING, logger="bot.followups")
    office.clock.now = datetime(2030, 1, 18, 9, 0, tzinfo=UTC)  # the Friday it was due
    await office.run_due()
    assert "past its decision date" not in caplog.text
    overdue = await office.tawasul.desk.list_requests(overdue=True)
    assert [r.reference for r in overdue] == [reference]  # visible to staff meanwhile

    office.clock.now = sunday
    await office.run_due()
    assert f"request {reference} is past its decision date" in caplog.text
    assert f"request {other} is past" not in caplog.text
    rows = await office.followups()
    assert rows["decision_due:request:1"].status == "done"
    assert rows["decision_due:request:2"].status == "cancelled"


# --- rating after delivery ---


async def _delivered(office: Office) -> str:
    reference = await office.file()
    for status in ("under_review", "accepted", "delivered"):
        await office.tawasul.desk.set_status(reference, status)
    return reference


async def test_delivery_brings_a_rating_prompt_then_one_reminder(office: Office) -> None:
    reference = await _delivered(office)
    rows = await office.followups()
    assert rows["checkin:request:1"].status == "cancelled"
    assert rows["rating_prompt:request:1"].due_at == START + timedelta(days=2)

    await office.run_due(days=2)
    [prompt] = await office.sent()
    assert reference in prompt.text and "من ١ (غير مُرضية) إلى ٥" in prompt.text
    assert prompt.template == {"kind": "rating_prompt", "variables": {"reference": reference}}
    assert prompt.inline and len(prompt.choices) == 5
    state = await office.state()
    assert (state.flow, state.step) == ("rating", "score")
    assert state.data["rating_reference"] == reference
    assert state.data["rating_context"] == "service"

    await office.run_due(days=2)
    [reminder] = await office.sent("rating_reminder")
    assert "تذكير" in reminder.text and reference in reminder.text
    assert (await office.followups())["rating_prompt:request:1"].status == "done"
    assert await office.run_due(days=30) == 0


async def test_a_rating_of_the_request_cancels_the_reminder(office: Office) -> None:
    reference = await _delivered(office)
    await office.run_due(days=2)
    await office.say_all(["٥", "تخطي"])
    async with office.database.session() as session:
        rating = (await session.scalars(select(Rating))).one()
        rated = await session.get(SupportRequest, rating.request_id)
    assert rating.score == 5 and rated is not None and rated.reference == reference
    assert (await office.followups())["rating_prompt:request:1"].status == "cancelled"
    await office.run_due(days=5)
    assert [m.template["kind"] for m in await office.sent() if m.template] == ["rating_prompt"]


async def test_a_beneficiary_who_rated_already_is_not_asked(office: Office) -> None:
    await _delivered(office)
    await office.say_all(["٣", "٤", "تخطي"])  # from the menu, naming no request
    assert (await office.followups())["rating_prompt:request:1"].status == "cancelled"
    await office.run_due(days=5)
    assert await office.sent() == []


# --- a handoff mutes every automation for its beneficiary ---


async def test_an_open_handoff_mutes_checkins_and_rating_prompts(office: Office) -> None:
    reference = await office.file()
    await office.say("٤")  # a person, please
    await office.run_due(days=7)
    assert await office.sent("checkin") == []
    row = (await office.followups())["checkin:request:1"]
    assert (row.status, row.due_at) == ("pending", office.clock() + timedelta(7))
    assert row.detail == {"muted": 1}

    [handoff] = await office.tawasul.desk.open_handoffs()
    assert handoff.id is not None
    await office.tawasul.desk.close(handoff.id, None)
    await office.run_due(days=7)
    assert len(await office.sent("checkin")) == 1

    # Delivered while in a second handoff: the prompt waits until it is over.
    await office.say_all(["٠", "٤"])
    for status in ("under_review", "accepted", "delivered"):
        await office.tawasul.desk.set_status(reference, status)
    await office.run_due(days=2)
    assert await office.sent("rating_prompt") == []
    assert (await office.followups())["rating_prompt:request:1"].status == "pending"
    await office.say("٠")  # the beneficiary leaves the handoff
    await office.run_due(days=2)
    assert len(await office.sent("rating_prompt")) == 1


async def test_a_reminder_in_a_handoff_waits(office: Office) -> None:
    await office.say_all([*INTAKE_AR[:4], "موظف"])  # a draft, then a person
    assert (await office.state()).flow == "handoff"
    await office.run_due(days=1, minutes=1)
    assert await office.sent() == []
    assert (await office.followups())[
        followup_key(FollowUpKind.INTAKE_REMINDER, 1)
    ].status == "pending"


# --- staff alerts in the Telegram staff group ---


async def test_unclaimed_handoffs_and_overdue_decisions_reach_the_staff_group(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> None:
    settings = Settings(
        server={"media_dir": str(tmp_path / "media"), "public_url": "https://bot.example.org"},
        telegram={
            "token": TOKEN,
            "webhook_secret": SECRET,
            "api_base_url": telegram.base_url,
            "staff_chat_id": STAFF_GROUP,
        },
    )
    async with database.session() as session, session.begin():
        sara = await StaffRepository(session).add("sara", "agent", telegram_id=4242, now=START)
    clock = Clock(START)  # years ahead of the wall clock: the real jobs never fire here
    office = Office(Tawasul(settings, database, clock=clock), clock)

    def posts() -> list[dict[str, Any]]:
        calls = telegram.calls("sendMessage")
        return [c.params for c in calls if c.params["chat_id"] == STAFF_GROUP]

    async with TestClient(TestServer(office.tawasul.app())):
        await office.say("٤")
        await office.run_due(minutes=29)
        assert posts() == []
        await office.run_due(minutes=1)
        [reminder] = posts()
        assert "لم يستلمه أحد" in reminder["text"]
        buttons = [b["callback_data"] for b in reminder["reply_markup"]["inline_keyboard"][0]]
        assert buttons == ["h:take:1", "h:close:1"]

        # Taken in time: no reminder.
        visitor = Address("web", "visitor-2")
        await office.say("٤", visitor)
        await office.tawasul.desk.take(2, sara)
        assert (await office.followups())["handoff_unclaimed:handoff:2"].status == "cancelled"
        await office.run_due(hours=1)
        assert len(posts()) == 1

        reference = await office.file(Address("web", "visitor-3"))
        await office.run_due(days=14)
        overdue = posts()[-1]["text"]
        assert reference in overdue and "tawasul requests list --overdue" in overdue


# --- the real scheduler: its clock, restarts, and other processes ---


async def test_the_real_scheduler_fires_a_reminder_within_seconds(
    database: Database, tmp_path: Path
) -> None:
    tawasul = Tawasul(_settings(tmp_path, intake_reminder_after="1s"), database)
    office = Office(tawasul, Clock(START))
    await tawasul.scheduler.start()
    try:
        for line in INTAKE_AR[:4]:
            office.clock.now = utcnow()
            await office.say(line)
        reminders = await eventually(lambda: office.sent("intake_reminder"), "the reminder", 8)
        assert len(reminders) == 1

        async def expiry() -> bool:  # set again, for the expiry in a week
            return list(await tawasul.scheduler.jobs()) == [
                followup_key(FollowUpKind.INTAKE_REMINDER, 1)
            ]

        await eventually(expiry, "the expiry's job")
    finally:
        await tawasul.scheduler.stop()


async def test_a_restart_keeps_the_jobs_runs_what_was_missed_and_drops_the_rest(
    database: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    first = Tawasul(settings, database)
    office = Office(first, Clock(START))
    await first.scheduler.start()
    try:
        office.clock.now = utcnow()
        await office.file()

        async def both() -> bool:
            return set(await first.scheduler.jobs()) == {
                "decision_due:request:1",
                "checkin:request:1",
            }

        await eventually(both, "a job per pending follow-up")
    finally:
        await first.scheduler.stop()

    # Down for three weeks, meanwhile the request was decided from the command line.
    async with database.session() as session, session.begin():
        await session.execute(
            update(FollowUp)
            .where(col(FollowUp.key) == "checkin:request:1")
            .values(due_at=utcnow() - timedelta(days=21))
        )
        await session.execute(
            update(FollowUp)
            .where(col(FollowUp.key) == "decision_due:request:1")
            .values(status="cancelled")
        )

    second = Tawasul(settings, database)
    office = Office(second, Clock(START))
    await second.scheduler.start()
    try:
        await eventually(lambda: office.sent("checkin"), "the missed check-in")

        async def rearmed() -> dict[str, datetime]:
            jobs = await second.scheduler.jobs()
            return jobs if list(jobs) == ["checkin:request:1"] else {}

        jobs = await eventually(rearmed, "the check-in set again")
        assert jobs["checkin:request:1"] > utcnow() + timedelta(days=6)
        # A job is set again only after its run committed: every check-in is counted.
        assert len(await office.sent("checkin")) == 1  # once, not once per missed week
    finally:
        await second.scheduler.stop()


async def test_a_job_for_a_finished_matter_does_nothing(database: Database, tmp_path: Path) -> None:
    settings = _settings(tmp_path, checkin_every="3s")
    tawasul = Tawasul(settings, database)
    office = Office(tawasul, Clock(START))
    runs = DispatcherRuns(tawasul.scheduler.dispatcher)
    tawasul.scheduler.dispatcher = cast(FollowUpDispatcher, runs)
    await tawasul.scheduler.start()
    try:
        office.clock.now = utcnow()
        reference = await office.file()

        async def planned() -> bool:
            return "checkin:request:1" in await tawasul.scheduler.jobs()

        await eventually(planned, "the check-in's job")
        # Rejected from the command line: its row is cancelled, its job here stays.
        planner = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
        cli = StaffDesk(database, settings.flow_settings(), utcnow, followups=planner)
        await cli.set_status(reference, "rejected", note="خارج نطاق الجمعية")
        assert "checkin:request:1" in await tawasul.scheduler.jobs()

        async def ran() -> list[tuple[str, str | None]]:
            return runs.done

        assert await eventually(ran, "the stale job to run") == [("checkin:request:1", None)]
        assert "checkin:request:1" not in await tawasul.scheduler.jobs()
        assert await office.sent("checkin") == []
    finally:
        await tawasul.scheduler.stop()


async def test_the_sweep_runs_what_another_process_planned(
    database: Database, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, rating_prompt_after="1s")
    tawasul = Tawasul(settings, database)
    office = Office(tawasul, Clock(utcnow()))
    reference = await office.file()
    policy = FollowUpPolicy.from_settings(settings)
    cli = StaffDesk(database, settings.flow_settings(), utcnow, followups=FollowUpPlanner(policy))
    dispatcher = FollowUpDispatcher(database, policy)
    scheduler = FollowUpScheduler(database, dispatcher, clock=utcnow, sweep_seconds=0.3)
    await scheduler.start()
    try:
        for status in ("under_review", "accepted", "delivered"):
            await cli.set_status(reference, status)  # no job here: the rows only
        await eventually(lambda: office.sent("rating_prompt"), "the rating prompt")
    finally:
        await scheduler.stop()


# --- many follow-ups: jobs written and reconciled in batches ---


def test_jobs_written_in_bulk_are_those_apscheduler_writes(tmp_path: Path) -> None:
    due = START + timedelta(days=3, microseconds=123)
    ours = FollowUpJobStore(url=f"sqlite:///{tmp_path / 'ours.db'}")
    theirs = SQLAlchemyJobStore(url=f"sqlite:///{tmp_path / 'theirs.db'}")
    scheduler = BackgroundScheduler(timezone=UTC, jobstores={"ours": ours, "theirs": theirs})
    scheduler.start(paused=True)
    try:
        for key in ("checkin:request:1", "decision_due:request:1"):
            scheduler.add_job(
                run_followup,
                DateTrigger(run_date=due, timezone=UTC),
                args=(key,),
                id=key,
                name=key,
                jobstore="theirs",
                coalesce=True,
                misfire_grace_time=None,
            )
        plan = [("checkin:request:1", due), ("decision_due:request:1", due)]
        ours.put(job_states(scheduler, [("checkin:request:1", due - timedelta(days=1))]))
        ours.put(job_states(scheduler, plan))  # replaces the first one
        with ours.engine.connect() as a, theirs.engine.connect() as b:
            query = select(ours.jobs_t).order_by(ours.jobs_t.c.id)
            assert a.execute(query).all() == b.execute(query).all()
        assert ours.next_run_times() == dict.fromkeys(
            ["checkin:request:1", "decision_due:request:1"], datetime_to_utc_timestamp(due)
        )
        ours.remove(["checkin:request:1", "no-such-job"])
        assert [job.id for job in ours.get_all_jobs()] == ["decision_due:request:1"]
    finally:
        scheduler.shutdown(wait=False)


async def test_thousands_of_followups_are_reconciled_and_synced_in_batches(
    database: Database, tmp_path: Path
) -> None:
    now = utcnow()

    def plans(numbers: range, days: float = 3) -> list[dict[str, Any]]:
        due = now + timedelta(days=days)
        return [{"key": f"checkin:request:{n}", "kind": "checkin", "due_at": due} for n in numbers]

    async def change(numbers: range, *, days: float | None = None) -> list[str]:
        """Schedule these (at ``days`` from now) or cancel them (``days`` None)."""
        async with database.session() as session, session.begin():
            followups = FollowUpRepository(session)
            if days is None:
                return await followups.cancel([p["key"] for p in plans(numbers)], now)
            await followups.schedule_many(plans(numbers, days), now=now)
            return [p["key"] for p in plans(numbers)]

    async def pending() -> dict[str, datetime]:
        async with database.session() as session:
            return await FollowUpRepository(session).due_times()

    policy = FollowUpPolicy.from_settings(_settings(tmp_path))
    dispatcher = FollowUpDispatcher(database, policy)

    def scheduler() -> FollowUpScheduler:
        return FollowUpScheduler(database, dispatcher, clock=utcnow)

    await change(range(2_500), days=3)
    first = scheduler()
    await first.start()
    try:
        assert await first.jobs() == await pending()
    finally:
        await first.stop()

    # While it was down: 1,200 done, 300 moved, 1,100 new.
    await change(range(1_200), days=None)
    await change(range(2_200, 2_500), days=5)
    await change(range(2_500, 3_600), days=1)
    second = scheduler()
    await second.start()
    try:
        assert len(await pending()) == 2_400
        assert await second.jobs() == await pending()
        # Running: a plan of thousands, then some of it cancelled, each synced after commit.
        second.sync(await change(range(3_600, 6_000), days=2))
        second.sync(await change(range(1_200, 2_000), days=None))
        await second.flush()
        assert len(await pending()) == 4_000
        assert await second.jobs() == await pending()
    finally:
        await second.stop()


async def test_followups_changed_in_a_burst_have_their_jobs_written_together(
    database: Database, tmp_path: Path
) -> None:
    # Under load every answer moves a draft's reminder: the jobs are written a few times
    # a second, each write taking every change since the last, not once per change.
    now = utcnow()
    due = now + timedelta(days=1)
    dispatcher = FollowUpDispatcher(database, FollowUpPolicy.from_settings(_settings(tmp_path)))
    scheduler = FollowUpScheduler(database, dispatcher, clock=utcnow)
    writes: list[str] = []

    def record(*args: Any) -> None:
        if args[2].startswith("INSERT INTO apscheduler_jobs"):
            writes.append(args[2])

    await scheduler.start()
    event.listen(Engine, "before_cursor_execute", record)
    try:
        for burst in range(20):
            plans = [
                {"key": f"checkin:request:{burst}-{n}", "kind": "checkin", "due_at": due}
                for n in range(5)
            ]
            async with database.session() as session, session.begin():
                await FollowUpRepository(session).schedule_many(plans, now=now)
            scheduler.sync(plan["key"] for plan in plans)
            await asyncio.sleep(0.01)

        async def written() -> bool:
            return len(await scheduler.jobs()) == 100

        await eventually(written, "every job written")
    finally:
        event.remove(Engine, "before_cursor_execute", record)
        await scheduler.stop()
    assert 1 <= len(writes) <= 4


async def test_due_times_reads_pending_followups_only(database: Database) -> None:
    now = utcnow()
    async with database.session() as session, session.begin():
        followups = FollowUpRepository(session)
        plans = [
            {"key": f"checkin:request:{n}", "kind": "checkin", "due_at": now + timedelta(n)}
            for n in range(1, 4)
        ]
        await followups.schedule_many(plans, now=now)
        await followups.cancel(["checkin:request:2"], now)
        assert await followups.due_times() == {
            "checkin:request:1": now + timedelta(1),
            "checkin:request:3": now + timedelta(3),
        }
        keys = ["checkin:request:2", "checkin:request:3", "no-such-key"]
        assert await followups.due_times(keys) == {"checkin:request:3": now + timedelta(3)}
        assert await followups.due_times([]) == {}


def test_the_job_store_uses_a_sync_driver_on_the_same_database() -> None:
    assert (
        job_store_url("sqlite+aiosqlite:////var/lib/tawasul.db") == "sqlite:////var/lib/tawasul.db"
    )
    assert job_store_url("sqlite+aiosqlite://") is None
    assert (
        job_store_url("postgresql+asyncpg://bot:pw@db:5432/tawasul?ssl=require")
        == "postgresql+psycopg://bot:pw@db:5432/tawasul?sslmode=require"
    )


# --- tawasul jobs list ---


def _jobs(tmp_path: Path) -> list[tuple[str, datetime, str]]:
    result = run(tmp_path, "jobs", "list")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    return [(kind, datetime.fromisoformat(due), key) for kind, due, key in lines]


def test_jobs_list_shows_pending_followups_in_the_organisation_s_time(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=INTAKE_AR[:4]).returncode == 0
    [(kind, due, key)] = _jobs(tmp_path)
    assert (kind, key) == ("intake_reminder", "intake_reminder:identity:1")
    assert due.utcoffset() == timedelta(hours=3)  # Asia/Riyadh
    assert abs(due - (utcnow() + timedelta(days=1))) < timedelta(minutes=1)

    assert run(tmp_path, "chat", lines=INTAKE_AR[4:]).returncode == 0  # signed
    assert [(kind, key) for kind, _, key in _jobs(tmp_path)] == [
        ("checkin", "checkin:request:1"),
        ("decision_due", "decision_due:request:1"),
    ]
    for status in ("under_review", "accepted", "delivered"):
        assert run(tmp_path, "requests", "set-status", "REQ-000001", status).returncode == 0
    assert [(kind, key) for kind, _, key in _jobs(tmp_path)] == [
        ("rating_prompt", "rating_prompt:request:1")
    ]


async def test_a_failing_followup_is_tried_again_later_then_dropped(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    await office.file()
    dispatcher = office.tawasul.scheduler.dispatcher

    async def broken(_dispatcher: object, _run: object) -> None:
        raise RuntimeError("a bug")

    record = dataclasses.replace(FOLLOWUPS[FollowUpKind.CHECKIN], action=broken)
    monkeypatch.setitem(dispatcher._records, "checkin", record)
    await office.run_due(days=7)
    row = (await office.followups())["checkin:request:1"]
    assert (row.status, row.detail) == ("pending", {"failures": 1})
    assert row.due_at == office.clock() + timedelta(minutes=1)
    for _ in range(4):
        await office.run_due(hours=1)
    assert (await office.followups())["checkin:request:1"].status == "dropped"
    assert await office.sent("checkin") == []


def test_every_follow_up_kind_is_one_complete_record() -> None:
    assert set(FOLLOWUPS) == set(FollowUpKind)
    sent = {record.template for record in FOLLOWUPS.values() if record.template is not None}
    # Every template kind is sent by something: a follow-up, the staff desk's notice, or
    # the feedback desk's answer, the visit desk's proposal.
    staff_sent = {
        TemplateKind.STATUS_UPDATE,
        TemplateKind.FEEDBACK_ANSWER,
        TemplateKind.VISIT_PROPOSED,
    }
    assert sent | staff_sent == set(TemplateKind)
    durations = {
        name
        for name, info in FollowupSettings.model_fields.items()
        if info.annotation is timedelta and name != "too_old_after"
    }
    named = {record.delay for record in FOLLOWUPS.values()} - {None}
    assert named == durations  # no setting left that no record reads
    policy = FollowUpPolicy()
    for kind, record in FOLLOWUPS.items():
        assert record.key_of(7).endswith(":7") and record.key_of(7).split(":")[0] in FOLLOWUPS
        if record.delay is not None:
            assert policy.after(kind) == getattr(FollowupSettings(), record.delay)
    with pytest.raises(ValueError, match=r"no setting followups\.checkin_often"):
        dataclasses.replace(FOLLOWUPS[FollowUpKind.CHECKIN], delay="checkin_often")
    with pytest.raises(ValueError, match="only messages to beneficiaries wait"):
        dataclasses.replace(FOLLOWUPS[FollowUpKind.DECISION_DUE], quiet_hours=True)
