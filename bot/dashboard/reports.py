"""The satisfaction report: ratings grouped by month, channel and need, drawn as SVG charts.

Pure functions over ``RatingRow``s; the charts are geometry that a template draws as
inline SVG (bars as ``rect``), so the page needs no script and no chart library.
Right-to-left pages get their charts mirrored here rather than by CSS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from babel.dates import get_month_names

from flows.text import localize_digits
from flows.types import Language
from storage.repositories import RatingRow

SCORES = (1, 2, 3, 4, 5)
PERIODS = {"m3": 3, "m6": 6, "m12": 12}  # the report's period choices, in months


@dataclass(frozen=True, slots=True)
class Group:
    """Ratings sharing one key (a month, a channel, a need): how many of each score."""

    key: str
    label: str
    counts: tuple[int, int, int, int, int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def average(self) -> float:
        total = self.total
        return sum(s * n for s, n in zip(SCORES, self.counts, strict=True)) / total if total else 0


def group_ratings(
    rows: Iterable[RatingRow],
    key: Callable[[RatingRow], str],
    label: Callable[[str], str],
    *,
    by_key: bool = False,
) -> list[Group]:
    """Groups of ``rows`` by ``key``: by key order when ``by_key`` (months), else the
    largest first."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        if row.score in SCORES:
            counts.setdefault(key(row), [0] * 5)[row.score - 1] += 1
    groups = [Group(k, label(k), (c[0], c[1], c[2], c[3], c[4])) for k, c in counts.items()]
    if by_key:
        return sorted(groups, key=lambda g: g.key)
    return sorted(groups, key=lambda g: (-g.total, g.label))


def overall(rows: Sequence[RatingRow]) -> Group:
    groups = group_ratings(rows, lambda _row: "all", lambda _key: "")
    return groups[0] if groups else Group("all", "", (0, 0, 0, 0, 0))


def month_key(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def month_label(key: str, language: Language) -> str:
    year, month = key.split("-")
    name = dict(get_month_names("wide", locale=language))[int(month)]
    return f"{name} {localize_digits(year, language)}"


def period_start(period: str, now: datetime, zone: str) -> datetime | None:
    """The first moment of the report's period (local month starts); None: all time."""
    months = PERIODS.get(period)
    if months is None:
        return None
    local = now.astimezone(ZoneInfo(zone))
    index = local.year * 12 + local.month - 1 - (months - 1)
    first = date(index // 12, index % 12 + 1, 1)
    return datetime.combine(first, time(), ZoneInfo(zone))


def number(value: float, language: Language) -> str:
    """One decimal, in the reader's digits (٤٫٢ in Arabic)."""
    written = f"{value:.1f}"
    return localize_digits(written, language).replace(".", "٫") if language == "ar" else written


# --- charts ---


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    score: int  # colours the bar
    title: str  # what a pointer or a screen reader is told


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str  # start | middle | end, always read left to right (the SVG is direction=ltr)
    css: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: float
    height: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]


# Drawn at 14 units a letter in a 360-unit box: about life size on a phone.
WIDTH = 360.0
_ROW = 34.0
_BAR = 22.0
_LABEL_WIDTH = 116.0
_AVERAGE_WIDTH = 36.0
_GAP = 6.0
_MAX_LABEL = 16


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def stacked_chart(
    title: str,
    groups: Sequence[Group],
    *,
    rtl: bool,
    language: Language,
    bar_title: Callable[[Group], str],
) -> Chart:
    """One row per group: its label, a bar split by score (1 to 5, in reading order)
    and its average. Bars are all full length: they compare shares, not sizes."""
    area = WIDTH - _LABEL_WIDTH - _AVERAGE_WIDTH - 2 * _GAP
    bars: list[Bar] = []
    labels: list[Label] = []
    for index, group in enumerate(groups):
        top = index * _ROW + (_ROW - _BAR) / 2
        baseline = top + _BAR / 2 + 5
        offset = _LABEL_WIDTH + _GAP  # from the reading start
        whole = bar_title(group)
        for score, count in zip(SCORES, group.counts, strict=True):
            if not count:
                continue
            width = area * count / group.total
            x = WIDTH - offset - width if rtl else offset
            bars.append(Bar(round(x, 2), top, round(width, 2), _BAR, score, whole))
            offset += width
        text_anchor, average_anchor = ("end", "start") if rtl else ("start", "end")
        labels.append(Label(WIDTH if rtl else 0, baseline, _short(group.label), text_anchor))
        labels.append(
            Label(
                0 if rtl else WIDTH,
                baseline,
                number(group.average, language),
                average_anchor,
                "average",
            )
        )
    return Chart(title, WIDTH, max(len(groups), 1) * _ROW, tuple(bars), tuple(labels))


def column_chart(
    title: str,
    group: Group,
    *,
    rtl: bool,
    language: Language,
    column_title: Callable[[int, int], str],
) -> Chart:
    """The distribution: one column per score, its height the number of ratings."""
    height, top, bottom = 180.0, 22.0, 24.0
    column, slot = 40.0, WIDTH / 5
    tallest = max(group.counts) or 1
    bars: list[Bar] = []
    labels: list[Label] = []
    for position, (score, count) in enumerate(zip(SCORES, group.counts, strict=True)):
        slot_index = 4 - position if rtl else position
        centre = slot * slot_index + slot / 2
        size = (height - top - bottom) * count / tallest
        y = height - bottom - size
        if count:
            bars.append(
                Bar(
                    centre - column / 2,
                    round(y, 2),
                    column,
                    round(size, 2),
                    score,
                    column_title(score, count),
                )
            )
        labels.append(Label(centre, y - 6, localize_digits(str(count), language), "middle"))
        labels.append(
            Label(centre, height - 6, localize_digits(str(score), language), "middle", "axis")
        )
    return Chart(title, WIDTH, height, tuple(bars), tuple(labels))
