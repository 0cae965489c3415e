"""Field visits and the appointments list: the one code path for staff's actions on them
(the command line today; the dashboard and the staff group can call the same desk).

Scheduling a visit runs in one transaction: the visit (``proposed``), a note in the
request's case file, the message to the beneficiary (date, time window, who comes, what
to prepare; their conversation then waits for "yes" or "another time"), the reminders
and the audit log's entry. Once it is committed the outbox is woken (``on_outbox``) and
the reminders handed to the scheduler (``on_followups``), as ``StaffDesk`` does: the
message goes at once, not at the next sweep. Marking it done or no-show puts the note
in the case file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.followups import FollowUpPlanner
from bot.templates import TemplateKind
from flows import appointments as appointment_flow
from flows import slots
from flows.catalogue import text
from flows.dates import format_date
from flows.types import FlowSettings, Language, TemplateRef
from storage.appointments import (
    CANCELLED,
    DONE,
    INTERVIEW,
    NO_SHOW,
    VISIT,
    AppointmentRepository,
    summary,
)
from storage.db import Database
from storage.models import Appointment, MessageKind, SupportRequest
from storage.repositories import (
    AuditRepository,
    ConversationRepository,
    MessageRepository,
    RequestRepository,
    StaffRepository,
)

log = logging.getLogger(__name__)

# A field visit's window: the beneficiary is told "within two hours from".
VISIT_MINUTES = 120
# How a visit ended (``tawasul visits done|no-show``).
OUTCOMES = {"done": DONE, "no-show": NO_SHOW}


class AppointmentError(Exception):
    """A staff action on appointments refused: the catalogue's ``staff.visit.error.*``
    sentence ``key`` with ``params``; ``str()`` is it in English (the command line),
    ``said_in`` in the reader's language (the staff group, the dashboard)."""

    def __init__(self, key: str, **params: str) -> None:
        self.key = f"staff.visit.error.{key}"
        self.params = params
        super().__init__(self.said_in("en"))

    def said_in(self, language: Language) -> str:
        return text(language, self.key, **self.params)


def parse_local(value: str, zone: str) -> datetime:
    """``"YYYY-MM-DD HH:MM"`` in the organisation's time zone, as an aware UTC moment."""
    try:
        local = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise AppointmentError("bad_time", value=value.strip()) from None
    return slots.local_moment(local.date(), local.hour, local.minute, zone)


@dataclass(frozen=True, slots=True)
class Listed:
    """One appointment as staff lists it."""

    appointment: Appointment
    request_reference: str | None

    def line(self, zone: str) -> str:
        """``YYYY-MM-DD HH:MM  APT-…  branch (or request)  status``."""
        a = self.appointment
        at = slots.local_start(a.starts_at, zone).strftime("%Y-%m-%d %H:%M")
        where = a.branch if a.kind == INTERVIEW else f"visit {self.request_reference or '-'}"
        by = f"  {a.staff_username}" if a.staff_username else ""
        return f"{at}  {a.reference}  {where}  {a.status}{by}"


