"""What the dashboard's pages show: rows and cards built from storage, in the reader's language.

No web framework here: plain data for the templates and the CSV exports. National
IDs are masked (last four digits) in everything shown, whatever digits they were
typed in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flows
from bot.desk import CaseFile, spreadsheet_cell
from flows.catalogue import CATALOGUE
from flows.lifecycle import UNDECIDED
from flows.staff_texts import mask_ids
from flows.steps import need_label
from flows.text import localize_digits
from flows.types import FlowSettings, Language
from storage.db import Database
from storage.models import (
    AuditEntry,
    Beneficiary,
    Handoff,
    Staff,
    SupportRequest,
)
from storage.repositories import (
    CaseEvent,
    IdentityRepository,
    MessageRepository,
    RatingRow,
    RequestRepository,
    StaffRepository,
)

MEDIA_URL = "/staff/media/"
CONVERSATION_LENGTH = 30  # the last messages shown on a handoff's card


def when(moment: datetime | None, language: Language, zone: str) -> str:
    """A moment as staff read it: local date and time, in the reader's digits."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    return localize_digits(local, language)


def day(moment: datetime, language: Language, zone: str) -> str:
    return localize_digits(moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d"), language)


def media_link(url: str) -> str | None:
    """Our URL for an attachment kept in the media folder; None for a platform's URL."""
    name = url.removeprefix("media/")
    if url.startswith("media/") and name and "/" not in name and not name.startswith("."):
        return MEDIA_URL + name
    return None


# --- the requests list ---


@dataclass(frozen=True, slots=True)
class RequestRow:
    reference: str
    name: str
    status: str
    status_label: str
    need: str
    channel: str
    filed: str
    due: str
    overdue: bool
    linked: bool
    twin: bool = False  # another open request of the same applicant for the same need


def overdue(request: SupportRequest, now: datetime) -> bool:
    return request.status in UNDECIDED and request.decision_due_at < now


def request_rows(
    requests: Iterable[SupportRequest],
    language: Language,
    settings: FlowSettings,
    now: datetime,
    twins: Collection[int] = (),
) -> list[RequestRow]:
    zone = settings.timezone
    return [
        RequestRow(
            reference=request.reference or "",
            name=str(request.answers.get("name", "")),
            status=request.status,
            status_label=flows.status_label(language, request.status),
            need=need_label(settings, request.need, language),
            channel=flows.channel_label(language, request.channel),
            filed=day(request.created_at, language, zone),
            due=day(request.decision_due_at, language, zone),
            overdue=overdue(request, now),
            linked=request.linked_existing,
            twin=request.id in twins,
        )
        for request in requests
    ]


# --- the case file ---


@dataclass(frozen=True, slots=True)
class EventView:
    when: str
    kind: str
    label: str
    actor: str | None
    text: str
    note: str | None = None
    links: tuple[tuple[str, str], ...] = ()  # (shown, url) of kept attachments
    others: tuple[str, ...] = ()  # attachments not kept here: named only
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CaseView:
    reference: str
    status: str
    status_label: str
    final: bool
    allowed: tuple[tuple[str, str], ...]  # (status, label) it may move to
    # (label, value, left to right) about the applicant and the request: numbers such
    # as ******0008 and +9665… read left to right even on an Arabic page.
    facts: tuple[tuple[str, str, bool], ...]
    overdue: bool
    linked: bool
    events: tuple[EventView, ...]
    twin: bool = False
    # (reference, need, status) of the applicant's other requests, and of the requests
    # the same phone or chat filed for other applicants (their names not shown here).
    same_applicant: tuple[tuple[str, str, str], ...] = ()
    same_sender: tuple[tuple[str, str, str], ...] = ()


def case_view(
    case: CaseFile,
    language: Language,
    settings: FlowSettings,
    now: datetime,
    *,
    twin: bool = False,
    household: tuple[Sequence[SupportRequest], Sequence[SupportRequest]] = ((), ()),
) -> CaseView:
    request = case.request
    answers = request.answers
    zone = settings.timezone

    def t(key: str) -> str:
        return flows.text(language, key)

    national_id = flows.mask_national_id(str(answers.get("national_id", "")))
    facts = (
        (t("dash.field.name"), str(answers.get("name", "")), False),
        (t("dash.field.national_id"), national_id, True),
        (t("dash.field.mobile"), str(answers.get("mobile", "")), True),
        (t("dash.field.city"), str(answers.get("city", "")), False),
        (t("dash.field.need"), need_label(settings, request.need, language), False),
        (t("dash.field.channel"), flows.channel_label(language, request.channel), False),
        (t("dash.field.filed"), when(request.created_at, language, zone), False),
        (t("dash.field.due"), day(request.decision_due_at, language, zone), False),
        (t("dash.field.description"), mask_ids(str(answers.get("description", ""))), False),
    )
    allowed = tuple(
        (status, flows.status_label(language, status))
        for status in flows.ALLOWED.get(request.status, ())
    )
    return CaseView(
        reference=request.reference or "",
        status=request.status,
        status_label=flows.status_label(language, request.status),
        final=not allowed,
        allowed=allowed,
        facts=facts,
        overdue=overdue(request, now),
        linked=request.linked_existing,
        events=tuple(_event(event, language, zone) for event in case.events),
        twin=twin,
        same_applicant=tuple(_link(r, language, settings) for r in household[0]),
        same_sender=tuple(_link(r, language, settings) for r in household[1]),
    )


def _link(
    request: SupportRequest, language: Language, settings: FlowSettings
) -> tuple[str, str, str]:
    return (
        request.reference or "",
        need_label(settings, request.need, language),
        flows.status_label(language, request.status),
    )


def _event(event: CaseEvent, language: Language, zone: str) -> EventView:
    detail = event.detail
    label = flows.text(language, f"dash.event.{event.kind}")
    text = mask_ids(event.text)
    note: str | None = None
    links: list[tuple[str, str]] = []
    others: list[str] = []
    error: str | None = None
    if event.kind in ("message_in", "message_out"):
        choice = detail.get("choice")
        if isinstance(choice, str) and choice:
            text = mask_ids(choice)  # a button pressed: its label, not its bare number
        for item in detail.get("media") or []:
            url = str(item.get("url", "")) if isinstance(item, dict) else ""
            if not url:
                continue
            shown = str(item.get("filename") or flows.text(language, "dash.case.attachment"))
            link = media_link(url)
            if link:
                links.append((shown, link))
            else:
                others.append(shown)
        if detail.get("status") == "failed":
            error = str(detail.get("error") or "")
    elif event.kind == "document":
        url = str(detail.get("url", ""))
        shown = str(detail.get("filename") or flows.text(language, "dash.case.attachment"))
        link = media_link(url)
        text = ""
        if link:
            links.append((shown, link))
        else:
            others.append(shown)
    elif event.kind == "status_change":
        before, after = detail.get("from"), str(detail.get("to", ""))
        arrow = " ← " if language == "ar" else " → "
        text = flows.status_label(language, after)
        if isinstance(before, str):
            text = flows.status_label(language, before) + arrow + text
        note = mask_ids(str(detail["note"])) if detail.get("note") else None
    elif event.kind.startswith("handoff_"):
        text = flows.reason_label(language, event.text)
    elif event.kind == "declaration":
        text = ""
    elif event.kind == "consent":
        text = flows.text(language, "dash.case.notice_version", version=event.text)
    return EventView(
        when=when(event.at, language, zone),
        kind=event.kind,
        label=label,
        actor=event.actor,
        text=text,
        note=note,
        links=tuple(links),
        others=tuple(others),
        error=error,
    )


# --- the handoff inbox ---


@dataclass(frozen=True, slots=True)
class Line:
    """One message of a conversation on a handoff's card."""

    direction: str  # in | out
    text: str
    when: str


@dataclass(frozen=True, slots=True)
class HandoffCard:
    id: int
    urgent: bool
    reason: str
    channel: str
    language: str
    opened: str
    owner: str | None
    mine: bool
    name: str | None
    requests: tuple[tuple[str, str], ...]  # (reference, status label)
    lines: tuple[Line, ...] = field(default_factory=tuple)


async def handoff_cards(
    database: Database,
    handoffs: Sequence[Handoff],
    language: Language,
    settings: FlowSettings,
    viewer: Staff,
) -> list[HandoffCard]:
    zone = settings.timezone
    cards: list[HandoffCard] = []
    async with database.session() as session:
        staff = StaffRepository(session)
        for handoff in handoffs:
            assert handoff.id is not None
            identity = await IdentityRepository(session).get(handoff.identity_id)
            requests = await RequestRepository(session).for_identity(handoff.identity_id)
            history = await MessageRepository(session).history(
                handoff.identity_id, CONVERSATION_LENGTH
            )
            owner = await staff.by_id(handoff.claimed_by) if handoff.claimed_by else None
            name: str | None = None
            if identity is not None and identity.beneficiary_id is not None:
                person = await session.get(Beneficiary, identity.beneficiary_id)
                name = person.full_name if person else None
            cards.append(
                HandoffCard(
                    id=handoff.id,
                    urgent=handoff.urgent,
                    reason=flows.reason_label(language, handoff.reason),
                    channel=flows.channel_label(language, identity.channel if identity else ""),
                    language=flows.language_label(language, identity.language if identity else ""),
                    opened=when(handoff.opened_at, language, zone),
                    owner=owner.username if owner else None,
                    mine=owner is not None and owner.id == viewer.id,
                    name=name,
                    requests=tuple(
                        (r.reference or "", flows.status_label(language, r.status))
                        for r in requests[:5]
                    ),
                    lines=tuple(
                        Line(
                            message.direction,
                            live_text(message.text, len(message.media)),
                            when(message.created_at, language, zone),
                        )
                        for message in history
                    ),
                )
            )
    return cards


def live_text(text: str, attachments: int) -> str:
    """A message as a handoff card shows it: IDs masked, attachments counted."""
    shown = mask_ids(text)
    if attachments:
        shown = (shown + "\n" if shown else "") + f"📎 {attachments}"
    return shown


# --- staff administration ---


@dataclass(frozen=True, slots=True)
class AuditLine:
    when: str
    who: str
    action: str
    target: str


def audit_lines(entries: Iterable[AuditEntry], language: Language, zone: str) -> list[AuditLine]:
    lines = []
    for entry in entries:
        key = f"dash.audit.action.{entry.action}"
        action = flows.text(language, key) if key in CATALOGUE else entry.action
        lines.append(
            AuditLine(
                when(entry.created_at, language, zone),
                entry.username or "—",
                action,
                entry.target or "",
            )
        )
    return lines


# --- CSV exports ---


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with a byte-order mark, so that spreadsheets read the Arabic as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return out.getvalue()


def requests_csv(requests: Iterable[SupportRequest], settings: FlowSettings, now: datetime) -> str:
    header = (
        "reference",
        "status",
        "need",
        "channel",
        "filed_at",
        "decision_due_at",
        "overdue",
        "name",
        "national_id",
        "city",
        "linked_existing",
    )
    return csv_text(
        header,
        (
            (
                r.reference,
                r.status,
                r.need,
                r.channel,
                r.created_at.isoformat(timespec="seconds"),
                r.decision_due_at.isoformat(timespec="seconds"),
                "yes" if overdue(r, now) else "no",
                r.answers.get("name", ""),
                flows.mask_national_id(str(r.answers.get("national_id", ""))),
                r.answers.get("city", ""),
                "yes" if r.linked_existing else "no",
            )
            for r in requests
        ),
    )


def ratings_csv(rows: Iterable[RatingRow]) -> str:
    header = ("rated_at", "score", "channel", "context", "need", "reference", "comment")
    return csv_text(
        header,
        (
            (
                row.at.isoformat(timespec="seconds"),
                row.score,
                row.channel,
                row.context,
                row.need or "",
                row.reference or "",
                mask_ids(row.comment or ""),
            )
            for row in rows
        ),
    )
