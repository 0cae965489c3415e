"""A support request's life: its statuses, the moves staff may make, and why a move is refused.

```mermaid
stateDiagram-v2
    [*] --> submitted
    submitted --> under_review
    submitted --> needs_info
    submitted --> rejected
    under_review --> needs_info
    under_review --> accepted
    under_review --> rejected
    needs_info --> under_review
    needs_info --> accepted
    needs_info --> rejected
    accepted --> delivered
    rejected --> under_review: appeal
    submitted --> closed
    under_review --> closed
    needs_info --> closed
    accepted --> closed
    rejected --> closed
    delivered --> closed
    closed --> [*]
```

The reasons are English sentences for staff and the command line, never for beneficiaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Persisted names: lowercase snake_case, in the order a request usually lives them.
STATUSES: Final[tuple[str, ...]] = (
    "submitted",
    "under_review",
    "needs_info",
    "accepted",
    "rejected",
    "delivered",
    "closed",
)

ALLOWED: Final[Mapping[str, tuple[str, ...]]] = {
    "submitted": ("under_review", "needs_info", "rejected", "closed"),
    "under_review": ("needs_info", "accepted", "rejected", "closed"),
    "needs_info": ("under_review", "accepted", "rejected", "closed"),
    "accepted": ("delivered", "closed"),
    "rejected": ("under_review", "closed"),  # an appeal goes back to the committee
    "delivered": ("closed",),
    "closed": (),
}

SUBMITTED: Final = "submitted"
DELIVERED: Final = "delivered"
NEEDS_INFO: Final = "needs_info"
UNDER_REVIEW: Final = "under_review"
REJECTED: Final = "rejected"
# Still waiting for the committee's answer, so it can be overdue.
UNDECIDED: Final = frozenset({"submitted", "under_review", "needs_info"})
# Still being handled: check-ins go on.
OPEN: Final = frozenset({"submitted", "under_review", "needs_info", "accepted"})
# The service was given: it can be rated.
RATEABLE: Final = frozenset({"delivered", "closed"})

# Statuses whose move needs a note: the question the beneficiary is asked.
NOTE_REQUIRED: Final = frozenset({"needs_info"})


def canonical_status(raw: object) -> str | None:
    """A status as staff may type it ("Under-Review", " accepted ") in its stored form.

    None when it names no status.
    """
    if not isinstance(raw, str):
        return None
    name = "_".join(raw.strip().lower().replace("-", " ").replace("_", " ").split())
    return name if name in ALLOWED else None


def transition_problem(current: str, target: str, note: str | None = None) -> str | None:
    """Why a request in ``current`` may not move to ``target``, or None when it may.

    Args:
        current: the request's stored status.
        target: the status staff asked for (see ``canonical_status`` for typed input).
        note: the note given with the move; ``needs_info`` needs one (the question).
    """
    if not isinstance(current, str) or current not in ALLOWED:
        return f"the request has an unknown status {current!r}: expected one of {_listed()}"
    if not isinstance(target, str) or target not in ALLOWED:
        return f"unknown status {target!r}: one of {_listed()}"
    if target == current:
        return f"the request is already {current}"
    allowed = ALLOWED[current]
    if target not in allowed:
        if not allowed:
            return f"cannot go from {current} to {target}: a {current} request cannot change"
        return (
            f"cannot go from {current} to {target}: allowed next statuses are {', '.join(allowed)}"
        )
    if target in NOTE_REQUIRED and not (isinstance(note, str) and note.strip()):
        return f"{target} needs a question for the beneficiary (--note)"
    return None


def _listed() -> str:
    return ", ".join(STATUSES)
