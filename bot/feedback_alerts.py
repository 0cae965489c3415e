"""Feedback as staff read it: the staff group's announcement and overdue alert, and the
one-line summary the command line and the group show.

Complaints are for managers: the group (which agents read too) is told that one came
and when it is due, never its words; those are read on the dashboard or the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flows import text
from flows.dates import format_date
from flows.staff_texts import STAFF_LANGUAGE, channel_label, mask_for_group
from storage.models import Feedback, FeedbackEvent

# The words of a suggestion or thanks shown in the group at most.
GROUP_CHARS = 500


@dataclass(frozen=True, slots=True)
class FeedbackFacts:
    """What an alert says about one feedback (read inside the follow-up's transaction)."""

    reference: str
    kind: str
    status: str
    channel: str
    text: str
    due_at: datetime | None
    named_staff: str | None
    may_contact: bool | None


def facts(feedback: Feedback) -> FeedbackFacts:
    return FeedbackFacts(
        reference=feedback.reference or "",
        kind=feedback.kind,
        status=feedback.status,
        channel=feedback.channel,
        text=feedback.text,
        due_at=feedback.due_at,
        named_staff=feedback.named_staff,
        may_contact=feedback.may_contact,
    )


def kind_label(kind: str) -> str:
    key = f"staff.feedback.kind.{kind}"
    return text(STAFF_LANGUAGE, key) if kind in ("suggestion", "complaint", "thanks") else kind


def status_label(status: str) -> str:
    known = ("received", "in_progress", "answered", "closed")
    return text(STAFF_LANGUAGE, f"staff.feedback.status.{status}") if status in known else status


def announcement(about: FeedbackFacts, timezone: str) -> str:
    """The staff group's message about new feedback; a reply to it answers it."""
    channel = channel_label(STAFF_LANGUAGE, about.channel)
    if about.kind == "complaint":
        return text(
            STAFF_LANGUAGE,
            "staff.feedback.new_complaint",
            reference=about.reference,
            channel=channel,
            due=_due(about, timezone),
        )
    words = mask_for_group(about.text)[:GROUP_CHARS]
    if about.kind == "thanks":
        return text(
            STAFF_LANGUAGE,
            "staff.feedback.thanks" if about.named_staff else "staff.feedback.thanks_all",
            reference=about.reference,
            username=about.named_staff or "",
            text=words,
        )
    return text(
        STAFF_LANGUAGE,
        "staff.feedback.new",
        reference=about.reference,
        kind=kind_label(about.kind),
        channel=channel,
        due=_due(about, timezone),
        text=words,
    )


def overdue(about: FeedbackFacts, timezone: str) -> str:
    """The alert to managers that feedback is past its deadline unanswered."""
    return text(
        STAFF_LANGUAGE,
        "staff.feedback.overdue",
        reference=about.reference,
        kind=kind_label(about.kind),
        due=_due(about, timezone),
        status=status_label(about.status),
    )


def replied(about: FeedbackFacts, reply: str) -> str:
    """The staff group told that the beneficiary replied to the answer (a complaint's
    reply without its words)."""
    if about.kind == "complaint":
        return text(STAFF_LANGUAGE, "staff.feedback.replied_complaint", reference=about.reference)
    words = mask_for_group(reply)[:GROUP_CHARS]
    return text(STAFF_LANGUAGE, "staff.feedback.replied", reference=about.reference, text=words)


def in_group(
    feedback: Feedback,
    events: Sequence[FeedbackEvent],
    request_reference: str | None,
    *,
    overdue: bool,
    timezone: str,
) -> str:
    """``/feedback REF`` in the staff group: its facts, its words (not a complaint's: agents
    read the group), and the last steps of its timeline."""
    about = facts(feedback)
    head = [
        f"{about.reference} · {kind_label(about.kind)} · {status_label(about.status)}"
        + (" ⏰" if overdue else ""),
        text(STAFF_LANGUAGE, "staff.feedback.due", due=_due(about, timezone)),
    ]
    if request_reference:
        head.append(request_reference)
    if about.kind == "complaint":
        head.append(text(STAFF_LANGUAGE, "staff.feedback.complaint_hidden"))
        return "\n".join(head)
    head.append(mask_for_group(about.text)[:GROUP_CHARS])
    for event in events[-5:]:
        by = f" ({event.by})" if event.by else ""
        words = f": {mask_for_group(event.text)[:200]}" if event.text else ""
        head.append(f"{event.created_at:%Y-%m-%d %H:%M} {event.kind}{by}{words}")
    return "\n".join(head)


def refusal(forbidden: bool, reason: str) -> str:
    """A staff group action on feedback that was refused, and why."""
    if forbidden:
        return text(STAFF_LANGUAGE, "staff.feedback.forbidden")
    return text(STAFF_LANGUAGE, "staff.feedback.refused", reason=reason)


def line(about: FeedbackFacts, *, overdue: bool) -> str:
    """One line of a list: reference, kind, status, due date, the start of the text."""
    mark = " ⏰" if overdue else ""
    due = about.due_at.date().isoformat() if about.due_at else "-"
    words = " ".join(about.text.split())[:60]
    return f"{about.reference}  {about.kind:<10} {about.status:<11} {due}{mark}  {words}"


def _due(about: FeedbackFacts, timezone: str) -> str:
    if about.due_at is None:
        return "-"
    return format_date(about.due_at, STAFF_LANGUAGE, timezone)
