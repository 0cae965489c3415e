"""Repositories: the reads and writes the engine and staff tools need, one class per concern.

Each repository wraps the session of one unit of work. The engine runs one message
in one transaction and commits it itself; repositories only flush (to learn ids),
never commit. Every time is passed in (``now``) rather than read from the clock, so
tests and the scheduler decide what "now" is.

One module per aggregate; every public name is here too, so
``from storage.repositories import X`` works whichever module ``X`` lives in.
"""

from __future__ import annotations

from storage.repositories.conversations import ConversationRepository, IdentityRepository
from storage.repositories.followups import FollowUpRepository
from storage.repositories.handoffs import HandoffRepository
from storage.repositories.messages import (
    MediaRepository,
    MessageRepository,
    OutboxItem,
    Queued,
    SentMark,
)
from storage.repositories.requests import (
    CASE_EVENT_KINDS,
    REQUIRED_ANSWERS,
    CaseEvent,
    CaseFileRepository,
    RatingRepository,
    RatingRow,
    RequestRepository,
    SavedRating,
    reference_for,
)
from storage.repositories.staff import (
    AuditRepository,
    LoginCounterRepository,
    SessionRepository,
    StaffRepository,
)

__all__ = [
    "CASE_EVENT_KINDS",
    "REQUIRED_ANSWERS",
    "AuditRepository",
    "CaseEvent",
    "CaseFileRepository",
    "ConversationRepository",
    "FollowUpRepository",
    "HandoffRepository",
    "IdentityRepository",
    "LoginCounterRepository",
    "MediaRepository",
    "MessageRepository",
    "OutboxItem",
    "Queued",
    "RatingRepository",
    "RatingRow",
    "RequestRepository",
    "SavedRating",
    "SentMark",
    "SessionRepository",
    "StaffRepository",
    "reference_for",
]
