"""Appointments end to end through the engine, with a test's clock: booking, moving and
cancelling over a channel stand-in, reminders sent once at their time and never after a
cancel, and 20 beneficiaries racing for 5 places (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_followups import Clock, Office

from bot.config import Settings
from bot.server import Tawasul
from bot.visits import VisitDesk
from flows import as_plain_text
from flows.types import Address, InboundMessage
from storage.appointments import AppointmentRepository
from storage.db import Database

# Sunday 6 January 2030, 10:00 in Riyadh: today's hours are over, Monday is the first day.
START = datetime(2030, 1, 6, 7, 0, tzinfo=UTC)
TUESDAY_8 = datetime(2030, 1, 8, 5, 0, tzinfo=UTC)  # 08:00 in Riyadh
ME = Address("whatsapp", "+966551234567")


def settings(tmp_path: Path, capacity: int = 1) -> Settings:
    hours = {"branch": "الرياض", "from": "08:00", "to": "10:00", "capacity": capacity}
    return Settings(
        server={"media_dir": str(tmp_path / "media")},
        appointments={"hours": [hours], "reminders": ["24h", "2h"]},
    )


@pytest.fixture
async def office(database: Database, tmp_path: Path) -> Office:
    clock = Clock(START)
    return Office(Tawasul(settings(tmp_path), database, clock=clock), clock)


async def book_tuesday_8(office: Office, address: Address = ME) -> list[str]:
    """Menu 7, Tuesday (the second day), 08:00 (the first time), yes."""
    return await office.say_all(["٧", "٢", "١", "نعم"], address)


async def reminders(office: Office) -> list[tuple[str, str]]:
    return [(m.kind, m.text) for m in await office.sent("appointment_reminder")]


async def test_booked_then_reminded_once_each_time(office: Office) -> None:
    replies = await book_tuesday_8(office)
    assert "الثلاثاء" in replies[1]
    assert "تم حجز موعدك برقم APT-000001" in replies[-1] and "٠٨:٠٠" in replies[-1]
    rows = await office.followups()
    due = sorted(r.due_at for r in rows.values() if r.kind == "appointment_reminder")
    assert due == [TUESDAY_8 - timedelta(hours=24), TUESDAY_8 - timedelta(hours=2)]

    await office.run_due(hours=21, minutes=59)  # Monday 07:59 in Riyadh
    assert await reminders(office) == []
    await office.run_due(minutes=1)  # 24 hours before
    [(kind, text)] = await reminders(office)
    assert kind == "proactive" and "تذكير" in text and "APT-000001" in text
    await office.run_due(hours=1)
    assert len(await reminders(office)) == 1  # once
    await office.run_due(hours=21)  # Tuesday 06:00 in Riyadh: quiet hours, its own morning
    [_, (kind, text)] = await reminders(office)
    assert kind == "timely" and "APT-000001" in text


async def test_no_reminder_after_a_cancel(office: Office) -> None:
    await book_tuesday_8(office)
    replies = await office.say_all(["مواعيدي", "٢", "نعم"], ME)
    assert "APT-000001" in replies[0]
    assert "تم إلغاء الموعد APT-000001" in replies[-1]
    rows = await office.followups()
    assert {r.status for r in rows.values() if r.kind == "appointment_reminder"} == {"cancelled"}
    await office.run_due(days=2)
    assert await reminders(office) == []
    # The place is free again: someone else books it.
    other = Address("whatsapp", "+966557654321")
    assert "APT-000002" in (await book_tuesday_8(office, other))[-1]


async def test_moving_moves_the_reminders(office: Office) -> None:
    await book_tuesday_8(office)
    replies = await office.say_all(["٧", "١", "١", "١", "نعم"], ME)  # move, Monday, 08:00
    assert "لديك موعد قادم" in replies[0]
    assert "تم تغيير موعدك APT-000001" in replies[-1]
    await office.say_all(["مواعيدي"], ME)
    rows = await office.followups()
    pending = sorted(
        r.due_at
        for r in rows.values()
        if r.kind == "appointment_reminder" and r.status == "pending"
    )
    monday_8 = TUESDAY_8 - timedelta(days=1)
    assert pending == [monday_8 - timedelta(hours=2)]  # the 24h one is already past
    await office.run_due(hours=20)  # Monday 06:00 in Riyadh
    [(kind, text)] = await reminders(office)
    assert "الاثنين" in text and kind == "timely"


async def test_twenty_beneficiaries_race_for_five_places(
    database: Database, tmp_path: Path
) -> None:
    """Half of them through a second server on the same database, as a second process
    would be: its own engine and pool of connections."""
    clock = Clock(START)
    office = Office(Tawasul(settings(tmp_path, capacity=5), database, clock=clock), clock)
    second_db = Database(database.url, keyring=database.keyring)
    second = Tawasul(settings(tmp_path, capacity=5), second_db, clock=clock)
    people = [Address("whatsapp", f"+9665500000{n:02d}") for n in range(20)]
    for person in people:
        replies = await office.say_all(["٧", "٢", "١"], person)
        assert "هل نؤكد" in replies[-1]

    async def confirm(person: Address) -> str:
        message = InboundMessage(
            person, clock(), "نعم", platform_message_id=f"yes-{person.user_id}"
        )
        server = second if people.index(person) % 2 else office.tawasul
        result = await server.engine.handle(message)
        return "\n".join(as_plain_text(item.message) for item in result.replies)

    try:
        texts = await asyncio.gather(*(confirm(person) for person in people))
    finally:
        await second_db.dispose()
    won = [t for t in texts if "تم حجز موعدك" in t]
    lost = [t for t in texts if "حُجز هذا الوقت قبل لحظات" in t]
    assert len(won) == 5 and len(lost) == 15
    assert len({t.split("برقم ")[1][:10] for t in won}) == 5
    assert all("٠٨:٣٠" in t and "٠٨:٠٠" not in t for t in lost)  # the next free times
    async with database.session() as session:
        taken = await AppointmentRepository(session).taken(START, START + timedelta(days=3))
    assert taken == {("الرياض", TUESDAY_8): 5}


async def test_a_reminder_waits_while_staff_have_the_conversation(office: Office) -> None:
    await book_tuesday_8(office)
    assert "أبلغنا" in " ".join(await office.say("٤", ME))  # a person asked for: a handoff
    await office.run_due(hours=22)  # Monday 08:00: the 24-hour reminder is due
    assert await reminders(office) == []
    rows = await office.followups()
    [muted] = [r for r in rows.values() if r.key.endswith(":1440m")]
    assert (muted.status, muted.due_at) == ("pending", office.clock() + timedelta(minutes=15))
    await office.say("٠", ME)  # back to the menu: the handoff is closed
    await office.run_due(minutes=15)
    [(kind, text)] = await reminders(office)
    assert kind == "proactive" and "APT-000001" in text


async def test_another_time_asked_then_a_new_visit_replaces_the_first(office: Office) -> None:
    reference = await office.file()  # the web visitor's request
    tawasul = office.tawasul
    desk = VisitDesk(
        office.database, tawasul.settings.flow_settings(), office.clock, followups=tawasul.followups
    )
    first = await desk.schedule(reference, "2030-01-09 10:00", by=None)
    assert "سيتواصل معك" in " ".join(await office.say("٢"))  # another time, please
    rows = await office.followups()
    assert rows[f"visit_answered:appointment:{first.id}"].status == "pending"
    assert {r.status for k, r in rows.items() if k.startswith("appointment_reminder")} == {
        "cancelled"
    }
    second = await desk.schedule(reference, "2030-01-10 11:00", by=None)
    listed = [(item.appointment.reference, item.appointment.status) for item in await desk.visits()]
    assert listed == [(second.reference, "proposed")]
    mine = " ".join(await office.say("مواعيدي"))
    assert second.reference in mine and first.reference not in mine
