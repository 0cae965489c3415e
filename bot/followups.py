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

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import flows
from bot.config import FollowupSettings, OrganizationSettings, Settings
from bot.staffroom import STAFF_LANGUAGE
from flows import intake as intake_flow
from flows import notices
from flows import rating as rating_flow
from flows.dates import format_date
from flows.types import ConversationState, OutboundMessage, TemplateRef
from handlers.base import DeliveryError
from handlers.telegram import TelegramChannel
from storage.db import Database
from storage.models import (
    FOLLOWUP_CANCELLED,
    FOLLOWUP_DONE,
    FOLLOWUP_DROPPED,
    FOLLOWUP_PENDING,
    HANDOFF_OPEN,
    KIND_PROACTIVE,
    REQUEST_UNDECIDED,
    FollowUp,
    Handoff,
    Rating,
    SupportRequest,
)
from storage.repositories import (
    ConversationRepository,
    FollowUpRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
)

log = logging.getLogger(__name__)

# Kinds: persisted names, also the ``TemplateRef`` kind of the messages they send.
INTAKE_REMINDER = "intake_reminder"
INTAKE_EXPIRE = "intake_expire"
DECISION_DUE = "decision_due"
CHECKIN = "checkin"
RATING_PROMPT = "rating_prompt"
RATING_REMINDER = "rating_reminder"
HANDOFF_UNCLAIMED = "handoff_unclaimed"
KINDS = (
    INTAKE_REMINDER,
    INTAKE_EXPIRE,
    DECISION_DUE,
    CHECKIN,
    RATING_PROMPT,
    RATING_REMINDER,
    HANDOFF_UNCLAIMED,
)

# A request in one of these is still being handled: check-ins go on.
OPEN_STATUSES = frozenset({"submitted", "under_review", "needs_info", "accepted"})
RATED_STATUSES = frozenset({"delivered", "closed"})
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

StaffAlert = Callable[[str, int | None], Awaitable[None]]
"""Posts ``text`` for staff; the int is the handoff it is about (None: about none)."""


def intake_key(identity_id: int) -> str:
    return f"{INTAKE_REMINDER}:identity:{identity_id}"


def decision_key(request_id: int) -> str:
    return f"{DECISION_DUE}:request:{request_id}"


def checkin_key(request_id: int) -> str:
    return f"{CHECKIN}:request:{request_id}"


def rating_key(request_id: int) -> str:
    return f"{RATING_PROMPT}:request:{request_id}"


def handoff_key(handoff_id: int) -> str:
    return f"{HANDOFF_UNCLAIMED}:handoff:{handoff_id}"


