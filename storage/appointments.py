"""Appointments in the database: interviews that hold a place of a slot, and field visits.

A place is taken by inserting (or moving) the row with a ``place_no`` under the unique
key (branch, start, place) and the check ``place_no < capacity``, inside a savepoint of
the transaction that confirms it: when another transaction took that place first the
database refuses it (on PostgreSQL after waiting for that transaction to end), and the
next place is tried. So a place is never given twice, whatever number of processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import AppointmentSummary
from storage.models import Appointment

# Persisted values (lowercase snake_case: data, renamed only with a migration).
INTERVIEW = "interview"
VISIT = "visit"
BOOKED = "booked"  # an interview the beneficiary booked
PROPOSED = "proposed"  # a visit staff scheduled, not yet confirmed
CONFIRMED = "confirmed"  # a visit the beneficiary confirmed
CHANGE_ASKED = "change_asked"  # the beneficiary asked for another time: staff's turn
CANCELLED = "cancelled"
DONE = "done"
NO_SHOW = "no_show"
STATUSES = (BOOKED, PROPOSED, CONFIRMED, CHANGE_ASKED, CANCELLED, DONE, NO_SHOW)
# Still to happen: what reminders, lists and "at most one" are about.
ACTIVE = (BOOKED, PROPOSED, CONFIRMED, CHANGE_ASKED)


def reference_for(appointment_id: int) -> str:
    """The reference a beneficiary quotes: ``APT-`` and the id, at least six digits."""
    return f"APT-{appointment_id:06d}"


def summary(appointment: Appointment) -> AppointmentSummary:
    """An appointment as the flows see it."""
    return AppointmentSummary(
        reference=appointment.reference or "",
        kind=appointment.kind,
        status=appointment.status,
        branch=appointment.branch,
        starts_at=appointment.starts_at,
        staff=appointment.staff_username,
    )


@dataclass(frozen=True, slots=True)
class Place:
    """A slot to take a place of: branch, start (aware UTC), length and capacity."""

    branch: str
    starts_at: datetime
    minutes: int
    capacity: int


class AppointmentRepository:
    """Reads and writes of appointments."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def taken(self, since: datetime, until: datetime) -> dict[tuple[str, datetime], int]:
        """Places held per (branch, start) between ``since`` and ``until``."""
        rows = await self._session.execute(
            select(col(Appointment.branch), col(Appointment.starts_at), func.count())
            .where(
                col(Appointment.place_no).is_not(None),
                col(Appointment.starts_at) >= since,
                col(Appointment.starts_at) < until,
            )
            .group_by(col(Appointment.branch), col(Appointment.starts_at))
        )
        return {(branch, starts_at): count for branch, starts_at, count in rows if branch}

    async def upcoming_for(self, identity_id: int, now: datetime) -> list[Appointment]:
        """The identity's appointments still to come, soonest first."""
        rows = await self._session.scalars(
            select(Appointment)
            .where(
                col(Appointment.identity_id) == identity_id,
                col(Appointment.status).in_(ACTIVE),
                col(Appointment.starts_at) >= now,
            )
            .order_by(col(Appointment.starts_at))
        )
        return list(rows)

    async def get_by_reference(self, reference: str) -> Appointment | None:
        return await self._session.scalar(
            select(Appointment).where(col(Appointment.reference) == reference.strip().upper())
        )

    async def between(self, since: datetime, until: datetime) -> list[Appointment]:
        """Every appointment starting in [since, until), cancelled ones too, by time."""
        rows = await self._session.scalars(
            select(Appointment)
            .where(col(Appointment.starts_at) >= since, col(Appointment.starts_at) < until)
            .order_by(col(Appointment.starts_at), col(Appointment.id))
        )
        return list(rows)

    async def book(
        self,
        place: Place,
        *,
        identity_id: int,
        channel: str,
        language: str,
        now: datetime,
    ) -> Appointment | None:
        """Take a free place of ``place`` for an interview; None when all are taken."""
        for number in range(place.capacity):
            values = {
                "kind": INTERVIEW,
                "status": BOOKED,
                "branch": place.branch,
                "starts_at": place.starts_at,
                "ends_at": place.starts_at + timedelta(minutes=place.minutes),
                "place_no": number,
                "capacity": place.capacity,
                "identity_id": identity_id,
                "channel": channel,
                "language": language,
                "created_at": now,
                "updated_at": now,
            }
            try:
                async with self._session.begin_nested():
                    new_id = await self._session.scalar(
                        insert(Appointment).values(**values).returning(col(Appointment.id))
                    )
            except IntegrityError:
                continue  # that place went to someone else: the next one
            assert new_id is not None
            await self._session.execute(
                update(Appointment)
                .where(col(Appointment.id) == new_id)
                .values(reference=reference_for(new_id))
            )
            return await self._session.get(Appointment, new_id)
        return None

    async def move(self, appointment: Appointment, place: Place, now: datetime) -> bool:
        """Move an interview to a free place of ``place``; False when all are taken
        (it keeps its old place)."""
        for number in range(place.capacity):
            try:
                async with self._session.begin_nested():
                    await self._session.execute(
                        update(Appointment)
                        .where(col(Appointment.id) == appointment.id)
                        .values(
                            branch=place.branch,
                            starts_at=place.starts_at,
                            ends_at=place.starts_at + timedelta(minutes=place.minutes),
                            place_no=number,
                            capacity=place.capacity,
                            status=BOOKED,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                continue
            await self._session.refresh(appointment)
            return True
        return False

    async def set_status(
        self, appointment: Appointment, status: str, now: datetime, note: str | None = None
    ) -> None:
        """A new status; one no longer active gives its place back."""
        if status not in STATUSES:
            raise ValueError(f"unknown appointment status {status!r}")
        appointment.status = status
        appointment.updated_at = now
        if status not in ACTIVE:
            appointment.place_no = None
        if note is not None:
            appointment.note = note
        self._session.add(appointment)
        await self._session.flush()

    async def schedule_visit(
        self,
        *,
        request_id: int,
        identity_id: int | None,
        starts_at: datetime,
        minutes: int,
        staff_username: str | None,
        language: str,
        channel: str | None,
        now: datetime,
    ) -> Appointment:
        """A field visit for a request, proposed to its beneficiary."""
        visit = Appointment(
            kind=VISIT,
            status=PROPOSED,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            capacity=1,
            identity_id=identity_id,
            request_id=request_id,
            staff_username=staff_username,
            channel=channel,
            language=language,
            created_at=now,
            updated_at=now,
        )
        self._session.add(visit)
        await self._session.flush()
        assert visit.id is not None
        visit.reference = reference_for(visit.id)
        await self._session.flush()
        return visit

    async def active_visits(self, request_id: int) -> list[Appointment]:
        """A request's field visits still to happen (proposed, confirmed or to be moved)."""
        rows = await self._session.scalars(
            select(Appointment).where(
                col(Appointment.request_id) == request_id,
                col(Appointment.kind) == VISIT,
                col(Appointment.status).in_(ACTIVE),
            )
        )
        return list(rows)

    async def visits(self, since: datetime | None = None) -> Sequence[Appointment]:
        """Field visits, soonest first (from ``since`` when given)."""
        query = select(Appointment).where(col(Appointment.kind) == VISIT)
        if since is not None:
            query = query.where(col(Appointment.starts_at) >= since)
        return list(await self._session.scalars(query.order_by(col(Appointment.starts_at))))
