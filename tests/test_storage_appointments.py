"""Appointment storage: references, places never given twice (a race of 20 for 5), moving
and cancelling, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from flows.types import Address
from storage.appointments import (
    BOOKED,
    CANCELLED,
    AppointmentRepository,
    Place,
)
from storage.db import Database
from storage.models import Appointment, id_of
from storage.repositories import IdentityRepository

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
AT = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
PLACE = Place("الرياض", AT, 30, capacity=5)


async def identity(database: Database, number: int) -> int:
    async with database.session() as session, session.begin():
        address = Address("whatsapp", f"+96655{number:07d}")
        return id_of(await IdentityRepository(session).get_or_create(address, NOW))


async def book(database: Database, who: int, place: Place = PLACE) -> Appointment | None:
    async with database.session() as session, session.begin():
        return await AppointmentRepository(session).book(
            place, identity_id=who, channel="whatsapp", language="ar", now=NOW
        )


async def test_a_booking_gets_a_reference_and_counts_as_taken(database: Database) -> None:
    who = await identity(database, 1)
    first = await book(database, who)
    assert first is not None and first.reference == "APT-000001"
    assert first.status == BOOKED and first.place_no == 0
    async with database.session() as session:
        repository = AppointmentRepository(session)
        assert await repository.taken(NOW, NOW + timedelta(days=2)) == {("الرياض", AT): 1}
        assert [a.reference for a in await repository.upcoming_for(who, NOW)] == ["APT-000001"]
        assert await repository.upcoming_for(who, AT + timedelta(minutes=1)) == []


async def test_twenty_beneficiaries_race_for_five_places(database: Database) -> None:
    people = [await identity(database, n) for n in range(20)]
    results = await asyncio.gather(*(book(database, who) for who in people))
    won = [r for r in results if r is not None]
    assert len(won) == 5
    assert sorted(r.place_no for r in won) == [0, 1, 2, 3, 4]
    assert len({r.reference for r in won}) == 5
    async with database.session() as session:
        assert await AppointmentRepository(session).taken(NOW, AT + timedelta(hours=1)) == {
            ("الرياض", AT): 5
        }


async def test_the_database_refuses_a_place_given_twice_or_beyond_capacity(
    database: Database,
) -> None:
    who = await identity(database, 1)
    assert await book(database, who, Place("الرياض", AT, 30, capacity=1)) is not None
    row = {
        "kind": "interview",
        "status": BOOKED,
        "branch": "الرياض",
        "starts_at": AT,
        "ends_at": AT + timedelta(minutes=30),
        "capacity": 1,
        "language": "ar",
        "created_at": NOW,
        "updated_at": NOW,
    }
    for place_no in (0, 1):  # the same place again; a place beyond the capacity
        with pytest.raises(IntegrityError):
            async with database.session() as session, session.begin():
                await session.execute(insert(Appointment).values(**row, place_no=place_no))


async def test_a_cancelled_place_is_given_again_and_a_move_keeps_the_reference(
    database: Database,
) -> None:
    one, two = await identity(database, 1), await identity(database, 2)
    single = Place("الرياض", AT, 30, capacity=1)
    first = await book(database, one, single)
    assert first is not None
    assert await book(database, two, single) is None
    later = Place("الرياض", AT + timedelta(minutes=30), 30, capacity=1)
    async with database.session() as session, session.begin():
        repository = AppointmentRepository(session)
        mine = await repository.get_by_reference("apt-000001")
        assert mine is not None
        assert await repository.move(mine, later, NOW)
        assert mine.starts_at == later.starts_at and mine.reference == "APT-000001"
    second = await book(database, two, single)  # the old time is free again
    assert second is not None
    async with database.session() as session, session.begin():
        repository = AppointmentRepository(session)
        mine = await repository.get_by_reference("APT-000001")
        assert mine is not None
        assert not await repository.move(mine, single, NOW)  # taken: it stays where it was
        await session.refresh(mine)
        assert mine.starts_at == later.starts_at
        await repository.set_status(mine, CANCELLED, NOW)
        assert mine.place_no is None
    assert await book(database, one, later) is not None