# The configuration's defaults, for a policy built without it (tests, the command line).
_DEFAULTS = FollowupSettings()


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    """The ``[followups]`` durations and the organisation's time zone."""

    intake_reminder_after: timedelta = _DEFAULTS.intake_reminder_after
    intake_expire_after: timedelta = _DEFAULTS.intake_expire_after
    rating_prompt_after: timedelta = _DEFAULTS.rating_prompt_after
    rating_reminder_after: timedelta = _DEFAULTS.rating_reminder_after
    checkin_every: timedelta = _DEFAULTS.checkin_every
    handoff_unclaimed_after: timedelta = _DEFAULTS.handoff_unclaimed_after
    timezone: str = OrganizationSettings().timezone

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpPolicy:
        f = settings.followups
        return cls(
            intake_reminder_after=f.intake_reminder_after,
            intake_expire_after=f.intake_expire_after,
            rating_prompt_after=f.rating_prompt_after,
            rating_reminder_after=f.rating_reminder_after,
            checkin_every=f.checkin_every,
            handoff_unclaimed_after=f.handoff_unclaimed_after,
            timezone=settings.organization.timezone,
        )

    def muted_delay(self, kind: str) -> timedelta:
        """How long a follow-up for a beneficiary in a handoff is put off: its own delay."""
        return {
            INTAKE_REMINDER: self.intake_reminder_after,
            INTAKE_EXPIRE: self.intake_reminder_after,
            RATING_PROMPT: self.rating_prompt_after,
            RATING_REMINDER: self.rating_reminder_after,
        }.get(kind, self.checkin_every)


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
        key = intake_key(identity_id)
        followups = FollowUpRepository(session)
        if not has:
            return await followups.cancel([key], now)
        due = now + self.policy.intake_reminder_after
        if had:
            previous = intake_flow.last_seen(before)
            if previous is not None and now - previous <= INTAKE_MOVE_TOLERANCE:
                return []
            row = await followups.get(key)
            if row is not None and row.status == FOLLOWUP_PENDING and row.kind == INTAKE_REMINDER:
                if due - row.due_at > INTAKE_MOVE_TOLERANCE:
                    await followups.move(key, due)
                return []
        await followups.schedule(key, INTAKE_REMINDER, due, now=now, identity_id=identity_id)
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
        for request in requests:
            request_id = _id(request)
            about = {"identity_id": request.identity_id, "request_id": request_id}
            decision_at = staff_deadline(request.decision_due_at, self.policy.timezone)
            checkin_at = now + self.policy.checkin_every
            plans.append(
                {
                    **about,
                    "key": decision_key(request_id),
                    "kind": DECISION_DUE,
                    "due_at": decision_at,
                }
            )
            plans.append(
                {**about, "key": checkin_key(request_id), "kind": CHECKIN, "due_at": checkin_at}
            )
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
        request_id, status = _id(request), request.status
        followups = FollowUpRepository(session)
        keys: list[str] = []
        if status not in REQUEST_UNDECIDED:
            keys += await followups.cancel([decision_key(request_id)], now)
        elif before not in REQUEST_UNDECIDED:
            await followups.schedule(
                decision_key(request_id),
                DECISION_DUE,
                staff_deadline(request.decision_due_at, self.policy.timezone),
                now=now,
                identity_id=request.identity_id,
                request_id=request_id,
            )
            keys.append(decision_key(request_id))
        if status in OPEN_STATUSES:
            await followups.schedule(
                checkin_key(request_id),
                CHECKIN,
                now + self.policy.checkin_every,
                now=now,
                identity_id=request.identity_id,
                request_id=request_id,
            )
            keys.append(checkin_key(request_id))
        else:
            keys += await followups.cancel([checkin_key(request_id)], now)
        if status == "delivered":
            await followups.schedule(
                rating_key(request_id),
                RATING_PROMPT,
                now + self.policy.rating_prompt_after,
                now=now,
                identity_id=request.identity_id,
                request_id=request_id,
            )
            keys.append(rating_key(request_id))
        return keys

    async def rating_recorded(
        self, session: AsyncSession, rating: Rating, now: datetime
    ) -> list[str]:
        """A rating of the service answers the prompt about its request (or, naming no
        request, the beneficiary's pending prompts)."""
        if rating.context != "service":
            return []
        followups = FollowUpRepository(session)
        if rating.request_id is not None:
            return await followups.cancel([rating_key(rating.request_id)], now)
        return await followups.cancel_for(rating.identity_id, [RATING_PROMPT, RATING_REMINDER], now)

    async def handoff_opened(
        self, session: AsyncSession, handoff: Handoff, now: datetime
    ) -> list[str]:
        """A handoff opened: staff are reminded if nobody takes it in time. Asking again
        while it is open changes nothing."""
        handoff_id = _id(handoff)
        key = handoff_key(handoff_id)
        followups = FollowUpRepository(session)
        if await followups.get(key) is not None:
            return []
        await followups.schedule(
            key,
            HANDOFF_UNCLAIMED,
            handoff.opened_at + self.policy.handoff_unclaimed_after,
            now=now,
            identity_id=handoff.identity_id,
            handoff_id=handoff_id,
        )
        return [key]

    async def handoff_settled(
        self, session: AsyncSession, handoff_id: int, now: datetime
    ) -> list[str]:
        """A handoff was taken or closed: no reminder about it."""
        return await FollowUpRepository(session).cancel([handoff_key(handoff_id)], now)


