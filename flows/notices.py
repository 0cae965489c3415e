"""Status notices: what a beneficiary is told, without asking, when their request changes
or while it waits (the scheduled check-in)."""

from __future__ import annotations

from flows.catalogue import CATALOGUE, text
from flows.lifecycle import NEEDS_INFO, REJECTED
from flows.status import status_label
from flows.steps import known_language, staff_keyword
from flows.types import FlowSettings, Language, OutboundMessage
from flows.validation import takes_documents

# The note is the point of these notices: the question asked, the reason given.
_QUESTION_STATUS = NEEDS_INFO
_REASON_STATUS = REJECTED


def status_notice(
    language: Language,
    reference: str,
    status: str,
    note: str | None,
    settings: FlowSettings | None = None,
    media: frozenset[str] = frozenset({"image", "document"}),
) -> tuple[OutboundMessage, ...]:
    """One short message telling the beneficiary that ``reference`` is now ``status``.

    Args:
        note: staff's note with the change: the question for needs_info, the reason for
            rejected, else shown as "Note: …" when given.
        settings: for the word that asks for a staff member (rejected).
        media: what the beneficiary's channel carries: files are asked for only where
            it can bring them.
    """
    lang = known_language(language)
    reference = reference if isinstance(reference, str) else ""
    status = status if isinstance(status, str) else ""
    said = note.strip() if isinstance(note, str) and note.strip() else None
    key = f"notice.{status}"
    if status and key in CATALOGUE:
        lines = [text(lang, key, reference=reference)]
    else:  # a status this version does not know: say it as stored rather than nothing
        lines = [text(lang, "notice.other", reference=reference, status=status_label(lang, status))]
    if status == _QUESTION_STATUS:
        if said:
            lines.append(text(lang, "notice.question", question=said))
        answer = "notice.answer_here" if takes_documents(media) else "notice.answer_here_text"
        lines.append(text(lang, answer))
    elif status == _REASON_STATUS:
        if said:
            lines.append(text(lang, "notice.reason", reason=said))
        keyword = staff_keyword(settings or FlowSettings(), lang)
        lines.append(text(lang, "notice.ask_staff", keyword=keyword))
    elif said:
        lines.append(text(lang, "notice.note", note=said))
    return (OutboundMessage("\n".join(lines), lang),)


def checkin_notice(language: Language, reference: str, status: str) -> OutboundMessage:
    """The scheduled check-in while a request is open: still handled, and its status now."""
    lang = known_language(language)
    return OutboundMessage(
        text(lang, "notice.checkin", reference=reference, status=status_label(lang, status)), lang
    )
