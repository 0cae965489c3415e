"""The staff group on Telegram: handoffs announced and relayed, staff commands answered.

Posts keep the outbox's limits (``pace``: the bot's Telegram limit and the group's own,
``telegram.staff_posts_per_minute``). What one beneficiary writes into a handoff while
a post waits for its turn is gathered into that post, so a flood of messages is one post
(at most ``RELAY_LINES`` lines; the rest counted, and all of it in the dashboard), not
thousands. The gathered lines wait in memory: a crash loses the post, not the messages,
which are stored and shown on the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import flows
from bot import feedback_alerts
from bot.desk import StaffDesk, StaffError
from bot.engine import utcnow
from bot.feedback import FeedbackDesk, FeedbackError
from bot.followups import FollowUpPlanner, FollowUpPolicy
from bot.visits import AppointmentError, VisitDesk
from flows import appointments
from flows.dates import format_date
from flows.staff_texts import STAFF_LANGUAGE, mask_for_group
from flows.types import FlowSettings, InboundMessage
from handlers.base import DeliveryError, StaffUpdate
from handlers.telegram_staff import TelegramStaffGroup
from storage.db import Database
from storage.feedback import FeedbackRepository
from storage.models import Staff
from storage.repositories import (
    ConversationRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    RequestRepository,
)

log = logging.getLogger(__name__)

LAST_MESSAGES = 5
# Lines of one gathered relay post at most; the rest are counted in a last line.
RELAY_LINES = 30
RELAY_LINE_CHARS = 300
# A post Telegram asked us to retry later (429) is tried this often in all.
POST_ATTEMPTS = 3


def _t(key: str, **params: object) -> str:
    return flows.text(STAFF_LANGUAGE, key, **params)


class StaffGroup:
    """Posts about handoffs to the staff group and acts on what staff write there."""

    def __init__(
        self,
        desk: StaffDesk,
        telegram: TelegramStaffGroup,
        database: Database,
        settings: FlowSettings,
        *,
        pace: Callable[[], Awaitable[None]] | None = None,
        feedback: FeedbackDesk | None = None,
        visits: VisitDesk | None = None,
    ) -> None:
        self._desk = desk
        self._feedback = feedback
        self._settings = settings
        self._telegram = telegram
        self._db = database
        self._pace = pace
        # Per handoff, what its beneficiary wrote since the last relay post, and the task
        # that will post it.
        self._relays: dict[int, list[str]] = {}
        self._relaying: dict[int, asyncio.Task[None]] = {}
        if visits is None:  # a group on its own (tests): nobody else to wake
            reminders = settings.appointments.reminders
            policy = FollowUpPolicy(timezone=settings.timezone, reminders=reminders)
            visits = VisitDesk(database, settings, utcnow, followups=FollowUpPlanner(policy))
        self._visits = visits

    # --- from the beneficiaries' side ---

    async def announce(self, handoff_id: int) -> None:
        """A new handoff: who, in which language, their requests and last messages."""
        async with self._db.session() as session:
            handoff = await HandoffRepository(session).get(handoff_id)
            if handoff is None:
                return
            identity = await IdentityRepository(session).get(handoff.identity_id)
            language = (await ConversationRepository(session).load(handoff.identity_id)).language
            requests = await RequestRepository(session).for_identity(handoff.identity_id)
            history = await MessageRepository(session).history(handoff.identity_id, LAST_MESSAGES)
        lines = [
            flows.handoff_notification(
                STAFF_LANGUAGE,
                reason=handoff.reason,
                urgent=handoff.urgent,
                beneficiary_language=language,
                channel=identity.channel if identity else "",
            )
        ]
        lines += [
            flows.request_line(STAFF_LANGUAGE, r.reference or "", r.status, r.need, self._settings)
            for r in requests[:5]
        ]
        for message in history:
            arrow = "←" if message.direction == "in" else "→"
            lines.append(f"{arrow} {mask_for_group(message.text)[:300]}")
        buttons = [
            (_t("staff.button.take"), f"h:take:{handoff_id}"),
            (_t("staff.button.close"), f"h:close:{handoff_id}"),
        ]
        await self._post(handoff_id, "\n".join(lines), buttons=buttons)

    async def relay(self, handoff_id: int, message: InboundMessage) -> None:
        """A beneficiary wrote into an open handoff: staff see it, as a reply in its thread,
        gathered with whatever else they write before the post's turn comes."""
        text = mask_for_group(message.text)[:RELAY_LINE_CHARS] if message.text else ""
        if message.media:
            text = (text + " " if text else "") + f"📎 {len(message.media)}"
        self._relays.setdefault(handoff_id, []).append(text)
        task = self._relaying.get(handoff_id)
        if task is not None and not task.done():
            return  # gathered into the post under way
        task = asyncio.create_task(self._relay_gathered(handoff_id))
        self._relaying[handoff_id] = task
        await task

    async def _relay_gathered(self, handoff_id: int) -> None:
        try:
            while self._relays.get(handoff_id):
                if self._pace is not None:
                    await self._pace()
                lines = self._relays.pop(handoff_id, [])
                shown = lines[:RELAY_LINES]
                if len(lines) > len(shown):
                    shown.append(_t("staff.more_messages", count=len(lines) - len(shown)))
                await self._post(
                    handoff_id,
                    _t(
                        "staff.beneficiary_says",
                        name_or_channel=f"#{handoff_id}",
                        text="\n".join(shown) if len(shown) == 1 else "\n" + "\n".join(shown),
                    ),
                    reply_to=await self._thread(handoff_id),
                    paced=True,
                )
        finally:
            self._relaying.pop(handoff_id, None)

    async def left(self, handoff_id: int) -> None:
        await self._post(
            handoff_id,
            _t("staff.handoff.left", number=handoff_id),
            reply_to=await self._thread(handoff_id),
        )

    # --- from the staff group ---

    async def on_staff(self, update: StaffUpdate) -> None:
        words = update.text.split()
        is_command = bool(words) and words[0].startswith("/")
        if not (is_command or update.callback_data or update.reply_to):
            return  # staff talking among themselves
        staff = await self._desk.staff_by_telegram(update.user_id)
        if staff is None:
            await self._answer(update, _t("staff.not_staff"))
            return
        try:
            if update.callback_data:
                await self._button(update, staff)
            elif is_command:
                await self._command(update, staff, words)
            elif update.reply_to:
                await self._reply(update, staff)
        except StaffError as error:
            await self._answer(update, _t("staff.status.refused", reason=str(error)))
        except FeedbackError as error:
            await self._answer(update, feedback_alerts.refusal(error.forbidden, str(error)))

    async def _button(self, update: StaffUpdate, staff: Staff) -> None:
        action, _, number = (update.callback_data or "").partition(":")[2].partition(":")
        if not number.isdigit():
            return
        handoff_id = int(number)
        if action == "take":
            if await self._desk.take(handoff_id, staff):
                await self._answer(update, _t("staff.handoff.taken_by", name=staff.username))
            else:
                owner = await self._desk.owner(handoff_id)
                await self._answer(update, _t("staff.handoff.already_taken", name=owner or "?"))
        elif action == "close":
            closed = await self._desk.close(handoff_id, staff)
            if closed is not None:
                await self._answer(update, _t("staff.handoff.closed_by", name=staff.username))

    async def _reply(self, update: StaffUpdate, staff: Staff) -> None:
        async with self._db.session() as session:
            handoff = await HandoffRepository(session).by_post(update.reply_to or "")
            feedback = await FeedbackRepository(session).by_post(update.reply_to or "")
        if feedback is not None and feedback.reference and self._feedback is not None:
            await self._feedback.answer(feedback.reference, update.text, by=staff)
            await self._answer(update, _t("staff.feedback.answered", reference=feedback.reference))
            return
        if handoff is None or handoff.id is None:
            return  # a reply to something else in the group
        await self._desk.reply(handoff.id, staff, update.text)

    async def _command(self, update: StaffUpdate, staff: Staff, words: list[str]) -> None:
        command, args = words[0].lower(), words[1:]
        if command == "/status" and len(args) >= 2:
            note = " ".join(args[2:]) or None
            request = await self._desk.set_status(args[0], args[1], note=note, by=staff.username)
            await self._answer(
                update,
                _t(
                    "staff.status.done",
                    reference=request.reference or "",
                    status=flows.status_label(STAFF_LANGUAGE, args[1]),
                ),
            )
        elif command == "/note" and len(args) >= 2:
            await self._desk.add_note(args[0], " ".join(args[1:]), by=staff.username)
            await self._answer(update, _t("staff.note.done", reference=args[0].upper()))
        elif command == "/case" and len(args) == 1:
            await self._answer(update, await self._case_text(args[0], staff))
        elif command == "/feedback" and len(args) == 1 and self._feedback is not None:
            case = await self._feedback.show(args[0], by=staff, where="staff_group")
            shown = feedback_alerts.in_group(
                case.feedback,
                case.events,
                case.request_reference,
                overdue=case.overdue,
                timezone=self._settings.timezone,
            )
            await self._answer(update, shown)
        elif command == "/visit" and len(args) == 3:
            await self._answer(update, await self._visit(args[0], " ".join(args[1:]), staff))
        elif command == "/handoffs":
            await self._answer(update, await self._handoffs_text())
        else:
            await self._answer(update, _t("staff.usage"))

    async def _visit(self, reference: str, at: str, staff: Staff) -> str:
        try:
            visit = await self._visits.schedule(reference, at, by=staff.username)
        except AppointmentError as error:
            return _t("staff.visit.refused", reason=error.said_in(STAFF_LANGUAGE))
        zone = self._settings.timezone
        return _t(
            "staff.visit.scheduled",
            reference=visit.reference or "",
            request=reference.upper(),
            date=format_date(visit.starts_at, STAFF_LANGUAGE, zone),
            time=appointments.clock(visit.starts_at, STAFF_LANGUAGE, zone),
            by=staff.username,
        )

    async def _case_text(self, reference: str, staff: Staff) -> str:
        try:
            case = await self._desk.case_file(reference, read_by=staff, where="staff_group")
        except StaffError:
            return _t("staff.case.not_found", reference=reference)
        request = case.request
        answers = request.answers
        lines = [
            flows.request_line(
                STAFF_LANGUAGE,
                request.reference or "",
                request.status,
                request.need,
                self._settings,
            ),
            " · ".join(
                [
                    str(answers.get("name", "")),
                    flows.mask_national_id(str(answers.get("national_id", ""))),
                    str(answers.get("city", "")),
                ]
            ),
        ]
        for event in case.events[-10:]:
            actor = f" ({event.actor})" if event.actor else ""
            lines.append(
                f"{event.at:%Y-%m-%d %H:%M} {event.kind}{actor}: {mask_for_group(event.text)[:200]}"
            )
        return "\n".join(lines)

    async def _handoffs_text(self) -> str:
        handoffs = await self._desk.open_handoffs()
        if not handoffs:
            return _t("staff.handoffs.none")
        lines = [_t("staff.handoffs.header", count=len(handoffs))]
        for handoff in handoffs:
            owner = (
                await self._desk.owner(handoff.id) if handoff.id and handoff.claimed_by else None
            )
            mark = "🚨 " if handoff.urgent else ""
            line = _t(
                "staff.handoffs.line",
                beneficiary=f"{mark}#{handoff.id} ({handoff.opened_at:%Y-%m-%d %H:%M})",
                reason=flows.reason_label(STAFF_LANGUAGE, handoff.reason),
                owner=owner or _t("staff.handoffs.unclaimed"),
            )
            lines.append(line)
        return "\n".join(lines)

    # --- posting ---

    async def _thread(self, handoff_id: int) -> str | None:
        async with self._db.session() as session:
            return await HandoffRepository(session).first_post(handoff_id)

    async def _post(
        self,
        handoff_id: int,
        text: str,
        *,
        buttons: list[tuple[str, str]] | None = None,
        reply_to: str | None = None,
        paced: bool = False,
    ) -> None:
        if self._pace is not None and not paced:
            await self._pace()
        for attempt in range(1, POST_ATTEMPTS + 1):
            try:
                post = await self._telegram.post(text, buttons=buttons or (), reply_to=reply_to)
                break
            except DeliveryError as error:
                if error.retry_after is None or attempt == POST_ATTEMPTS:
                    log.error(
                        "staff group post for handoff %d failed: %s", handoff_id, error.reason
                    )
                    return
                await asyncio.sleep(min(error.retry_after, 60.0))  # Telegram said when
        async with self._db.session() as session, session.begin():
            await HandoffRepository(session).record_post(handoff_id, post, self._desk.now())

    async def _answer(self, update: StaffUpdate, text: str) -> None:
        if self._pace is not None:
            await self._pace()
        try:
            await self._telegram.post(text, reply_to=update.message_id)
        except DeliveryError as error:
            log.error("staff group answer failed: %s", error.reason)