@dataclass(slots=True)
class _Run:
    """One follow-up being carried out: its row, and what to do after the commit."""

    session: AsyncSession
    row: FollowUp
    now: datetime
    enqueued: bool = False
    alert: tuple[str, int | None] | None = None

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
        self._handlers: dict[str, Callable[[_Run], Awaitable[None]]] = {
            INTAKE_REMINDER: self._intake_reminder,
            INTAKE_EXPIRE: self._intake_expire,
            DECISION_DUE: self._decision_due,
            CHECKIN: self._checkin,
            RATING_PROMPT: self._rating_prompt,
            RATING_REMINDER: self._rating_prompt,
            HANDOFF_UNCLAIMED: self._handoff_unclaimed,
        }

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
            handler = self._handlers.get(row.kind)
            if handler is None:
                log.warning("follow-up %s has an unknown kind %r: cancelled", key, row.kind)
                run.finish(FOLLOWUP_CANCELLED)
            else:
                await handler(run)
            status = row.status
        log.info("follow-up %s (%s): %s", key, row.kind, status)
        if run.enqueued:
            self._on_outbox()
        if run.alert is not None:
            await self._alert(*run.alert)
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

    # --- the kinds ---

    async def _intake_reminder(self, run: _Run) -> None:
        await self._intake(run, remind=True)

    async def _intake_expire(self, run: _Run) -> None:
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
        wait = policy.intake_reminder_after if remind else policy.intake_expire_after
        if seen + wait > run.now:  # they wrote since the row's time was set
            run.again(seen + wait)
            return
        new, replies = intake_flow.remind(state) if remind else intake_flow.expire(state)
        await conversations.save(identity_id, new, run.now)
        await self._send(run, identity_id, replies, {})
        run.row.attempts += 1
        if remind:
            run.again(max(seen + policy.intake_expire_after, run.now), INTAKE_EXPIRE)
        else:
            run.finish(FOLLOWUP_DONE)

    async def _decision_due(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in REQUEST_UNDECIDED:
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

    async def _checkin(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in OPEN_STATUSES or not request.reference:
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
        run.again(run.now + self._policy.checkin_every)

    async def _rating_prompt(self, run: _Run) -> None:
        request = await self._request(run)
        if request is None or request.status not in RATED_STATUSES or not request.reference:
            run.finish(FOLLOWUP_CANCELLED)
            return
        identity_id = request.identity_id
        followups = FollowUpRepository(run.session)
        if await followups.rated(identity_id, _id(request), since=run.row.created_at):
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
        reminder = run.row.kind == RATING_REMINDER
        new, replies = rating_flow.prompt(state, request.reference, reminder=reminder)
        await conversations.save(identity_id, new, run.now)
        await self._send(run, identity_id, replies, {"reference": request.reference}, request.id)
        run.row.attempts += 1
        if reminder:
            run.finish(FOLLOWUP_DONE)
        else:
            run.again(run.now + self._policy.rating_reminder_after, RATING_REMINDER)

    async def _handoff_unclaimed(self, run: _Run) -> None:
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

    # --- helpers ---

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
    ) -> None:
        """Proactive messages into the outbox, marked with the follow-up's kind and the
        variables a WhatsApp template for it would take (the outbox decides)."""
        identity = await IdentityRepository(run.session).get(identity_id)
        if identity is None:
            return
        outbox = MessageRepository(run.session)
        template = TemplateRef(run.row.kind, variables)
        for message in messages:
            await outbox.enqueue(
                identity_id,
                identity.channel,
                OutboundMessage(
                    message.text, message.language, message.choices, message.inline, template
                ),
                run.now,
                kind=KIND_PROACTIVE,
                request_id=request_id,
            )
            run.enqueued = True

    async def _alert(self, text: str, handoff_id: int | None) -> None:
        if self._alert_staff is None:
            return  # logged already: no staff group configured
        try:
            await self._alert_staff(text, handoff_id)
        except Exception:
            log.exception("staff alert failed")


class StaffGroupAlerts:
    """Staff alerts posted to the Telegram staff group; one about a handoff goes into its
    thread with the take and close buttons, and a reply to it reaches the beneficiary."""

    def __init__(
        self, telegram: TelegramChannel, database: Database, clock: Callable[[], datetime]
    ) -> None:
        self._telegram = telegram
        self._db = database
        self._clock = clock

    async def __call__(self, text: str, handoff_id: int | None) -> None:
        reply_to: str | None = None
        buttons: list[tuple[str, str]] = []
        if handoff_id is not None:
            async with self._db.session() as session:
                reply_to = await HandoffRepository(session).first_post(handoff_id)
            buttons = [
                (flows.text(STAFF_LANGUAGE, "staff.button.take"), f"h:take:{handoff_id}"),
                (flows.text(STAFF_LANGUAGE, "staff.button.close"), f"h:close:{handoff_id}"),
            ]
        try:
            post = await self._telegram.post_to_staff(text, buttons=buttons, reply_to=reply_to)
        except DeliveryError as error:
            log.error("staff alert not posted: %s", error.reason)
            return
        if handoff_id is not None:
            async with self._db.session() as session, session.begin():
                await HandoffRepository(session).record_post(handoff_id, post, self._clock())


def _id(row: SupportRequest | Handoff) -> int:
    assert row.id is not None, "a row is flushed before use"
    return row.id
