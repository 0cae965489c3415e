"""Channel-agnostic conversation flows, their message catalogue and neutral types.

The engine calls ``respond`` once per inbound message; text channels draw replies with
``as_plain_text``; ``text`` looks a sentence up in the catalogue. Staff actions reach the
beneficiary through ``status_notice``, ``ask_needs_info``, ``staff_reply``,
``handoff_taken`` and ``close_handoff``; ``transition_problem`` guards status changes;
``handoff_notification`` and the other label helpers write for staff.
"""

from flows.catalogue import text
from flows.handoff import close_handoff, handoff_taken, staff_author, staff_reply
from flows.lifecycle import ALLOWED, STATUSES, canonical_status, transition_problem
from flows.needs_info import ask_needs_info
from flows.notices import status_notice
from flows.render import as_plain_text
from flows.router import (
    needs_applicants,
    needs_appointments,
    needs_knowledge,
    needs_requests,
    respond,
    takes_media,
)
from flows.staff_texts import (
    channel_label,
    handoff_notification,
    language_label,
    mask_ids,
    reason_label,
    request_line,
)
from flows.status import references_asked, status_label
from flows.text import fold_arabic, normalize_digits
from flows.validation import mask_national_id

__all__ = [
    "ALLOWED",
    "STATUSES",
    "as_plain_text",
    "ask_needs_info",
    "canonical_status",
    "channel_label",
    "close_handoff",
    "fold_arabic",
    "handoff_notification",
    "handoff_taken",
    "language_label",
    "mask_ids",
    "mask_national_id",
    "needs_applicants",
    "needs_appointments",
    "needs_knowledge",
    "needs_requests",
    "normalize_digits",
    "reason_label",
    "references_asked",
    "request_line",
    "respond",
    "staff_author",
    "staff_reply",
    "status_label",
    "status_notice",
    "takes_media",
    "text",
    "transition_problem",
]
