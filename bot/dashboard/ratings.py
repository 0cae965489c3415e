"""The ratings report, /staff/reports (charts drawn by bot.dashboard.reports), and its CSV."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

import flows
from bot.dashboard import feedback_report, reports
from bot.dashboard.site import PageGroup, Visit, download
from bot.dashboard.views import day, ratings_csv
from flows.catalogue import CATALOGUE
from flows.steps import need_label
from flows.types import Language
from storage.feedback import FeedbackRepository
from storage.repositories import RatingRepository


class RatingPages(PageGroup):
    """Ratings by month, channel, need and context, with the comments."""

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/reports", g("manager", self._reports)),
            web.get("/reports.csv", g("manager", self._reports_csv)),
        ]

    async def _ratings(self, request: web.Request) -> tuple[str, list[Any]]:
        period = request.query.get("period", "m12")
        period = period if period in (*reports.PERIODS, "all") else "m12"
        since = reports.period_start(period, self._clock(), self._settings.timezone)
        async with self._db.session() as session:
            rows = await RatingRepository(session).report(since=since)
        return period, rows

    async def _reports(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        lang: Language = visit.lang
        period, rows = await self._ratings(request)
        rtl = lang == "ar"
        zone = self._settings.timezone

        def t(key: str, **params: object) -> str:
            return flows.text(lang, key, **params)

        def bar_title(group: reports.Group) -> str:
            return t(
                "dash.reports.bar",
                group=group.label,
                count=group.total,
                average=reports.number(group.average, lang),
            )

        def need(key: str) -> str:
            return need_label(self._settings, key, lang) if key else t("dash.reports.no_need")

        dimensions = [
            (
                "dash.reports.by_month",
                reports.group_ratings(
                    rows,
                    lambda r: reports.month_key(r.at, zone),
                    lambda k: reports.month_label(k, lang),
                    by_key=True,
                ),
            ),
            (
                "dash.reports.by_channel",
                reports.group_ratings(
                    rows, lambda r: r.channel, lambda k: flows.channel_label(lang, k)
                ),
            ),
            ("dash.reports.by_need", reports.group_ratings(rows, lambda r: r.need or "", need)),
            (
                "dash.reports.by_context",
                reports.group_ratings(
                    rows, lambda r: r.context, lambda k: _rating_context(lang, k)
                ),
            ),
        ]
        everything = reports.overall(rows)
        distribution = reports.column_chart(
            t("dash.reports.distribution"),
            everything,
            rtl=rtl,
            language=lang,
            column_title=lambda score, count: t("dash.reports.column", score=score, count=count),
        )
        charts = [
            (
                reports.stacked_chart(t(key), groups, rtl=rtl, language=lang, bar_title=bar_title),
                groups,
            )
            for key, groups in dimensions
        ]
        comments = [
            {
                "when": day(row.at, lang, zone),
                "score": row.score,
                "channel": flows.channel_label(lang, row.channel),
                "need": need(row.need or ""),
                "reference": row.reference,
                "text": flows.mask_ids(row.comment or ""),
            }
            for row in reversed(rows)
            if row.comment
        ][:200]
        context = {
            "period": period,
            "periods": [(p, t(f"dash.reports.period.{p}")) for p in (*reports.PERIODS, "all")],
            "total": everything.total,
            "average": reports.number(everything.average, lang),
            "distribution": distribution,
            "charts": charts,
            "comments": comments,
            "number": lambda value: reports.number(value, lang),
            "csv_url": "/staff/reports.csv?" + urlencode({"period": period}),
            "feedback": await self._feedback(period, lang),
            "feedback_csv_url": "/staff/reports/feedback.csv?" + urlencode({"period": period}),
        }
        return self._render(request, visit, "reports.html", context, section="reports")

    async def _feedback(self, period: str, lang: Language) -> dict[str, object]:
        """The feedback report of the same period, beside the ratings."""
        now, zone = self._clock(), self._settings.timezone
        async with self._db.session() as session:
            rows = await FeedbackRepository(session).report(
                since=reports.period_start(period, now, zone)
            )
        return feedback_report.section(
            rows,
            now,
            month_label=lambda k: reports.month_label(k, lang),
            month_key=lambda at: reports.month_key(at, zone),
            kind_label=lambda k: flows.text(lang, f"staff.feedback.kind.{k}"),
            need_label=lambda k: (
                need_label(self._settings, k, lang)
                if k
                else flows.text(lang, "dash.reports.no_need")
            ),
            channel_label=lambda k: flows.channel_label(lang, k),
        )

    async def _reports_csv(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        period, rows = await self._ratings(request)
        await self._audit(visit, "export_ratings", None, {"period": period, "rows": len(rows)})
        return download("ratings.csv", ratings_csv(rows))


def _rating_context(language: Language, context: str) -> str:
    key = f"staff.rating_context.{context}"
    return flows.text(language, key) if key in CATALOGUE else context