class VisitDesk:
    """Staff's actions on appointments: the list, field visits scheduled and settled."""

    def __init__(
        self,
        database: Database,
        settings: FlowSettings,
        clock: Callable[[], datetime],
        *,
        followups: FollowUpPlanner | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        on_followups: Callable[[list[str]], None] = lambda _keys: None,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._followups = followups
        self._on_outbox = on_outbox  # the outbox sender's wake-up (or the CLI's announcement)
        self._on_followups = on_followups  # follow-up keys written, for the scheduler

    async def appointments(self, day: date | None = None, days: int = 1) -> list[Listed]:
        """Interviews and visits of ``days`` local days from ``day`` (default: every one
        from today on), by time."""
        zone = self._settings.timezone
        if day is None:
            day, days = slots.local_start(self._clock(), zone).date(), 366
        since = slots.local_moment(day, 0, 0, zone)
        until = slots.local_moment(day + timedelta(days=days), 0, 0, zone)
        async with self._db.session() as session:
            found = await AppointmentRepository(session).between(since, until)
            return [await self._listed(session, a) for a in found]

    async def visits(self) -> list[Listed]:
        """Field visits from today on, soonest first, cancelled ones left out."""
        zone = self._settings.timezone
        today = slots.local_start(self._clock(), zone).date()
        async with self._db.session() as session:
            found = await AppointmentRepository(session).visits(
                slots.local_moment(today, 0, 0, zone)
            )
            return [await self._listed(session, a) for a in found if a.status != CANCELLED]

    async def schedule(self, reference: str, at: str, *, by: str | None = None) -> Appointment:
        """A visit to request ``reference`` at local ``at``, told to its beneficiary at once.

        Raises:
            AppointmentError: an unknown request or staff member, a time not to come.
        """
        settings, now = self._settings, self._clock()
        starts_at = parse_local(at, settings.timezone)
        if starts_at <= now:
            raise AppointmentError("past")
        keys: list[str] = []
        async with self._db.session() as session, session.begin():
            request = await RequestRepository(session).get_by_reference(reference)
            if request is None or not request.reference:
                raise AppointmentError("no_request", reference=reference)
            staff = await StaffRepository(session).get(by) if by else None
            if by and staff is None:
                raise AppointmentError("no_staff", username=by)
            appointments = AppointmentRepository(session)
            # A new time replaces the request's earlier visit (one asked to be moved).
            for earlier in await appointments.active_visits(request.id or 0):
                await appointments.set_status(earlier, CANCELLED, now, note="replaced")
                if self._followups is not None and earlier.id is not None:
                    keys += await self._followups.appointment_ended(session, earlier.id, now)
            conversations = ConversationRepository(session)
            state = await conversations.load(request.identity_id)
            visit = await appointments.schedule_visit(
                request_id=request.id or 0,
                identity_id=request.identity_id,
                starts_at=starts_at,
                minutes=VISIT_MINUTES,
                staff_username=staff.username if staff else None,
                language=state.language,
                channel=request.channel,
                now=now,
            )
            new, message = appointment_flow.visit_proposed(state, summary(visit), settings.timezone)
            await conversations.save(request.identity_id, new, now)
            variables = {
                "reference": visit.reference or "",
                "date": format_date(starts_at, state.language, settings.timezone),
                "time": appointment_flow.clock(starts_at, state.language, settings.timezone),
            }
            template = TemplateRef(TemplateKind.VISIT_PROPOSED, variables)
            await MessageRepository(session).enqueue_to(
                request.identity_id,
                [dataclasses.replace(message, template=template)],
                now,
                kind=MessageKind.PROACTIVE,
                request_id=request.id,
            )
            await self._note(session, request, f"field visit {visit.reference} proposed", by)
            if self._followups is not None:
                keys += await self._followups.appointment_set(session, visit, now)
            await self._audit(session, by, "schedule_visit", visit, {"request": request.reference})
        log.info("visit %s scheduled for %s", visit.reference, request.reference)
        self._on_outbox()
        self._on_followups(list(dict.fromkeys(keys)))
        return visit

    async def settle(
        self, reference: str, outcome: str, *, note: str | None = None, by: str | None = None
    ) -> Appointment:
        """A visit (or an interview) done or missed, with staff's note in the case file."""
        status = OUTCOMES.get(outcome)
        if status is None:
            raise AppointmentError("outcome", outcome=outcome, choices=", ".join(OUTCOMES))
        now = self._clock()
        keys: list[str] = []
        async with self._db.session() as session, session.begin():
            repository = AppointmentRepository(session)
            appointment = await repository.get_by_reference(reference)
            if appointment is None:
                raise AppointmentError("no_appointment", reference=reference)
            if appointment.status in (CANCELLED, DONE, NO_SHOW):
                raise AppointmentError(
                    "settled", reference=appointment.reference or "", status=appointment.status
                )
            await repository.set_status(appointment, status, now, note=note)
            request = (
                await session.get(SupportRequest, appointment.request_id)
                if appointment.request_id
                else None
            )
            if request is not None:
                what = "field visit" if appointment.kind == VISIT else "interview"
                line = f"{what} {appointment.reference}: {status}" + (f". {note}" if note else "")
                await self._note(session, request, line, by)
            if self._followups is not None and appointment.id is not None:
                keys = await self._followups.appointment_ended(session, appointment.id, now)
            await self._audit(session, by, f"visit_{status}", appointment, {})
        self._on_followups(keys)
        return appointment

    # --- helpers ---

    async def _listed(self, session: AsyncSession, appointment: Appointment) -> Listed:
        request = (
            await session.get(SupportRequest, appointment.request_id)
            if appointment.request_id
            else None
        )
        return Listed(appointment, request.reference if request else None)

    async def _note(
        self,
        session: AsyncSession,
        request: SupportRequest,
        text: str,
        by: str | None,
    ) -> None:
        await RequestRepository(session).add_note(
            request, author=by or "appointments", text=text, now=self._clock()
        )

    async def _audit(
        self,
        session: AsyncSession,
        by: str | None,
        action: str,
        appointment: Appointment,
        detail: dict[str, object],
    ) -> None:
        staff = await StaffRepository(session).get(by) if by else None
        await AuditRepository(session).add(
            staff, action, appointment.reference, detail, now=self._clock(), username=by
        )
