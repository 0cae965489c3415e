"""The staff desk: every staff action, one code path for the CLI, the staff group and the dashboard.

Each action runs in one transaction: the change, the case-file entry, the notice
to the beneficiary (into the outbox, in their language, on the channel they used) and
the audit log's entry of who did it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

import flows
from bot.channels import capabilities_of
from bot.followups import FollowUpPlanner
from bot.passwords import hash_password
from bot.templates import TemplateKind
from flows.handoff import FLOW as HANDOFF_FLOW
from flows.handoff import WAITING as HANDOFF_WAITING
from flows.lifecycle import NEEDS_INFO, OPEN, UNDECIDED
from flows.staff_texts import STAFF_LANGUAGE
from flows.steps import goto, need_label, sound
from flows.types import FlowSettings, Language, OpenHandoff, OutboundMessage, TemplateRef
from flows.validation import check_national_id, mask_ids_in
from storage.db import Database
from storage.models import (
    ChannelIdentity,
    Handoff,
    MessageKind,
    Staff,
    StaffRole,
    SupportRequest,
)
from storage.privacy import Erased, erase_beneficiary, find_beneficiary, past_retention
from storage.repositories import (
    AuditRepository,
    CaseEvent,
    CaseFileRepository,
    ConversationRepository,
    HandoffRepository,
    MessageRepository,
    RequestRepository,
    SessionRepository,
    StaffRepository,
)

log = logging.getLogger(__name__)

# Who may take a case file out whole (the README's export roles); others get it masked.
EXPORT_ROLES = (StaffRole.MANAGER, StaffRole.ADMIN)
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MIN_PASSWORD_CHARS = 10
# The reason of a handoff staff open themselves, writing to an applicant from the case file.
OUTREACH = "outreach"


class StaffError(Exception):
    """An action staff asked for that cannot be done; ``str()`` says why, for staff."""


@dataclass(frozen=True, slots=True)
class CaseFile:
    request: SupportRequest
    events: list[CaseEvent]


class StaffDesk:
    """Staff actions on requests and handoffs."""

    def __init__(
        self,
        database: Database,
        settings: FlowSettings,
        clock: Callable[[], datetime],
        *,
        on_outbox: Callable[[], None] = lambda: None,
        followups: FollowUpPlanner | None = None,
        on_followups: Callable[[list[str]], None] = lambda _keys: None,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._on_outbox = on_outbox  # the outbox sender's wake-up, when one runs here
        # Follow-ups change in the action's transaction; their jobs after it (in the
        # server; from the command line a running server's sweep finds them).
        self._followups = followups
        self._on_followups = on_followups

    def now(self) -> datetime:
        return self._clock()

    # --- staff members ---

    async def staff_member(self, username: str) -> Staff:
        async with self._db.session() as session:
            staff = await StaffRepository(session).get(username)
        if staff is None:
            raise StaffError(f"no active staff member {username!r}")
        return staff

    async def set_password(
        self,
        username: str,
        password: str,
        *,
        by: str | Staff | None,
        keep_session: str | None = None,
    ) -> Staff:
        """Give a member a new dashboard password; their other logins end. Audited.

        A member may change their own; an admin may reset anyone's (``by`` None: the
        command line, run by whoever administers the server).

        Args:
            keep_session: the hash of the session to keep (the member's own, changing it).
        """
        if len(password) < MIN_PASSWORD_CHARS:
            raise StaffError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._db.session() as session, session.begin():
            members = StaffRepository(session)
            staff = await members.get(username)
            if staff is None or staff.id is None:
                raise StaffError(f"no active staff member {username!r}")
            actor = await members.get(by) if isinstance(by, str) else by
            own = actor is not None and actor.id == staff.id
            if actor is not None and not own and actor.role != "admin":
                raise StaffError("only an admin can set another member's password")
            staff.password_hash = password_hash
            await SessionRepository(session).delete_for(staff.id, keep=keep_session)
            action = "password_change" if own else "password_reset"
            await self._audit(session, by, action, staff.username)
        log.info("staff member %s has a new password (%s)", staff.id, action)
        return staff

    async def staff_by_telegram(self, telegram_id: int) -> Staff | None:
        async with self._db.session() as session:
            return await StaffRepository(session).by_telegram_id(telegram_id)

    async def add_member(
        self,
        username: str,
        role: str,
        *,
        telegram_id: int | None = None,
        password_hash: str | None = None,
        by: str | Staff | None = None,
    ) -> Staff:
        """Register a staff member (or bring a removed one back), in the audit log.

        Raises:
            StaffError: the username or role is not valid, or taken.
        """
        async with self._db.session() as session, session.begin():
            try:
                member = await StaffRepository(session).add(
                    username,
                    role,
                    telegram_id=telegram_id,
                    password_hash=password_hash,
                    now=self._clock(),
                )
            except ValueError as problem:
                raise StaffError(str(problem)) from None
            await self._audit(session, by, "staff_add", member.username, {"role": role})
        return member

    async def remove_member(self, username: str, *, by: str | Staff | None = None) -> None:
        """Deactivate a member and end their dashboard sessions, in the audit log.

        Raises:
            StaffError: there is no active member by that name.
        """
        async with self._db.session() as session, session.begin():
            members = StaffRepository(session)
            member = await members.get(username)
            if member is None or member.id is None:
                raise StaffError(f"no active staff member {username!r}")
            await members.remove(member.username)
            await SessionRepository(session).delete_for(member.id)  # logged out everywhere
            await self._audit(session, by, "staff_remove", member.username)

    # --- requests ---

    async def set_status(
        self, reference: str, status: str, *, note: str | None = None, by: str | None = None
    ) -> SupportRequest:
        """Move a request on; the beneficiary is told at once. StaffError when not allowed."""
        note = (note or "").strip() or None
        status = flows.canonical_status(status) or status.strip()
        now = self._clock()
        async with self._db.session() as session, session.begin():
            requests = RequestRepository(session)
            request = await self._request(requests, reference)
            problem = flows.transition_problem(request.status, status, note=note)
            if problem:
                raise StaffError(problem)
            previous = request.status
            await requests.change_status(request, status, now=now, by=by, note=note)
            await self._tell_applicant(session, request, status, note, now)
            keys = []
            if self._followups is not None:
                keys = await self._followups.status_changed(session, request, previous, now)
            await self._audit(
                session, by, "status_change", request.reference, {"from": previous, "to": status}
            )
        log.info("request %s moved to %s", request.reference, status)
        self._on_outbox()
        self._on_followups(keys)
        return request

    async def add_note(self, reference: str, text: str, *, by: str) -> None:
        text = text.strip()
        if not text:
            raise StaffError("a note needs some text")
        async with self._db.session() as session, session.begin():
            requests = RequestRepository(session)
            request = await self._request(requests, reference)
            await requests.add_note(request, author=by, text=text, now=self._clock())
            await self._audit(session, by, "note", request.reference)

    async def list_requests(
        self, *, status: str | None = None, overdue: bool = False
    ) -> list[SupportRequest]:
        if status is not None and status not in flows.STATUSES:
            raise StaffError(f"unknown status {status!r}: one of {', '.join(flows.STATUSES)}")
        async with self._db.session() as session:
            return await RequestRepository(session).list(
                status=status,
                overdue_at=self._clock() if overdue else None,
                undecided=UNDECIDED,
            )

    async def household(
        self, request: SupportRequest
    ) -> tuple[list[SupportRequest], list[SupportRequest]]:
        """The applicant's other requests, and those the same sender filed for others."""
        async with self._db.session() as session:
            return await RequestRepository(session).household(request)

    async def open_twins(self) -> set[int]:
        """Ids of open requests another open request of the same applicant and need
        shadows (flagged on the dashboard)."""
        async with self._db.session() as session:
            return await RequestRepository(session).open_twins(OPEN)

    async def case_file(
        self, reference: str, *, read_by: str | Staff | None = None, where: str | None = None
    ) -> CaseFile:
        """A request's case file. Given ``where`` (``cli``, ``dashboard``,
        ``staff_group``), the read is a staff member's (``read_by``; None: the command
        line) and goes into the audit log."""
        async with self._db.session() as session:
            request = await self._request(RequestRepository(session), reference)
            events = await CaseFileRepository(session).events(request)
        if where is not None:
            async with self._db.session() as session, session.begin():
                await self._audit(
                    session, read_by, "case_read", request.reference, {"where": where}
                )
        return CaseFile(request, events)

    async def export(self, reference: str, form: str, *, by: str | Staff | None = None) -> str:
        """The whole case file as JSON or CSV text; audited (``by``: who took it out).

        The complete file (national ID and all) goes to managers and admins, and to the
        command line with no ``--by`` (whoever runs it has the database); anyone else
        named gets it as the case page shows it: the national ID, and any ID typed in a
        message or note, masked but their last four digits.
        """
        if form not in ("json", "csv"):
            raise StaffError(f"unknown format {form!r}: json or csv")
        case = await self.case_file(reference)
        masked = False
        async with self._db.session() as session, session.begin():
            if by is not None:
                member = by if isinstance(by, Staff) else await StaffRepository(session).get(by)
                masked = member is None or member.role not in EXPORT_ROLES
            detail = {"format": form, "masked": masked}
            await self._audit(session, by, "export", case.request.reference, detail)
        # Times as the charity reads them: ISO 8601 with the offset of organization.timezone.
        zone = ZoneInfo(self._settings.timezone)
        rows = [_event_row(event, zone) for event in case.events]
        answers = dict(case.request.answers)
        if masked:
            rows = [_masked(row) for row in rows]
            answers = _masked(answers)
            answers["national_id"] = flows.mask_national_id(
                str(case.request.answers.get("national_id", ""))
            )
        if form == "json":
            document = {
                "reference": case.request.reference,
                "status": case.request.status,
                "need": case.request.need,
                "channel": case.request.channel,
                "answers": answers,
                "decision_due_at": case.request.decision_due_at.astimezone(zone).isoformat(
                    timespec="seconds"
                ),
                "linked_existing": case.request.linked_existing,
                "masked": masked,
                "events": rows,
            }
            return json.dumps(document, ensure_ascii=False, indent=2)
        return self._case_csv(case.request, answers, rows, masked, zone)

    def _case_csv(
        self,
        request: SupportRequest,
        answers: dict[str, Any],
        rows: list[dict[str, Any]],
        masked: bool,
        zone: ZoneInfo,
    ) -> str:
        """The case file for a spreadsheet: the applicant's fields (key, label, value),
        a blank line, then the timeline, one event a line, its detail in words."""
        lang = STAFF_LANGUAGE

        def label(key: str) -> str:
            return flows.text(lang, f"staff.export.{key}")

        yes_no = {True: label("yes"), False: label("no")}
        due = request.decision_due_at.astimezone(zone).isoformat(timespec="seconds")
        fields: list[tuple[str, str, object]] = [
            ("reference", label("reference"), request.reference),
            ("status", label("status"), flows.status_label(lang, request.status)),
            ("channel", label("channel"), flows.channel_label(lang, request.channel)),
            ("decision_due_at", label("decision_due"), due),
        ]
        for key in _APPLICANT_FIELDS:
            value = answers.get(key, "")
            if key == "need":
                value = need_label(self._settings, str(request.need), lang)
            elif key == "mobile" and str(value).startswith("+9665"):
                value = "0" + str(value)[4:]  # as people write it, and never a formula
            fields.append((key, flows.text(lang, f"intake.field.{key}"), value))
        fields += [
            ("linked_existing", label("linked_existing"), yes_no[bool(request.linked_existing)]),
            ("masked", label("masked"), yes_no[masked]),
        ]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["field", "label", "value"])
        for field in fields:
            writer.writerow([spreadsheet_cell(cell) for cell in field])
        writer.writerow([])
        writer.writerow(["at", "kind", "actor", "text", "detail"])
        for row in rows:
            cells = [row[key] for key in ("at", "kind", "actor", "text")]
            cells.append(_readable(row["detail"]))
            writer.writerow([spreadsheet_cell(cell) for cell in cells])
        return out.getvalue()

    # --- handoffs ---

    async def open_handoffs(self) -> list[Handoff]:
        async with self._db.session() as session:
            return await HandoffRepository(session).list_open()

    async def owner(self, handoff_id: int) -> str | None:
        """The username of the staff member who took a handoff, if anyone has."""
        async with self._db.session() as session:
            handoff = await HandoffRepository(session).get(handoff_id)
            if handoff is None or handoff.claimed_by is None:
                return None
            staff = await StaffRepository(session).by_id(handoff.claimed_by)
        return staff.username if staff else None

    async def take(self, handoff_id: int, staff: Staff) -> bool:
        """Claim a handoff; False when someone else already has it."""
        async with self._db.session() as session, session.begin():
            handoffs = HandoffRepository(session)
            assert staff.id is not None
            if not await handoffs.claim(handoff_id, staff.id, self._clock()):
                return False
            handoff = await handoffs.get(handoff_id)
            assert handoff is not None
            language = await self._language(session, handoff.identity_id)
            # Part of the live conversation, like staff's words: never held for the night.
            taken = [flows.handoff_taken(language)]
            await self._enqueue(session, handoff.identity_id, taken, kind=MessageKind.STAFF)
            await self._audit(session, staff, "take", f"handoff:{handoff_id}")
            keys = await self._handoff_settled(session, handoff_id)
        self._on_outbox()
        self._on_followups(keys)
        return True

    async def close(self, handoff_id: int, staff: Staff | None) -> Handoff | None:
        """Close a handoff; the beneficiary is offered a rating of it."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            handoff = await HandoffRepository(session).close(
                handoff_id, now, staff_id=staff.id if staff else None
            )
            if handoff is None:
                return None
            conversations = ConversationRepository(session)
            state = await conversations.load(handoff.identity_id)
            if state.flow == "handoff":
                # A rating is of what a person said: none is offered after a
                # conversation in which nobody wrote.
                wrote = await AuditRepository(session).exists(
                    action="reply", target=f"handoff:{handoff_id}"
                )
                state, replies = flows.close_handoff(state, staff_wrote=wrote)
                await conversations.save(handoff.identity_id, state, now)
                await self._enqueue(
                    session, handoff.identity_id, list(replies), kind=MessageKind.STAFF
                )
            if staff is not None:
                await self._audit(session, staff, "close", f"handoff:{handoff_id}")
            keys = await self._handoff_settled(session, handoff_id)
        self._on_outbox()
        self._on_followups(keys)
        return handoff

    async def reply(self, handoff_id: int, staff: Staff, text: str) -> Handoff:
        """A staff member's words to the beneficiary of an open handoff."""
        text = text.strip()
        if not text:
            raise StaffError("an empty reply was not sent")
        async with self._db.session() as session, session.begin():
            handoffs = HandoffRepository(session)
            handoff = await handoffs.get(handoff_id)
            if handoff is None or handoff.status != "open":
                raise StaffError("this conversation is closed")
            keys = await self._reply_in(session, handoff, staff, text)
        self._on_outbox()
        self._on_followups(keys)
        return handoff

    async def write_to(self, reference: str, staff: Staff, text: str) -> Handoff:
        """Staff write to a request's applicant from its case file.

        The words go through the applicant's open handoff, or through one opened for
        it here and taken by the writer, so that their answer comes back to staff
        (and ``0`` takes them back to the menu) exactly as in any handoff.
        """
        text = text.strip()
        if not text:
            raise StaffError("an empty reply was not sent")
        now = self._clock()
        async with self._db.session() as session, session.begin():
            requests = RequestRepository(session)
            request = await self._request(requests, reference)
            identities = await requests.applicant_identities(request)
            if not identities or identities[0].id is None:
                raise StaffError(f"nobody to write to about {request.reference}")
            identity_id = identities[0].id  # the channel the request was filed on
            conversations = ConversationRepository(session)
            # Loaded first: on PostgreSQL the row lock keeps the engine off meanwhile.
            state = sound(await conversations.load(identity_id))
            handoffs = HandoffRepository(session)
            handoff = await handoffs.open(
                identity_id, OpenHandoff(OUTREACH), now, request_id=request.id
            )
            if state.flow != HANDOFF_FLOW:
                # Staff are already with them: no "we will answer soon" to their reply.
                waiting = goto(state, HANDOFF_FLOW, HANDOFF_WAITING, handoff_acked=True)
                await conversations.save(identity_id, waiting, now)
            keys = await self._reply_in(session, handoff, staff, text, request_id=request.id)
        log.info("staff wrote to the applicant of %s", request.reference)
        self._on_outbox()
        self._on_followups(keys)
        return handoff

    # --- helpers ---

    async def _reply_in(
        self,
        session: AsyncSession,
        handoff: Handoff,
        staff: Staff,
        text: str,
        *,
        request_id: int | None = None,
    ) -> list[str]:
        """Staff's words into an open handoff, which they take if nobody has; returns the
        follow-ups whose jobs changed (the reminder that nobody took it)."""
        assert handoff.id is not None
        keys = []
        if handoff.claimed_by is None and staff.id is not None:
            await HandoffRepository(session).claim(handoff.id, staff.id, self._clock())
            keys = await self._handoff_settled(session, handoff.id)
        language = await self._language(session, handoff.identity_id)
        message = flows.staff_reply(language, text, staff.role)
        await self._enqueue(
            session, handoff.identity_id, [message], kind=MessageKind.STAFF, request_id=request_id
        )
        await self._audit(
            session, staff, "reply", f"handoff:{handoff.id}", {"characters": len(text)}
        )
        return keys

    async def _handoff_settled(self, session: AsyncSession, handoff_id: int) -> list[str]:
        """A handoff was taken or closed: staff need no reminder about it any more."""
        if self._followups is None:
            return []
        return await self._followups.handoff_settled(session, handoff_id, self._clock())

    async def _audit(
        self,
        session: AsyncSession,
        by: str | Staff | None,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """The audit log's entry for an action, in the action's own transaction.

        ``by`` is the member, or the username the command line or a caller gave
        (None: the command line with no ``--by``).
        """
        staff = by if isinstance(by, Staff) else None
        if isinstance(by, str):
            staff = await StaffRepository(session).get(by)
        await AuditRepository(session).add(
            staff,
            action,
            target,
            detail,
            now=self._clock(),
            username=by if isinstance(by, str) else None,
        )

    async def erase(
        self,
        *,
        reference: str | None = None,
        national_id: str | None = None,
        by: str | None = None,
    ) -> Erased:
        """Erase the applicant of ``reference``, or the one with ``national_id``: their
        personal data goes, anonymous statistics stay (``storage.privacy``). Audited by
        reference or applicant number, never by the person's data. The caller deletes
        the returned media files."""
        async with self._db.session() as session, session.begin():
            if reference is not None:
                request = await self._request(RequestRepository(session), reference)
                beneficiary_id, target = request.beneficiary_id, request.reference
            else:
                checked = check_national_id(national_id or "")
                if not isinstance(checked, str):
                    raise StaffError("not a valid national ID or iqama number")
                found = await find_beneficiary(session, checked)
                if found is None or found.id is None:
                    raise StaffError("no applicant with that national ID")
                beneficiary_id, target = found.id, f"beneficiary:{found.id}"
            erased = await erase_beneficiary(session, beneficiary_id)
            detail = {
                "beneficiary_id": beneficiary_id,
                "requests": erased.requests,
                "messages": erased.messages,
                "files": len(erased.media),
            }
            await self._audit(session, by, "erase", target, detail)
        log.info("applicant %s erased (%d requests)", beneficiary_id, erased.requests)
        return erased

    async def purge_expired(
        self, retention: timedelta, remove_files: Callable[[Sequence[str]], int]
    ) -> int:
        """Erase the applicants whose requests were all closed more than ``retention``
        ago (``privacy.retention``); each erasure audited, the count logged, no
        personal data. Returns how many were erased."""
        async with self._db.session() as session:
            due = await past_retention(
                session, before=self._clock() - retention, open_statuses=OPEN
            )
        files = 0
        for beneficiary_id in due:
            async with self._db.session() as session, session.begin():
                erased = await erase_beneficiary(session, beneficiary_id)
                detail = {"requests": erased.requests, "messages": erased.messages}
                target = f"beneficiary:{beneficiary_id}"
                await self._audit(session, None, "retention_erase", target, detail)
            files += remove_files(erased.media)
        if due:
            log.info("retention: %d applicants' personal data purged, %d files", len(due), files)
        return len(due)

    async def _request(self, requests: RequestRepository, reference: str) -> SupportRequest:
        request = await requests.get_by_reference(reference)
        if request is None:
            raise StaffError(f"no request {reference.strip()!r}")
        return request

    async def _tell_applicant(
        self,
        session: AsyncSession,
        request: SupportRequest,
        status: str,
        note: str | None,
        now: datetime,
    ) -> None:
        identities: Sequence[ChannelIdentity] = await RequestRepository(
            session
        ).applicant_identities(request)
        if not identities or identities[0].id is None or request.reference is None:
            return
        identity_id = identities[0].id  # the channel the request was filed on
        conversations = ConversationRepository(session)
        state = await conversations.load(identity_id)
        notice = flows.status_notice(
            state.language,
            request.reference,
            status,
            note,
            self._settings,
            media=capabilities_of(identities[0].channel).media,
        )
        # Outside WhatsApp's 24-hour window (the committee takes weeks) the notice goes
        # as the approved "status_update" template: {{1}} the reference, {{2}} the status.
        template = TemplateRef(
            TemplateKind.STATUS_UPDATE,
            {"1": request.reference, "2": flows.status_label(state.language, status)},
        )
        notice = tuple(replace(message, template=template) for message in notice)
        await self._enqueue(session, identity_id, list(notice), request_id=request.id)
        if status == NEEDS_INFO:
            # Their next message answers the question (in a handoff, the question is
            # only remembered: they stay with the staff member).
            await conversations.save(
                identity_id, flows.ask_needs_info(state, request.reference, note), now
            )

    async def _language(self, session: AsyncSession, identity_id: int) -> Language:
        return (await ConversationRepository(session).load(identity_id)).language

    async def _enqueue(
        self,
        session: AsyncSession,
        identity_id: int,
        messages: list[OutboundMessage],
        *,
        kind: MessageKind = MessageKind.PROACTIVE,
        request_id: int | None = None,
    ) -> None:
        await MessageRepository(session).enqueue_to(
            identity_id, messages, self._clock(), kind=kind, request_id=request_id
        )


# The applicant's answers, in the order the intake asks them (documents are events).
_APPLICANT_FIELDS = ("name", "national_id", "mobile", "city", "need", "description")
# In an event's detail, ids that mean something to the database only.
_INTERNAL = frozenset({"id", "platform_message_id", "request_id"})


def spreadsheet_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with ``= + - @``, a tab or a
    carriage return gets a leading quote, as OWASP advises ("CSV injection"), so that
    ``=HYPERLINK(...)`` typed by a beneficiary is never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _masked(value: Any) -> Any:
    """``value`` (JSON: strings, lists, dicts) with every national ID in its text masked."""
    if isinstance(value, str):
        return mask_ids_in(value)
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def _event_row(event: CaseEvent, zone: ZoneInfo) -> dict[str, Any]:
    row = asdict(event)
    row["at"] = event.at.astimezone(zone).isoformat(timespec="seconds")
    return row


def _readable(detail: Any) -> str:
    """An event's detail for a spreadsheet: "to: accepted; note: …", not JSON; the
    database's own ids and empty values left out, attachments by name."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            if key in _INTERNAL or value in (None, "", [], {}):
                continue
            if key == "kind" and value == "reply":
                continue  # the usual kind of message: only the others are worth saying
            if key == "media" and isinstance(value, list):
                value = [
                    item.get("filename") or item.get("content_type") or "?"
                    if isinstance(item, dict)
                    else item
                    for item in value
                ]
            parts.append(f"{key}: {_readable(value)}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return ", ".join(_readable(item) for item in detail)
    return "" if detail is None else str(detail)
