"""The feedback report beside the ratings: counts by month, kind, need and channel, how
long an answer took (the median), and how many are overdue. Pure functions over
``FeedbackReportRow``s, and the CSV of them."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.dashboard.views import csv_text
from storage.feedback import FeedbackReportRow, past_due


@dataclass(frozen=True, slots=True)
class FeedbackGroup:
    """Feedback sharing one key (a month, a kind, a need, a channel)."""

    key: str
    label: str
    total: int
    answered: int
    overdue: int
    median_hours: float | None  # from received to the first answer; None: none answered


def hours_to_answer(row: FeedbackReportRow) -> float | None:
    if row.answered_at is None:
        return None
    return max((row.answered_at - row.created_at).total_seconds(), 0.0) / 3600


def is_overdue(row: FeedbackReportRow, now: datetime) -> bool:
    return past_due(row.status, row.due_at, now)


def summarise(
    rows: Sequence[FeedbackReportRow], now: datetime, key: str = "all", label: str = ""
) -> FeedbackGroup:
    took = [h for h in (hours_to_answer(row) for row in rows) if h is not None]
    return FeedbackGroup(
        key=key,
        label=label,
        total=len(rows),
        answered=len(took),
        overdue=sum(is_overdue(row, now) for row in rows),
        median_hours=statistics.median(took) if took else None,
    )


def group_feedback(
    rows: Iterable[FeedbackReportRow],
    key: Callable[[FeedbackReportRow], str],
    label: Callable[[str], str],
    now: datetime,
    *,
    by_key: bool = False,
) -> list[FeedbackGroup]:
    """Groups of ``rows`` by ``key``: in key order when ``by_key`` (months), else the
    largest first."""
    grouped: dict[str, list[FeedbackReportRow]] = {}
    for row in rows:
        grouped.setdefault(key(row), []).append(row)
    groups = [summarise(members, now, k, label(k)) for k, members in grouped.items()]
    if by_key:
        return sorted(groups, key=lambda g: g.key)
    return sorted(groups, key=lambda g: (-g.total, g.label))


def feedback_csv(
    rows: Iterable[FeedbackReportRow], now: datetime, zone_of: Callable[[datetime], str]
) -> str:
    """One line per feedback: no text (the report is numbers), times in the charity's zone."""
    header = (
        "reference",
        "received_at",
        "kind",
        "status",
        "channel",
        "need",
        "answered_at",
        "hours_to_answer",
        "overdue",
    )
    return csv_text(
        header,
        (
            (
                row.reference,
                zone_of(row.created_at),
                row.kind,
                row.status,
                row.channel,
                row.need or "",
                zone_of(row.answered_at) if row.answered_at else "",
                f"{hours:.1f}" if (hours := hours_to_answer(row)) is not None else "",
                "yes" if is_overdue(row, now) else "no",
            )
            for row in rows
        ),
    )


def section(
    rows: Sequence[FeedbackReportRow],
    now: datetime,
    *,
    month_label: Callable[[str], str],
    month_key: Callable[[datetime], str],
    kind_label: Callable[[str], str],
    need_label: Callable[[str], str],
    channel_label: Callable[[str], str],
) -> dict[str, object]:
    """What the satisfaction page shows of feedback: the totals and one table per way of
    grouping it."""
    return {
        "all": summarise(rows, now),
        "tables": [
            (
                "dash.feedback.report.by_month",
                group_feedback(
                    rows, lambda r: month_key(r.created_at), month_label, now, by_key=True
                ),
            ),
            (
                "dash.feedback.report.by_kind",
                group_feedback(rows, lambda r: r.kind, kind_label, now),
            ),
            (
                "dash.feedback.report.by_need",
                group_feedback(rows, lambda r: r.need or "", need_label, now),
            ),
            (
                "dash.feedback.report.by_channel",
                group_feedback(rows, lambda r: r.channel, channel_label, now),
            ),
        ],
    }
