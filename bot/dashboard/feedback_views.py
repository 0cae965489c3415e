"""Feedback as the dashboard shows it: kind and status labels, and the list of feedback on
a request's case page (shared by the feedback and case page groups)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import flows
from bot.feedback import is_overdue, kinds_for
from flows.types import Language
from storage.db import Database
from storage.feedback import KINDS, STATUSES, FeedbackRepository


def label(lang: Language, group: str, value: str) -> str:
    """A kind's (``group`` "kind") or a status's name for staff; unknown ones as stored."""
    known = KINDS if group == "kind" else STATUSES
    return flows.text(lang, f"staff.feedback.{group}.{value}") if value in known else value


async def on_case_page(
    database: Database, now: datetime, request_id: int, role: str, lang: Language
) -> list[dict[str, Any]]:
    """The feedback that names a request, for its case page: complaints to managers and
    admins only (one may be about the agent reading the case)."""
    async with database.session() as session:
        linked = await FeedbackRepository(session).for_request(request_id)
    allowed = kinds_for(role)
    return [
        {
            "reference": f.reference,
            "kind": label(lang, "kind", f.kind),
            "status": label(lang, "status", f.status),
            "overdue": is_overdue(f, now),
        }
        for f in linked
        if f.kind in allowed
    ]
