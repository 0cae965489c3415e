"""Scheduled follow-ups: when they are scheduled or cancelled, and what each does when due.

The ``followup`` table is the truth (what, for whom, due when, done or not);
``bot.scheduler`` is only the clock that wakes ``FollowUpDispatcher``. There is one
row per matter, its key derived from what it is about, its kind the next thing to do
about it:

- ``intake_reminder:identity:N``: intake_reminder, then intake_expire. Scheduled when
  a draft gets its first answer; cancelled when it is signed or started over.
- ``decision_due:request:N``: decision_due, a staff alert at the decision date (working
  week). Scheduled when a request is filed; cancelled when it is decided.
- ``checkin:request:N``: checkin, again after each. Scheduled when filed, moved on by
  every status change; cancelled when rejected, delivered or closed.
- ``rating_prompt:request:N``: rating_prompt, then rating_reminder. Scheduled when
  delivered; cancelled by a rating of it.
- ``handoff_unclaimed:handoff:N``: handoff_unclaimed, a staff alert. Scheduled when a
  handoff opens; cancelled when it is taken or closed.
- ``feedback_received:feedback:N``: feedback_received, the staff group told at once, then (not for
  thanks) feedback_overdue, managers alerted at its ``feedback.answer_within`` deadline.
  Scheduled when feedback arrives; cancelled when it is answered or closed.
- ``feedback_replied:feedback:N``: feedback_replied, the staff group told at once that the
  beneficiary replied to the answer (a reply to that post answers again).
- ``appointment_reminder:appointment:N:<minutes>m``: appointment_reminder, one row per
  ``appointments.reminders`` entry, before an interview or a field visit. Scheduled when
  it is booked, moved or proposed; cancelled when it is moved or cancelled. The one on
  the appointment's own day is ``timely`` (sent in the quiet hours).
- ``visit_answered:appointment:N``: visit_answered, the staff group told at once that a
  beneficiary confirmed a field visit or asked for another time.
- ``appointments_day:day:YYYYMMDD``: appointments_day, the day's interviews and visits
  in the staff group at 07:30 that morning. Scheduled with the first appointment of a
  day; a day whose appointments were all cancelled posts nothing.

Each kind is one record in ``FOLLOWUPS`` (its key, delay setting, action, template
kind, quiet hours, too-old policy): the planner, the dispatcher, the outbox and the
configuration read it. Adding a kind is adding its record, its action and its setting.

``FollowUpPlanner`` writes these rows inside the transaction of the change that causes
them (a turn of the engine, a staff action) and returns the keys whose scheduler jobs
need bringing in line after the commit. ``FollowUpDispatcher`` carries one follow-up
out: it reads the row and, in the same transaction as its effect (a message into the
outbox, a conversation moved on), marks it done, cancelled, or due again.

While a handoff is open for a beneficiary every automation for them is muted: a
reminder, rating prompt or check-in that comes due then is put off by its own delay
(``FollowUpPolicy.muted_delay``), not sent and not dropped. Staff alerts are never muted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import flows
from bot import feedback_alerts
from bot.config import FollowupSettings, OrganizationSettings, Settings
from bot.templates import TemplateKind
from flows import appointments as appointment_flow
from flows import intake as intake_flow
from flows import notices
from flows import rating as rating_flow
from flows.dates import format_date, local_date
from flows.lifecycle import DELIVERED, OPEN, RATEABLE, UNDECIDED
from flows.staff_texts import STAFF_LANGUAGE
from flows.types import ConversationState, OutboundMessage, TemplateRef
from handlers.base import DeliveryError
from handlers.telegram_staff import TelegramStaffGroup
from storage.appointments import ACTIVE as APPOINTMENT_ACTIVE
from storage.appointments import CONFIRMED as VISIT_CONFIRMED
from storage.appointments import AppointmentRepository
from storage.appointments import summary as appointment_summary
from storage.db import Database
from storage.feedback import OPEN as FEEDBACK_OPEN
from storage.feedback import FeedbackRepository
from storage.models import (
    FOLLOWUP_CANCELLED,
    FOLLOWUP_DONE,
    FOLLOWUP_DROPPED,
    FOLLOWUP_PENDING,
    HANDOFF_OPEN,
    Appointment,
    Feedback,
    FollowUp,
    Handoff,
    MessageKind,
    SupportRequest,
    id_of,
)
from storage.repositories import (
    ConversationRepository,
    FollowUpRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    SavedRating,
)

log = logging.getLogger(__name__)


class FollowUpKind(StrEnum):
    """What a follow-up does next (``followup.kind``): persisted names."""

    INTAKE_REMINDER = "intake_reminder"
    INTAKE_EXPIRE = "intake_expire"
    DECISION_DUE = "decision_due"
    CHECKIN = "checkin"
    RATING_PROMPT = "rating_prompt"
    RATING_REMINDER = "rating_reminder"
    HANDOFF_UNCLAIMED = "handoff_unclaimed"
    FEEDBACK_RECEIVED = "feedback_received"
    FEEDBACK_OVERDUE = "feedback_overdue"
    FEEDBACK_REPLIED = "feedback_replied"
    APPOINTMENT_REMINDER = "appointment_reminder"
    VISIT_ANSWERED = "visit_answered"
    APPOINTMENTS_DAY = "appointments_day"


# The draft's reminder moves with every message; its row is only rewritten when the
# due time moved by more than this (the job wakes early and re-arms itself, see
# ``FollowUpPlanner.after_turn``).
INTAKE_MOVE_TOLERANCE = timedelta(minutes=5)
# A rating prompt does not break into a conversation busy elsewhere (an intake being
# filled in) within this long of the beneficiary's last message; it is put off as long.
BUSY = timedelta(minutes=30)
# A follow-up that failed (a bug, the database away) is tried again after 1, 2, 4... min,
# and dropped after this many failures.
MAX_FAILURES = 5
# Saudi working week for staff deadlines: Sunday to Thursday; alerts wait for Sunday 08:00.
WEEKEND = (4, 5)  # Friday, Saturday (Monday is 0)
WORKDAY_START = time(8, 0)
# An appointment's reminder due during a handoff is put off this long, until the
# appointment begins (then it is dropped: staff are talking to the beneficiary anyway).
APPOINTMENT_MUTED = timedelta(minutes=15)
# When the staff group gets the day's appointments (local time).
MORNING_LIST = time(7, 30)


class StaffAlert(Protocol):
    """Posts ``text`` for staff; ``handoff_id`` is the handoff it is about, ``feedback_id``
    the feedback (a reply to the post then answers it); None: about none."""

    def __call__(
        self, text: str, handoff_id: int | None, *, feedback_id: int | None = None
    ) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    """The ``[followups]`` durations and the organisation's time zone."""

    # The configuration's defaults, for a policy built without it (tests, benchmarks).
    followups: FollowupSettings = field(default_factory=FollowupSettings)
    timezone: str = OrganizationSettings().timezone
    # ``appointments.reminders``: how long before an appointment each reminder goes.
    reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=2))

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpPolicy:
        return cls(
            followups=settings.followups,
            timezone=settings.organization.timezone,
            reminders=settings.appointments.rules().reminders,
        )

    def after(self, kind: FollowUpKind) -> timedelta:
        """How long after its cause a follow-up of ``kind`` is due (its delay setting)."""
        return self._setting(FOLLOWUPS[kind].delay, kind)

    def muted_delay(self, kind: str) -> timedelta:
        """How long a follow-up for a beneficiary in a handoff is put off."""
        record = FOLLOWUPS.get(kind)  # type: ignore[call-overload]
        return self._setting(record.muted_by if record else None, kind)

    def _setting(self, name: str | None, kind: str) -> timedelta:
        value = getattr(self.followups, name or "", None)
        if not isinstance(value, timedelta):
            raise LookupError(f"follow-up kind {kind!r} has no such delay")
        return value


