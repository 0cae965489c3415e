"""The dashboard's appointments: /staff/appointments, the week's interviews and field visits
with a form to schedule a visit (through ``bot.visits.VisitDesk``, audited), and
/staff/calendar.ics, a staff member's calendar as an iCalendar feed behind a secret token
of their own (no login: calendar programs cannot log in)."""

from __future__ import annotations

import hmac
from datetime import date, timedelta

from aiohttp import web
from icalendar import Calendar, Event

import flows
from bot.dashboard.calendar_feed import calendar_tokens, calendar_url
from bot.dashboard.site import PageGroup, Site, Visit, see_other
from bot.followups import FollowUpPlanner, FollowUpPolicy
from bot.visits import AppointmentError, Listed, VisitDesk
from flows import slots
from flows.appointments import day_label
from storage.appointments import CANCELLED, INTERVIEW
from storage.repositories import StaffRepository

PATH = "/staff/appointments"
# The feed covers this much before and after today.
FEED_PAST = timedelta(days=30)
FEED_AHEAD = 90


def week_start(day: date) -> date:
    """The Sunday that starts ``day``'s week (the Saudi week)."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


class AppointmentPages(PageGroup):
    """The routes of /staff/appointments and the calendar feed."""

    def __init__(self, site: Site, visits: VisitDesk | None = None) -> None:
        super().__init__(site)
        if visits is None:  # a dashboard on its own (tests): nobody else to wake
            rules = self._settings.appointments
            policy = FollowUpPolicy(timezone=self._settings.timezone, reminders=rules.reminders)
            visits = VisitDesk(
                self._db, self._settings, self._clock, followups=FollowUpPlanner(policy)
            )
        self._visits = visits

    def routes(self) -> list[web.RouteDef]:
        guard = self._guard
        return [
            web.get("/appointments", guard("agent", self._week)),
            web.post("/appointments/visits", guard("agent", self._schedule)),
            web.post("/appointments/settle", guard("agent", self._settle)),
            web.get("/calendar.ics", self._feed),
        ]

    async def _week(self, request: web.Request, visit: Visit) -> web.Response:
        zone = self._settings.timezone
        today = slots.local_start(self._clock(), zone).date()
        try:
            first = week_start(date.fromisoformat(request.query.get("week", today.isoformat())))
        except ValueError:
            return self._problem(request, visit, 400, "dash.appointments.bad_week")
        listed = await self._visits.appointments(first, days=7)
        days = []
        for n in range(7):
            day = first + timedelta(days=n)
            rows = [
                self._row(item, visit)
                for item in listed
                if slots.local_start(item.appointment.starts_at, zone).date() == day
            ]
            days.append({"label": day_label(day, visit.lang), "rows": rows})
        base = self._public_url or f"{request.scheme}://{request.host}"
        feed = calendar_url(base, visit.me.staff, self._db.keyring)
        context = {
            "days": days,
            "previous": (first - timedelta(days=7)).isoformat(),
            "next": (first + timedelta(days=7)).isoformat(),
            "feed": feed,
        }
        return self._render(request, visit, "appointments.html", context, section="appointments")

    def _row(self, item: Listed, visit: Visit) -> dict[str, str]:
        a = item.appointment
        zone = self._settings.timezone
        kind = "interview" if a.kind == INTERVIEW else "visit"
        return {
            "time": slots.local_start(a.starts_at, zone).strftime("%H:%M"),
            "reference": a.reference or "",
            "kind": flows.text(visit.lang, f"dash.appointments.{kind}"),
            "where": a.branch or "" if a.kind == INTERVIEW else item.request_reference or "",
            "status": a.status,
            "staff": a.staff_username or "",
        }

    async def _schedule(self, request: web.Request, visit: Visit) -> web.Response:
        form = visit.form or {}
        reference = str(form.get("request", "")).strip()
        at = str(form.get("at", "")).replace("T", " ").strip()
        by = str(form.get("by", "")).strip() or visit.me.staff.username
        try:
            scheduled = await self._visits.schedule(reference, at, by=by)
        except AppointmentError as error:
            return self._problem(
                request, visit, 400, "dash.appointments.refused", reason=error.said_in(visit.lang)
            )
        day = slots.local_start(scheduled.starts_at, self._settings.timezone).date()
        return see_other(f"{PATH}?week={week_start(day).isoformat()}&done=visit")

    async def _settle(self, request: web.Request, visit: Visit) -> web.Response:
        reference = visit.field("reference").strip()
        outcome = visit.field("outcome")
        note = visit.field("note").strip() or None
        try:
            settled = await self._visits.settle(
                reference, outcome, note=note, by=visit.me.staff.username
            )
        except AppointmentError as error:
            return self._problem(
                request,
                visit,
                400,
                "dash.appointments.not_settled",
                reason=error.said_in(visit.lang),
            )
        day = slots.local_start(settled.starts_at, self._settings.timezone).date()
        return see_other(f"{PATH}?week={week_start(day).isoformat()}&done=settled")

    async def _feed(self, request: web.Request) -> web.Response:
        username = request.query.get("user", "")
        token = request.query.get("token", "")
        async with self._db.session() as session:
            staff = await StaffRepository(session).get(username) if username else None
        accepted = calendar_tokens(staff, self._db.keyring) if staff is not None else []
        # Each compared in full, in constant time: none is skipped on a first match.
        matches = [hmac.compare_digest(token.encode(), known.encode()) for known in accepted]
        if staff is None or not any(matches):
            return web.Response(status=403, text="unknown calendar")
        now = self._clock()
        zone = self._settings.timezone
        first = slots.local_start(now - FEED_PAST, zone).date()
        listed = await self._visits.appointments(first, days=FEED_PAST.days + FEED_AHEAD)
        calendar = Calendar()
        calendar.add("prodid", "-//Tawasul//appointments//EN")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", f"Tawasul: {staff.username}")
        for item in listed:
            a = item.appointment
            mine = a.kind == INTERVIEW or a.staff_username == staff.username
            if not mine or a.status == CANCELLED:
                continue
            event = Event()
            event.add("uid", f"{a.reference}@tawasul")
            event.add("dtstamp", now)
            event.add("dtstart", a.starts_at)
            event.add("dtend", a.ends_at)
            # No names or numbers of the beneficiary: a calendar is read on phones.
            what = (
                f"Interview {a.reference} ({a.branch})"
                if a.kind == INTERVIEW
                else f"Field visit {a.reference} ({item.request_reference or '-'})"
            )
            event.add("summary", what)
            event.add("status", "CONFIRMED" if a.status in ("booked", "confirmed") else "TENTATIVE")
            calendar.add_component(event)
        return web.Response(
            body=calendar.to_ical(),
            content_type="text/calendar",
            charset="utf-8",
            headers={"Cache-Control": "private, no-store"},
        )
