"""Appointments in the chat: what the engine loads for the appointments flow and the
effects it performs (booking, moving, cancelling an interview; a visit's answer). Staff's
side (field visits, the list) is ``bot.visits``.

A place is taken in the transaction of the message that confirms it, under the
database's constraint (``storage.appointments``): the loser of a race gets
``appointment_taken`` and is offered the next free times by the flow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows import appointments as appointment_flow
from flows import slots
from flows.types import (
    AnswerVisit,
    AppointmentBook,
    BookAppointment,
    CancelAppointment,
    FlowSettings,
)
from storage.appointments import (
    ACTIVE,
    CANCELLED,
    CHANGE_ASKED,
    CONFIRMED,
    INTERVIEW,
    PROPOSED,
    VISIT,
    AppointmentRepository,
    Place,
    summary,
)
from storage.models import ChannelIdentity, id_of
from storage.repositories import ConversationRepository

if TYPE_CHECKING:
    from bot.followups import FollowUpPlanner

log = logging.getLogger(__name__)


async def load_book(
    session: AsyncSession, identity_id: int, settings: FlowSettings, now: datetime
) -> AppointmentBook:
    """Places taken within the booking window and the sender's appointments to come."""
    rules = settings.appointments
    repository = AppointmentRepository(session)
    taken = (
        await repository.taken(now, now + timedelta(days=rules.days_ahead + 2))
        if rules.hours
        else {}
    )
    mine = await repository.upcoming_for(identity_id, now)
    return AppointmentBook(taken, tuple(summary(a) for a in mine))


@dataclass(slots=True)
class AppointmentEffects:
    """Performs the appointments flow's effects inside the engine's transaction."""

    settings: FlowSettings
    followups: FollowUpPlanner | None = None

    async def perform(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
        effect: BookAppointment | CancelAppointment | AnswerVisit,
        *,
        channel: str,
        now: datetime,
        keys: list[str],
    ) -> dict[str, Any]:
        """The effect done; what the flow reads back. ``keys`` gets the follow-ups'."""
        match effect:
            case BookAppointment():
                return await self._book(session, identity, effect, channel, now, keys)
            case CancelAppointment():
                await self._cancel(session, identity, effect.reference, now, keys)
            case AnswerVisit():
                await self._answer_visit(session, identity, effect, now, keys)
        return {}

    async def _book(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
        effect: BookAppointment,
        channel: str,
        now: datetime,
        keys: list[str],
    ) -> dict[str, Any]:
        settings = self.settings
        rules, zone = settings.appointments, settings.timezone
        slot = slots.slot_at(rules, effect.branch, effect.starts_at, zone, settings.holidays)
        refused = {appointment_flow.TAKEN: effect.starts_at.isoformat()}
        if slot is None or not slots.bookable(slot, now):
            return refused  # the flow checked it; configuration may have changed since
        place = Place(slot.branch, slot.starts_at, rules.slot_minutes, slot.capacity)
        repository = AppointmentRepository(session)
        identity_id = id_of(identity)
        upcoming = [
            a for a in await repository.upcoming_for(identity_id, now) if a.kind == INTERVIEW
        ]
        moving = next((a for a in upcoming if a.reference == effect.moving), None)
        if moving is None and upcoming:
            moving = upcoming[0]  # at most one interview to come: a second one moves it
        if moving is not None:
            if not await repository.move(moving, place, now):
                return refused
            booked = moving
            log.info("appointment %s moved", moving.reference)
        else:
            language = (await ConversationRepository(session).load(identity_id)).language
            taken = await repository.book(
                place, identity_id=identity_id, channel=channel, language=language, now=now
            )
            if taken is None:
                log.info("a slot's last place was taken meanwhile: other times offered")
                return refused
            booked = taken
            log.info("appointment %s booked on %s", booked.reference, channel)
        if self.followups is not None:
            keys += await self.followups.appointment_set(session, booked, now)
        return {appointment_flow.REFERENCE: booked.reference}

    async def _cancel(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
        reference: str,
        now: datetime,
        keys: list[str],
    ) -> None:
        repository = AppointmentRepository(session)
        appointment = await repository.get_by_reference(reference)
        if appointment is None or appointment.identity_id != identity.id:
            return  # only one's own
        if appointment.status not in ACTIVE:
            return
        await repository.set_status(appointment, CANCELLED, now)
        log.info("appointment %s cancelled by the beneficiary", appointment.reference)
        if self.followups is not None:
            keys += await self.followups.appointment_ended(session, id_of(appointment), now)

    async def _answer_visit(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
        effect: AnswerVisit,
        now: datetime,
        keys: list[str],
    ) -> None:
        repository = AppointmentRepository(session)
        visit = await repository.get_by_reference(effect.reference)
        if visit is None or visit.identity_id != identity.id or visit.kind != VISIT:
            return
        if visit.status not in (PROPOSED, CONFIRMED, CHANGE_ASKED):
            return
        status = CONFIRMED if effect.confirmed else CHANGE_ASKED
        await repository.set_status(visit, status, now)
        log.info("visit %s: %s by the beneficiary", visit.reference, status)
        if self.followups is not None:
            keys += await self.followups.visit_answered(session, visit, now)