def followup_key(kind: FollowUpKind, subject_id: int) -> str:
    """The key of the matter a follow-up of ``kind`` is about (``checkin:request:12``)."""
    return FOLLOWUPS[kind].key_of(subject_id)


def staff_deadline(due: datetime, timezone: str) -> datetime:
    """When staff are alerted about a deadline ``due``: at once on a working day, else
    (Friday or Saturday in ``timezone``) on Sunday at 08:00 there."""
    zone = ZoneInfo(timezone)
    local = due.astimezone(zone)
    if local.weekday() not in WEEKEND:
        return due
    sunday = local.date() + timedelta(days=6 - local.weekday())
    return datetime.combine(sunday, WORKDAY_START, zone).astimezone(UTC)


class FollowUpPlanner:
    """Schedules and cancels follow-ups inside the caller's transaction.

    Every method returns the keys whose scheduler jobs must be brought in line with
    their rows once the transaction is committed (``FollowUpScheduler.sync``); an
    empty list means the job store need not be touched.
    """

    def __init__(self, policy: FollowUpPolicy) -> None:
        self.policy = policy

    async def after_turn(
        self,
        session: AsyncSession,
        identity_id: int,
        before: ConversationState,
        after: ConversationState,
        now: datetime,
    ) -> list[str]:
        """A message was handled: start, move or cancel the draft's reminder.

        Most messages have no draft before or after: nothing to do, no query. While a
        draft is being filled in, the reminder is due ``intake_reminder_after`` after
        the last message, but its row is only rewritten when that moved by more than
        ``INTAKE_MOVE_TOLERANCE``: messages that quick after the previous one cost no
        query, the others one indexed read (and a write now and then). The job stays
        where it was; when it wakes early, the dispatcher re-arms it for the time the
        conversation's last message says. The job store is touched only when a draft
        gets its first answer, is signed or started over, or is written to again after
        its reminder was sent.
        """
        had, has = intake_flow.has_draft(before), intake_flow.has_draft(after)
        if not (had or has):
            return []
        kind = FollowUpKind.INTAKE_REMINDER
        key = followup_key(kind, identity_id)
        followups = FollowUpRepository(session)
        if not has:
            return await followups.cancel([key], now)
        due = now + self.policy.after(kind)
        if had:
            previous = intake_flow.last_seen(before)
            if previous is not None and now - previous <= INTAKE_MOVE_TOLERANCE:
                return []
            row = await followups.get(key)
            if row is not None and row.status == FOLLOWUP_PENDING and row.kind == kind:
                if due - row.due_at > INTAKE_MOVE_TOLERANCE:
                    await followups.move(key, due)
                return []
        await followups.schedule(key, kind, due, now=now, identity_id=identity_id)
        return [key]

    async def request_filed(
        self, session: AsyncSession, request: SupportRequest, now: datetime
    ) -> list[str]:
        """A new request: the staff alert at its decision date, and the first check-in."""
        return await self.requests_filed(session, [request], now)

    async def requests_filed(
        self, session: AsyncSession, requests: Sequence[SupportRequest], now: datetime
    ) -> list[str]:
        """``request_filed`` for many requests at once, in one statement."""
        plans: list[dict[str, Any]] = []
        decision, checkin = FollowUpKind.DECISION_DUE, FollowUpKind.CHECKIN
        checkin_at = now + self.policy.after(checkin)
        for request in requests:
            request_id = id_of(request)
            about = {"identity_id": request.identity_id, "request_id": request_id}
            decision_at = staff_deadline(request.decision_due_at, self.policy.timezone)
            for kind, due_at in ((decision, decision_at), (checkin, checkin_at)):
                key = followup_key(kind, request_id)
                plans.append({**about, "key": key, "kind": kind, "due_at": due_at})
        await FollowUpRepository(session).schedule_many(plans, now=now)
        return [plan["key"] for plan in plans]

    async def status_changed(
        self, session: AsyncSession, request: SupportRequest, before: str, now: datetime
    ) -> list[str]:
        """A request moved from ``before`` to its current status.

        Decided: no decision alert. Still open: the next check-in a whole period from
        now (the beneficiary was just told). Finished: no check-ins. Delivered: the
        rating prompt. An appeal (rejected -> under_review) is undecided again.
        """
        request_id, status = id_of(request), request.status
        followups = FollowUpRepository(session)
        keys: list[str] = []

        async def schedule(kind: FollowUpKind, due_at: datetime) -> None:
            key = followup_key(kind, request_id)
            await followups.schedule(
                key, kind, due_at, now=now, identity_id=request.identity_id, request_id=request_id
            )
            keys.append(key)

        decision = FollowUpKind.DECISION_DUE
        if status not in UNDECIDED:
            keys += await followups.cancel([followup_key(decision, request_id)], now)
        elif before not in UNDECIDED:
            await schedule(decision, staff_deadline(request.decision_due_at, self.policy.timezone))
        checkin = FollowUpKind.CHECKIN
        if status in OPEN:
            await schedule(checkin, now + self.policy.after(checkin))
        else:
            keys += await followups.cancel([followup_key(checkin, request_id)], now)
        if status == DELIVERED:
            prompt = FollowUpKind.RATING_PROMPT
            await schedule(prompt, now + self.policy.after(prompt))
        return keys

    async def rating_recorded(
        self, session: AsyncSession, rating: SavedRating, now: datetime
    ) -> list[str]:
        """A rating of the service answers the prompt about its request (or, naming no
        request, the beneficiary's pending prompts)."""
        if rating.context != "service":
            return []
        followups = FollowUpRepository(session)
        prompt, reminder = FollowUpKind.RATING_PROMPT, FollowUpKind.RATING_REMINDER
        if rating.request_id is not None:
            return await followups.cancel([followup_key(prompt, rating.request_id)], now)
        return await followups.cancel_for(rating.identity_id, [prompt, reminder], now)

    async def handoff_opened(
        self, session: AsyncSession, handoff: Handoff, now: datetime
    ) -> list[str]:
        """A handoff opened: staff are reminded if nobody takes it in time. Asking again
        while it is open changes nothing."""
        handoff_id, kind = id_of(handoff), FollowUpKind.HANDOFF_UNCLAIMED
        key = followup_key(kind, handoff_id)
        followups = FollowUpRepository(session)
        if await followups.get(key) is not None:
            return []
        await followups.schedule(
            key,
            kind,
            handoff.opened_at + self.policy.after(kind),
            now=now,
            identity_id=handoff.identity_id,
            handoff_id=handoff_id,
        )
        return [key]

    async def handoff_settled(
        self, session: AsyncSession, handoff_id: int, now: datetime
    ) -> list[str]:
        """A handoff was taken or closed: no reminder about it."""
        key = followup_key(FollowUpKind.HANDOFF_UNCLAIMED, handoff_id)
        return await FollowUpRepository(session).cancel([key], now)

    async def feedback_received(
        self, session: AsyncSession, feedback: Feedback, now: datetime
    ) -> list[str]:
        """New feedback: the staff group is told at once, managers alerted when late."""
        feedback_id, kind = id_of(feedback), FollowUpKind.FEEDBACK_RECEIVED
        key = followup_key(kind, feedback_id)
        await FollowUpRepository(session).schedule(
            key,
            kind,
            now,
            now=now,
            identity_id=feedback.identity_id,
            request_id=feedback.request_id,
            detail={"feedback_id": feedback_id},
        )
        return [key]

    async def feedback_replied(
        self, session: AsyncSession, feedback: Feedback, now: datetime
    ) -> list[str]:
        """The beneficiary replied to staff's answer: the staff group is told at once."""
        feedback_id, kind = id_of(feedback), FollowUpKind.FEEDBACK_REPLIED
        key = followup_key(kind, feedback_id)
        await FollowUpRepository(session).schedule(
            key,
            kind,
            now,
            now=now,
            identity_id=feedback.identity_id,
            request_id=feedback.request_id,
            detail={"feedback_id": feedback_id},
        )
        return [key]

    async def feedback_settled(
        self, session: AsyncSession, feedback_id: int, now: datetime
    ) -> list[str]:
        """Feedback was answered or closed: no alert about its deadline."""
        followups = FollowUpRepository(session)
        key = followup_key(FollowUpKind.FEEDBACK_OVERDUE, feedback_id)
        row = await followups.get(key)
        if row is None or row.kind != FollowUpKind.FEEDBACK_OVERDUE:
            return []  # not announced yet: the announcement still goes
        return await followups.cancel([key], now)

    def _reminder_keys(self, appointment_id: int) -> list[str]:
        base = followup_key(FollowUpKind.APPOINTMENT_REMINDER, appointment_id)
        return [f"{base}:{int(r.total_seconds() // 60)}m" for r in self.policy.reminders]

    async def appointment_set(
        self, session: AsyncSession, appointment: Appointment, now: datetime
    ) -> list[str]:
        """An interview booked or moved, a visit proposed: one reminder row per configured
        reminder still ahead; a moved appointment's earlier ones are replaced."""
        appointment_id = id_of(appointment)
        followups = FollowUpRepository(session)
        keys = self._reminder_keys(appointment_id)
        changed = await followups.cancel(keys, now)
        detail = {"appointment_id": appointment_id, "starts_at": appointment.starts_at.isoformat()}
        for key, before in zip(keys, self.policy.reminders, strict=True):
            due = appointment.starts_at - before
            if due <= now:
                continue  # booked closer than this reminder: the later ones will do
            await followups.schedule(
                key,
                FollowUpKind.APPOINTMENT_REMINDER,
                due,
                now=now,
                identity_id=appointment.identity_id,
                request_id=appointment.request_id,
                detail=detail,
            )
            changed.append(key)
        changed += await self._day_list(session, appointment.starts_at, now)
        return list(dict.fromkeys(changed))

    async def _day_list(
        self, session: AsyncSession, starts_at: datetime, now: datetime
    ) -> list[str]:
        """The staff group's list of the appointment's day, if not planned already."""
        zone = ZoneInfo(self.policy.timezone)
        day = starts_at.astimezone(zone).date()
        due = datetime.combine(day, MORNING_LIST, zone).astimezone(UTC)
        if due <= now:
            return []  # that morning's list went (or the day began): staff see the dashboard
        kind = FollowUpKind.APPOINTMENTS_DAY
        key = followup_key(kind, int(day.strftime("%Y%m%d")))
        followups = FollowUpRepository(session)
        if await followups.get(key) is not None:
            return []
        await followups.schedule(key, kind, due, now=now, detail={"day": day.isoformat()})
        return [key]

    async def appointment_ended(
        self, session: AsyncSession, appointment_id: int, now: datetime
    ) -> list[str]:
        """An appointment cancelled (or held): no reminder about it."""
        return await FollowUpRepository(session).cancel(self._reminder_keys(appointment_id), now)

    async def visit_answered(
        self, session: AsyncSession, visit: Appointment, now: datetime
    ) -> list[str]:
        """The beneficiary confirmed a visit or asked for another time: staff told at once;
        a visit to be moved is reminded of no more."""
        visit_id, kind = id_of(visit), FollowUpKind.VISIT_ANSWERED
        key = followup_key(kind, visit_id)
        keys = []
        if visit.status != VISIT_CONFIRMED:
            keys = await self.appointment_ended(session, visit_id, now)
        await FollowUpRepository(session).schedule(
            key,
            kind,
            now,
            now=now,
            identity_id=visit.identity_id,
            request_id=visit.request_id,
            detail={"appointment_id": visit_id},
        )
        return [*keys, key]


