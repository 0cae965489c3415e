"""The dashboard's feedback page, /staff/feedback: suggestions, complaints and thanks listed
with filters (overdue ones marked), one opened with its timeline, answered from a box and
moved on, all through ``bot.feedback.FeedbackDesk``. An agent never sees a complaint:
opening one is answered 403."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

import flows
from bot.dashboard import reports
from bot.dashboard.feedback_report import feedback_csv
from bot.dashboard.feedback_views import label
from bot.dashboard.site import PageGroup, Site, Visit, download, see_other
from bot.dashboard.views import media_link, when
from bot.feedback import FeedbackDesk, FeedbackError, is_overdue, kinds_for
from storage.feedback import (
    ANSWERED,
    STATUSES,
    number_in,
    reference_for,
)

PATH = "/staff/feedback"
_PREVIEW = 120


class FeedbackPages(PageGroup):
    """The routes of /staff/feedback; its actions go through ``FeedbackDesk`` (audited)."""

    def __init__(self, site: Site, desk: FeedbackDesk) -> None:
        super().__init__(site)
        self._feedback = desk

    def routes(self) -> list[web.RouteDef]:
        guard = self._guard
        one = "/feedback/{reference:[A-Za-z0-9-]{1,20}}"
        return [
            web.get("/feedback", guard("agent", self._list)),
            web.get(one, guard("agent", self._show)),
            web.post(one + "/answer", guard("agent", self._answer)),
            web.post(one + "/status", guard("agent", self._status)),
            web.get("/reports/feedback.csv", guard("manager", self._report_csv)),
        ]

    async def _report_csv(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        period = request.query.get("period", "m12")
        period = period if period in (*reports.PERIODS, "all") else "m12"
        zone_name = self._settings.timezone
        since = reports.period_start(period, self._clock(), zone_name)
        rows = await self._feedback.export_report(since=since, by=visit.me.staff)
        zone = ZoneInfo(zone_name)
        body = feedback_csv(
            rows, self._clock(), lambda at: at.astimezone(zone).isoformat(timespec="seconds")
        )
        return download("feedback.csv", body)

    async def _list(self, request: web.Request, visit: Visit) -> web.Response:
        lang, staff = visit.lang, visit.me.staff
        kind = request.query.get("kind") or None
        status = request.query.get("status") or None
        overdue = request.query.get("overdue") == "1"
        allowed = kinds_for(staff.role)
        if kind not in (None, *allowed) or status not in (None, *STATUSES):
            return self._problem(request, visit, 400, "dash.feedback.bad_filter")
        found = await self._feedback.list_feedback(
            kind=kind, status=status, overdue=overdue, by=staff
        )
        now = self._clock()
        rows = [
            {
                "reference": f.reference,
                "kind": label(lang, "kind", f.kind),
                "status": label(lang, "status", f.status),
                "status_value": f.status,
                "created": when(f.created_at, lang, self._settings.timezone),
                "due": when(f.due_at, lang, self._settings.timezone) if f.due_at else "—",
                "overdue": is_overdue(f, now),
                "text": _preview(f.text),
            }
            for f in found
        ]
        # Whatever the filter, the overdue ones the member may see are counted at the top.
        late = len(await self._feedback.list_feedback(overdue=True, by=staff))
        context: dict[str, Any] = {
            "rows": rows,
            "late": late,
            "kinds": [(k, label(lang, "kind", k)) for k in allowed],
            "statuses": [(s, label(lang, "status", s)) for s in STATUSES],
            "chosen": {"kind": kind or "", "status": status or "", "overdue": overdue},
        }
        return self._render(request, visit, "feedback.html", context, section="feedback")

    async def _show(
        self,
        request: web.Request,
        visit: Visit,
        *,
        error: str | None = None,
        kept: str = "",
        status: int = 200,
    ) -> web.Response:
        lang = visit.lang
        reference = _reference(request)
        try:
            case = await self._feedback.show(reference, by=visit.me.staff, where="dashboard")
        except FeedbackError as refused:
            return self._refused(request, visit, refused)
        feedback = case.feedback
        done = request.query.get("done")
        flash = (
            flows.text(lang, f"dash.feedback.done.{done}") if done in ("answer", "status") else None
        )
        events = [
            {
                "at": when(event.created_at, lang, self._settings.timezone),
                "what": flows.text(lang, f"dash.feedback.event.{event.kind}"),
                "to": label(lang, "status", event.to_status) if event.to_status else "",
                "by": event.by or "",
                "text": event.text or "",
                "files": [_file(a) for a in event.attachments],
            }
            for event in case.events
        ]
        context: dict[str, Any] = {
            "f": {
                "reference": feedback.reference,
                "kind": label(lang, "kind", feedback.kind),
                "status": label(lang, "status", feedback.status),
                "status_value": feedback.status,
                "channel": flows.channel_label(lang, feedback.channel),
                "created": when(feedback.created_at, lang, self._settings.timezone),
                "due": when(feedback.due_at, lang, self._settings.timezone)
                if feedback.due_at
                else "—",
                "overdue": case.overdue,
                "request": case.request_reference,
                "may_contact": feedback.may_contact,
                "named": feedback.named_staff,
                "text": feedback.text,
                "files": [_file(a) for a in feedback.attachments],
            },
            "events": events,
            "moves": [
                (s, label(lang, "status", s))
                for s in STATUSES
                if s not in (ANSWERED, feedback.status)
            ],
            "kept": kept,
            "error": error,
            "flash": flash,
        }
        return self._render(
            request, visit, "feedback_case.html", context, status=status, section="feedback"
        )

    async def _answer(self, request: web.Request, visit: Visit) -> web.Response:
        reference = _reference(request)
        text = visit.field("text")
        try:
            await self._feedback.answer(reference, text, by=visit.me.staff)
        except FeedbackError as refused:
            if refused.forbidden or refused.missing:
                return self._refused(request, visit, refused)
            return await self._show(
                request, visit, error=str(refused), kept=text[:4000], status=400
            )
        return see_other(f"{PATH}/{reference}?done=answer")

    async def _status(self, request: web.Request, visit: Visit) -> web.Response:
        reference = _reference(request)
        try:
            await self._feedback.set_status(
                reference, visit.field("status"), by=visit.me.staff, note=visit.field("note")
            )
        except FeedbackError as refused:
            if refused.forbidden or refused.missing:
                return self._refused(request, visit, refused)
            return await self._show(request, visit, error=str(refused), status=400)
        return see_other(f"{PATH}/{reference}?done=status")

    def _refused(self, request: web.Request, visit: Visit, refused: FeedbackError) -> web.Response:
        if refused.forbidden:
            return self._problem(request, visit, 403, "dash.feedback.forbidden")
        return self._problem(request, visit, 404, "dash.error.not_found")


def _reference(request: web.Request) -> str:
    number = number_in(request.match_info["reference"])
    return reference_for(number) if number is not None else request.match_info["reference"]


def _file(attachment: dict[str, Any]) -> dict[str, str | None]:
    url = str(attachment.get("url", ""))
    return {
        "name": str(attachment.get("filename") or url.rsplit("/", 1)[-1]),
        "link": media_link(url),
    }


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"