@dataclass(slots=True)
class _Run:
    """One follow-up being carried out: its row, and what to do after the commit."""

    session: AsyncSession
    row: FollowUp
    now: datetime
    enqueued: bool = False
    alert: tuple[str, int | None] | None = None
    alert_feedback: int | None = None  # the feedback the alert is about

    def finish(self, status: str) -> None:
        self.row.status = status
        self.row.done_at = self.now

    def again(self, due: datetime, kind: str | None = None) -> None:
        """Due again at ``due`` (as ``kind`` when the matter moves on)."""
        self.row.due_at = due
        if kind is not None:
            self.row.kind = kind


class FollowUpDispatcher:
    """Carries out one follow-up when it is due: the code every scheduler job runs.

    Args:
        on_outbox: the outbox sender's wake-up, called after a message was stored.
        alert_staff: posts staff alerts (the Telegram staff group); without it they are
            logged as warnings only.
    """

    def __init__(
        self,
        database: Database,
        policy: FollowUpPolicy,
        *,
        on_outbox: Callable[[], None] = lambda: None,
        alert_staff: StaffAlert | None = None,
    ) -> None:
        self._db = database
        self._policy = policy
        self._on_outbox = on_outbox
        self._alert_staff = alert_staff
        self._records: dict[str, FollowUpRecord] = {str(k): r for k, r in FOLLOWUPS.items()}

    async def run(self, key: str, now: datetime) -> str | None:
        """Carry out ``key`` if it is pending and due at ``now``.

        Returns its status afterwards (``pending`` when it is due again: re-arm its
        job), or None when there is no pending follow-up by that key.
        """
        async with self._db.session() as session, session.begin():
            row = await FollowUpRepository(session).get(key, for_update=True)
            if row is None or row.status != FOLLOWUP_PENDING:
                return None
            if row.due_at > now:
                return FOLLOWUP_PENDING  # moved later since the job was set: re-arm it
            run = _Run(session, row, now)
            record = self._records.get(row.kind)
            if record is None:
                log.warning("follow-up %s has an unknown kind %r: cancelled", key, row.kind)
                run.finish(FOLLOWUP_CANCELLED)
            else:
                await record.action(self, run)
            status = row.status
        log.info("follow-up %s (%s): %s", key, row.kind, status)
        if run.enqueued:
            self._on_outbox()
        if run.alert is not None:
            await self._alert(*run.alert, feedback_id=run.alert_feedback)
        return status

    async def failed(self, key: str, now: datetime) -> str | None:
        """``run`` raised: try again later, or drop it after ``MAX_FAILURES``."""
        async with self._db.session() as session, session.begin():
            row = await FollowUpRepository(session).get(key, for_update=True)
            if row is None or row.status != FOLLOWUP_PENDING:
                return None
            failures = int(row.detail.get("failures", 0)) + 1
            row.detail = {**row.detail, "failures": failures}
            if failures >= MAX_FAILURES:
                row.status, row.done_at = FOLLOWUP_DROPPED, now
                log.error("follow-up %s dropped after %d failures", key, failures)
            else:
                row.due_at = now + timedelta(minutes=2 ** (failures - 1))
            return row.status

    # --- the kinds' actions (named by their records in FOLLOWUPS) ---

    async def intake_reminder(self, run: _Run) -> None:
        await self._intake(run, remind=True)

    async def intake_expire(self, run: _Run) -> None:
        await self._intake(run, remind=False)

    async def _intake(self, run: _Run, *, remind: bool) -> None:
        identity_id = run.row.identity_id
        if identity_id is None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        conversations = ConversationRepository(run.session)
        state = await conversations.load(identity_id)
        if not intake_flow.has_draft(state):
            run.finish(FOLLOWUP_CANCELLED)  # signed or discarded meanwhile
            return
        if await self._muted(run, identity_id, state):
            return
        policy = self._policy
        seen = intake_flow.last_seen(state) or run.row.created_at
        wait = policy.after(FollowUpKind.INTAKE_REMINDER if remind else FollowUpKind.INTAKE_EXPIRE)
        if seen + wait > run.now:  # they wrote since the row's time was set
            run.again(seen + wait)
            return
        new, replies = intake_flow.remind(state) if remind else intake_flow.expire(state)
        await conversations.save(identity_id, new, run.now)
        await self._send(run, identity_id, replies, {})
        run.row.attempts += 1
        if remind:
            expire = FollowUpKind.INTAKE_EXPIRE
            run.again(max(seen + policy.after(expire), run.now), expire)
        else:
            run.finish(FOLLOWUP_DONE)

    async def decision_due(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in UNDECIDED:
            run.finish(FOLLOWUP_CANCELLED)
            return
        when = staff_deadline(request.decision_due_at, self._policy.timezone)
        if when > run.now:
            run.again(when)
            return
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)
        date = format_date(request.decision_due_at, STAFF_LANGUAGE, self._policy.timezone)
        text = flows.text(
            STAFF_LANGUAGE,
            "staff.decision_due",
            reference=request.reference or "",
            date=date,
            status=flows.status_label(STAFF_LANGUAGE, request.status),
        )
        run.alert = (text, None)
        log.warning("request %s is past its decision date (%s)", request.reference, request.status)

    async def checkin(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in OPEN or not request.reference:
            run.finish(FOLLOWUP_CANCELLED)
            return
        state = await ConversationRepository(run.session).load(request.identity_id)
        if await self._muted(run, request.identity_id, state):
            return
        message = notices.checkin_notice(state.language, request.reference, request.status)
        variables = {
            "reference": request.reference,
            "status": flows.status_label(state.language, request.status),
        }
        await self._send(run, request.identity_id, (message,), variables, request.id)
        run.row.attempts += 1
        # From now, not from when it was due: after downtime one check-in, not a burst.
        run.again(run.now + self._policy.after(FollowUpKind.CHECKIN))

    async def rating_prompt(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in RATEABLE or not request.reference:
            run.finish(FOLLOWUP_CANCELLED)
            return
        identity_id = request.identity_id
        followups = FollowUpRepository(run.session)
        if await followups.rated(identity_id, id_of(request), since=run.row.created_at):
            run.finish(FOLLOWUP_CANCELLED)
            return
        conversations = ConversationRepository(run.session)
        state = await conversations.load(identity_id)
        if await self._muted(run, identity_id, state):
            return
        seen = intake_flow.last_seen(state)
        if state.flow != "menu" and seen is not None and seen + BUSY > run.now:
            run.again(seen + BUSY)  # busy with something else: ask a little later
            return
        reminder = run.row.kind == FollowUpKind.RATING_REMINDER
        new, replies = rating_flow.prompt(state, request.reference, reminder=reminder)
        await conversations.save(identity_id, new, run.now)
        await self._send(run, identity_id, replies, {"reference": request.reference}, request.id)
        run.row.attempts += 1
        if reminder:
            run.finish(FOLLOWUP_DONE)
        else:
            then = FollowUpKind.RATING_REMINDER
            run.again(run.now + self._policy.after(then), then)

    async def handoff_unclaimed(self, run: _Run) -> None:
        handoff_id = run.row.handoff_id
        handoffs = HandoffRepository(run.session)
        handoff = await handoffs.get(handoff_id) if handoff_id is not None else None
        if handoff is None or handoff.status != HANDOFF_OPEN or handoff.claimed_by is not None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        identity = await IdentityRepository(run.session).get(handoff.identity_id)
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)
        text = flows.text(
            STAFF_LANGUAGE,
            "staff.handoff.reminder",
            reason=flows.reason_label(STAFF_LANGUAGE, handoff.reason),
            channel=flows.channel_label(STAFF_LANGUAGE, identity.channel if identity else ""),
        )
        run.alert = (text, handoff.id)
        log.warning("handoff %s still unclaimed", handoff.id)

    async def feedback_received(self, run: _Run) -> None:
        feedback = await self._feedback(run)
        if feedback is None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        run.row.attempts += 1
        facts = feedback_alerts.facts(feedback)
        run.alert = (feedback_alerts.announcement(facts, self._policy.timezone), None)
        run.alert_feedback = feedback.id
        if feedback.due_at is None or feedback.status not in FEEDBACK_OPEN:
            run.finish(FOLLOWUP_DONE)
            return
        when = staff_deadline(feedback.due_at, self._policy.timezone)
        run.again(max(when, run.now), FollowUpKind.FEEDBACK_OVERDUE)

    async def feedback_overdue(self, run: _Run) -> None:
        feedback = await self._feedback(run)
        if feedback is None or feedback.due_at is None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        if feedback.status not in FEEDBACK_OPEN:
            run.finish(FOLLOWUP_CANCELLED)
            return
        when = staff_deadline(feedback.due_at, self._policy.timezone)
        if when > run.now:
            run.again(when)
            return
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)
        facts = feedback_alerts.facts(feedback)
        run.alert = (feedback_alerts.overdue(facts, self._policy.timezone), None)
        run.alert_feedback = feedback.id
        log.warning("feedback %s is past its deadline (%s)", feedback.reference, feedback.status)

    async def feedback_replied(self, run: _Run) -> None:
        feedback = await self._feedback(run)
        if feedback is None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        reply = await FeedbackRepository(run.session).last_reply(feedback)
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)
        facts = feedback_alerts.facts(feedback)
        run.alert = (feedback_alerts.replied(facts, reply), None)
        run.alert_feedback = feedback.id

    async def appointment_reminder(self, run: _Run) -> None:
        appointment = await self._appointment(run)
        starts = run.row.detail.get("starts_at")
        if (
            appointment is None
            or appointment.identity_id is None
            or appointment.status not in APPOINTMENT_ACTIVE
            or not isinstance(starts, str)
            or datetime.fromisoformat(starts) != appointment.starts_at
            or appointment.starts_at <= run.now
        ):
            run.finish(FOLLOWUP_CANCELLED)  # cancelled, moved or past meanwhile
            return
        identity_id = appointment.identity_id
        state = await ConversationRepository(run.session).load(identity_id)
        in_handoff = state.flow == "handoff"
        if not in_handoff:
            in_handoff = await HandoffRepository(run.session).get_open(identity_id) is not None
        if in_handoff:
            later = run.now + APPOINTMENT_MUTED
            if later < appointment.starts_at:
                run.again(later)
            else:
                run.finish(FOLLOWUP_CANCELLED)
            return
        zone = self._policy.timezone
        item = appointment_summary(appointment)
        message = appointment_flow.reminder(state.language, item, zone)
        variables = {
            "reference": item.reference,
            "date": format_date(item.starts_at, state.language, zone),
            "time": appointment_flow.clock(item.starts_at, state.language, zone),
        }
        # The appointment's own day: it cannot wait for the quiet hours to end.
        same_day = local_date(run.now, zone) == local_date(appointment.starts_at, zone)
        kind = MessageKind.TIMELY if same_day else MessageKind.PROACTIVE
        await self._send(run, identity_id, (message,), variables, appointment.request_id, kind=kind)
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)

    async def visit_answered(self, run: _Run) -> None:
        visit = await self._appointment(run)
        if visit is None:
            run.finish(FOLLOWUP_CANCELLED)
            return
        request = (
            await run.session.get(SupportRequest, visit.request_id) if visit.request_id else None
        )
        zone = self._policy.timezone
        key = (
            "staff.visit.confirmed"
            if visit.status == VISIT_CONFIRMED
            else "staff.visit.change_asked"
        )
        run.row.attempts += 1
        run.finish(FOLLOWUP_DONE)
        text = flows.text(
            STAFF_LANGUAGE,
            key,
            reference=visit.reference or "",
            request=request.reference if request and request.reference else "",
            date=format_date(visit.starts_at, STAFF_LANGUAGE, zone),
            time=appointment_flow.clock(visit.starts_at, STAFF_LANGUAGE, zone),
            by=visit.staff_username or "",
        )
        run.alert = (text, None)

    async def appointments_day(self, run: _Run) -> None:
        day = run.row.detail.get("day")
        if not isinstance(day, str):
            run.finish(FOLLOWUP_CANCELLED)
            return
        zone = ZoneInfo(self._policy.timezone)
        since = datetime.combine(date.fromisoformat(day), time(0), zone).astimezone(UTC)
        found = await AppointmentRepository(run.session).between(since, since + timedelta(days=1))
        lines = []
        for a in found:
            if a.status not in APPOINTMENT_ACTIVE:
                continue
            request = await run.session.get(SupportRequest, a.request_id) if a.request_id else None
            where = a.branch or (request.reference if request and request.reference else "")
            at = a.starts_at.astimezone(zone).strftime("%H:%M")
            by = f"  {a.staff_username}" if a.staff_username else ""
            lines.append(f"{at}  {a.reference}  {where}  {a.status}{by}")
        run.row.attempts += 1
        if not lines:
            run.finish(FOLLOWUP_CANCELLED)
            return
        run.finish(FOLLOWUP_DONE)
        date_text = format_date(since, STAFF_LANGUAGE, self._policy.timezone)
        text = flows.text(
            STAFF_LANGUAGE, "staff.appointments.day", date=date_text, lines="\n".join(lines)
        )
        run.alert = (text, None)

    # --- helpers ---

    async def _appointment(self, run: _Run) -> Appointment | None:
        appointment_id = run.row.detail.get("appointment_id")
        if not isinstance(appointment_id, int):
            return None
        return await run.session.get(Appointment, appointment_id)

    async def _feedback(self, run: _Run) -> Feedback | None:
        feedback_id = run.row.detail.get("feedback_id")
        if not isinstance(feedback_id, int):
            return None
        return await run.session.get(Feedback, feedback_id)

    async def _request(self, run: _Run) -> SupportRequest | None:
        if run.row.request_id is None:
            return None
        return await run.session.get(SupportRequest, run.row.request_id)

    async def _muted(self, run: _Run, identity_id: int, state: ConversationState) -> bool:
        """A handoff is open for the beneficiary: put the follow-up off by its own delay."""
        in_handoff = state.flow == "handoff"
        if not in_handoff:
            in_handoff = await HandoffRepository(run.session).get_open(identity_id) is not None
        if not in_handoff:
            return False
        muted = int(run.row.detail.get("muted", 0)) + 1
        run.row.detail = {**run.row.detail, "muted": muted}
        run.again(run.now + self._policy.muted_delay(run.row.kind))
        return True

    async def _send(
        self,
        run: _Run,
        identity_id: int,
        messages: tuple[OutboundMessage, ...],
        variables: dict[str, str],
        request_id: int | None = None,
        *,
        kind: MessageKind = MessageKind.PROACTIVE,
    ) -> None:
        """Proactive messages into the outbox, marked with the follow-up's kind and the
        variables a WhatsApp template for it would take (the outbox decides)."""
        record = FOLLOWUPS[FollowUpKind(run.row.kind)]
        if record.template is None:
            raise ValueError(f"follow-up kind {record.kind} sends nothing to beneficiaries")
        template = TemplateRef(record.template, variables)
        stored = await MessageRepository(run.session).enqueue_to(
            identity_id,
            [dataclasses.replace(message, template=template) for message in messages],
            run.now,
            kind=kind,
            request_id=request_id,
        )
        run.enqueued = run.enqueued or bool(stored)

    async def _alert(
        self, text: str, handoff_id: int | None, *, feedback_id: int | None = None
    ) -> None:
        if self._alert_staff is None:
            return  # logged already: no staff group configured
        try:
            await self._alert_staff(text, handoff_id, feedback_id=feedback_id)
        except Exception:
            log.exception("staff alert failed")


Action = Callable[[FollowUpDispatcher, _Run], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FollowUpRecord:
    """Everything about one kind of follow-up, in one place.

    Attributes:
        kind: its persisted name.
        key: the form of the key of the matter it is about, ``{}`` the subject's id; a
            kind that follows another (``intake_expire`` after ``intake_reminder``) keeps
            the matter's key.
        delay: the ``[followups]`` setting saying how long after its cause it is due;
            None when its time is a date of its own (the decision date).
        action: what the dispatcher does when it is due.
        template: the template kind of the message it sends a beneficiary; None for a
            staff alert, which goes to the staff group and to no beneficiary.
        quiet_hours: whether it waits out ``organization.quiet_hours``; what it sends a
            beneficiary goes through the outbox as a proactive message, which does.
        muted_by: the setting it is put off by while the beneficiary is in a handoff;
            None: never muted (staff alerts).
        too_old: how long after it was stored its message is still worth sending, unless
            ``followups.too_old`` says otherwise; None: ``followups.too_old_after``.
    """

    kind: FollowUpKind
    key: str
    delay: str | None
    action: Action
    template: TemplateKind | None
    quiet_hours: bool
    muted_by: str | None = None
    too_old: timedelta | None = None

    def __post_init__(self) -> None:
        for name in (self.delay, self.muted_by):
            if name is not None and name not in FollowupSettings.model_fields:
                raise ValueError(f"follow-up {self.kind}: no setting followups.{name}")
        if self.quiet_hours != (self.template is not None):
            raise ValueError(f"follow-up {self.kind}: only messages to beneficiaries wait")

    def key_of(self, subject_id: int) -> str:
        return self.key.format(subject_id)


_D = FollowUpDispatcher
FOLLOWUPS: Mapping[FollowUpKind, FollowUpRecord] = {
    record.kind: record
    for record in (
        FollowUpRecord(
            FollowUpKind.INTAKE_REMINDER,
            key="intake_reminder:identity:{}",
            delay="intake_reminder_after",
            action=_D.intake_reminder,
            template=TemplateKind.INTAKE_REMINDER,
            quiet_hours=True,
            muted_by="intake_reminder_after",
        ),
        FollowUpRecord(
            FollowUpKind.INTAKE_EXPIRE,
            key="intake_reminder:identity:{}",
            delay="intake_expire_after",
            action=_D.intake_expire,
            template=TemplateKind.INTAKE_EXPIRE,
            quiet_hours=True,
            muted_by="intake_reminder_after",
        ),
        FollowUpRecord(
            FollowUpKind.DECISION_DUE,
            key="decision_due:request:{}",
            delay=None,
            action=_D.decision_due,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.CHECKIN,
            key="checkin:request:{}",
            delay="checkin_every",
            action=_D.checkin,
            template=TemplateKind.CHECKIN,
            quiet_hours=True,
            muted_by="checkin_every",
        ),
        FollowUpRecord(
            FollowUpKind.RATING_PROMPT,
            key="rating_prompt:request:{}",
            delay="rating_prompt_after",
            action=_D.rating_prompt,
            template=TemplateKind.RATING_PROMPT,
            quiet_hours=True,
            muted_by="rating_prompt_after",
        ),
        FollowUpRecord(
            FollowUpKind.RATING_REMINDER,
            key="rating_prompt:request:{}",
            delay="rating_reminder_after",
            action=_D.rating_prompt,
            template=TemplateKind.RATING_REMINDER,
            quiet_hours=True,
            muted_by="rating_reminder_after",
        ),
        FollowUpRecord(
            FollowUpKind.HANDOFF_UNCLAIMED,
            key="handoff_unclaimed:handoff:{}",
            delay="handoff_unclaimed_after",
            action=_D.handoff_unclaimed,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.FEEDBACK_RECEIVED,
            key="feedback_received:feedback:{}",
            delay=None,
            action=_D.feedback_received,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.FEEDBACK_REPLIED,
            key="feedback_replied:feedback:{}",
            delay=None,
            action=_D.feedback_replied,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.FEEDBACK_OVERDUE,
            key="feedback_received:feedback:{}",
            delay=None,  # its time is the feedback's own deadline (feedback.answer_within)
            action=_D.feedback_overdue,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.APPOINTMENT_REMINDER,
            key="appointment_reminder:appointment:{}",
            delay=None,  # its time is the appointment's, less appointments.reminders
            action=_D.appointment_reminder,
            template=TemplateKind.APPOINTMENT_REMINDER,
            quiet_hours=True,  # but the one on the appointment's own day (timely)
        ),
        FollowUpRecord(
            FollowUpKind.APPOINTMENTS_DAY,
            key="appointments_day:day:{}",
            delay=None,  # 07:30 on the appointments' day
            action=_D.appointments_day,
            template=None,
            quiet_hours=False,
        ),
        FollowUpRecord(
            FollowUpKind.VISIT_ANSWERED,
            key="visit_answered:appointment:{}",
            delay=None,
            action=_D.visit_answered,
            template=None,
            quiet_hours=False,
        ),
    )
}


def too_old_defaults() -> dict[str, timedelta]:
    """The follow-ups' own too-old limits by template kind (``followups.too_old`` wins)."""
    return {
        record.template: record.too_old
        for record in FOLLOWUPS.values()
        if record.template is not None and record.too_old is not None
    }


class StaffGroupAlerts:
    """Staff alerts posted to the Telegram staff group; one about a handoff goes into its
    thread with the take and close buttons, and a reply to it reaches the beneficiary."""

    def __init__(
        self,
        telegram: TelegramStaffGroup,
        database: Database,
        clock: Callable[[], datetime],
        *,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._telegram = telegram
        self._db = database
        self._clock = clock
        self._pace = pace  # the outbox's limits for the staff group

    async def __call__(
        self, text: str, handoff_id: int | None, *, feedback_id: int | None = None
    ) -> None:
        reply_to: str | None = None
        buttons: list[tuple[str, str]] = []
        if handoff_id is not None:
            async with self._db.session() as session:
                reply_to = await HandoffRepository(session).first_post(handoff_id)
            buttons = [
                (flows.text(STAFF_LANGUAGE, "staff.button.take"), f"h:take:{handoff_id}"),
                (flows.text(STAFF_LANGUAGE, "staff.button.close"), f"h:close:{handoff_id}"),
            ]
        if self._pace is not None:
            await self._pace()
        try:
            post = await self._telegram.post(text, buttons=buttons, reply_to=reply_to)
        except DeliveryError as error:
            log.error("staff alert not posted: %s", error.reason)
            return
        if handoff_id is not None:
            async with self._db.session() as session, session.begin():
                await HandoffRepository(session).record_post(handoff_id, post, self._clock())
        if feedback_id is not None:
            async with self._db.session() as session, session.begin():
                await FeedbackRepository(session).record_post(feedback_id, post, self._clock())
