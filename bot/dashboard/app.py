"""The staff dashboard's routes under /staff/: login, requests, case files, handoffs, reports.

Every route is wrapped by ``_guard``: no session -> the login page (303), or 401 for
the live event stream; a role too low -> 403; a POST without the session's CSRF
token -> 403 with nothing changed. Every staff action goes through ``StaffDesk``, so
the beneficiary is told exactly as from the command line or the Telegram staff
group, and lands in the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

import flows
from bot.channels import channel_names
from bot.config import Settings
from bot.dashboard import reports
from bot.dashboard.auth import (
    COOKIE,
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_PATH,
    SESSION_LIFETIME,
    LoginRefused,
    Sessions,
    Viewer,
    client_address,
    new_token,
    same_token,
    well_formed,
)
from bot.dashboard.knowledge import KnowledgePages
from bot.dashboard.live import LiveInbox
from bot.dashboard.views import (
    audit_lines,
    case_view,
    day,
    handoff_cards,
    live_text,
    ratings_csv,
    request_rows,
    requests_csv,
    when,
)
from bot.desk import StaffDesk, StaffError
from bot.engine import HandleResult
from bot.media import MediaStore
from bot.passwords import hash_password, verify_password
from flows.catalogue import CATALOGUE
from flows.cleaning import clean_line
from flows.lifecycle import NOTE_REQUIRED, UNDECIDED
from flows.steps import need_label
from flows.text import localize_digits
from flows.types import InboundMessage, Language
from handlers.base import same_origin
from storage.db import Database
from storage.models import StaffRole
from storage.repositories import (
    AuditRepository,
    RatingRepository,
    RequestRepository,
    StaffRepository,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
HEARTBEAT_SECONDS = 15.0  # an SSE comment line; also when the session is checked again
MIN_PASSWORD = 10  # as `tawasul staff add --password-stdin`
LANGUAGE_COOKIE = "tawasul_staff_lang"
_ASSETS = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
_MEDIA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9]{1,8}")
# Attachments shown in the browser; anything else is downloaded, never rendered.
_INLINE_MEDIA = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}
_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        # The live inbox writes with textContent only: no HTML sink may be used.
        "require-trusted-types-for 'script'",
    ]
)
_DONE = {
    "status",
    "note",
    "reply",
    "taken",
    "already_taken",
    "closed",
    "staff_added",
    "staff_removed",
    "password",
    "password_reset",
}

Handler = Callable[[web.Request, "Visit"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Visit:
    """One request as the pages see it: the reader's language, who is logged in, the
    form posted (checked for its CSRF token already)."""

    lang: Language
    viewer: Viewer | None = None
    form: Mapping[str, Any] = field(default_factory=dict)

    @property
    def me(self) -> Viewer:
        """The logged-in viewer (every guarded route has one)."""
        assert self.viewer is not None
        return self.viewer

    def field(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""


class Dashboard:
    """The staff dashboard: a sub-application mounted at /staff by the server."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        desk: StaffDesk,
        media: MediaStore,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = database
        self._desk = desk
        self._media = media
        self._clock = clock
        self._settings = settings.flow_settings()
        self._organization = settings.organization.name
        self._secure = (settings.server.public_url or "").startswith("https:")
        self._public_url = settings.server.public_url
        self._proxies = tuple(settings.server.trusted_proxies)
        self.live = LiveInbox()
        self.sessions = Sessions(database, clock)
        self._assets = {name: _asset(name) for name in _ASSETS}

    # --- wiring ---

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._pages])
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.PackageLoader("bot.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            default_helpers=False,
        )
        g = self._guard
        app.add_routes(
            [
                web.get("/login", self._login_page),
                web.post("/login", self._login),
                web.get("/static/{name}", self._static),
                web.post("/logout", g("agent", self._logout)),
                web.get("/", g("agent", self._requests)),
                web.get("/requests.csv", g("manager", self._requests_csv)),
                web.get("/requests/{reference}", g("agent", self._case)),
                web.get(
                    "/requests/{reference}/export.{form:json|csv}", g("agent", self._case_export)
                ),
                web.post("/requests/{reference}/status", g("agent", self._set_status)),
                web.post("/requests/{reference}/note", g("agent", self._add_note)),
                web.post("/requests/{reference}/reply", g("agent", self._write_to)),
                web.get("/handoffs", g("agent", self._handoffs)),
                web.get("/handoffs/events", g("agent", self._events, stream=True)),
                web.post("/handoffs/{id:[0-9]{1,18}}/take", g("agent", self._take)),
                web.post("/handoffs/{id:[0-9]{1,18}}/close", g("agent", self._close)),
                web.post("/handoffs/{id:[0-9]{1,18}}/reply", g("agent", self._reply)),
                web.get("/reports", g("manager", self._reports)),
                web.get("/reports.csv", g("manager", self._reports_csv)),
                web.get("/admin/staff", g("admin", self._staff)),
                web.post("/admin/staff", g("admin", self._add_staff)),
                web.post("/admin/staff/{username}/remove", g("admin", self._remove_staff)),
                web.get("/media/{name}", g("agent", self._media_file)),
                web.get("/password", g("agent", self._password_page)),
                web.post("/password", g("agent", self._change_password)),
                web.post("/admin/staff/{username}/password", g("admin", self._reset_password)),
            ]
        )
        knowledge = KnowledgePages(
            self._db, self._clock, self._settings.timezone, self._render, self._problem
        )
        app.add_routes(knowledge.routes(g))
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        self.live.close()  # open event streams end, so the server stops without waiting

    def heard(self, message: InboundMessage, result: HandleResult) -> None:
        """The server's receive hook: new handoffs and messages into them go live."""
        for handoff_id in result.handoffs_opened:
            self.live.publish("handoff", id=handoff_id, change="opened")
        if result.relayed_to is not None:
            self.live.publish(
                "message",
                handoff=result.relayed_to,
                direction="in",
                text=live_text(message.text, len(message.media)),
                at=self._local(message.received_at),
            )
        for handoff_id in result.handoffs_left:
            self.live.publish("handoff", id=handoff_id, change="left")

    def _local(self, moment: datetime) -> str:
        return when(moment, "en", self._settings.timezone)  # the page writes its own digits

    # --- the guard and the page machinery ---

    def _guard(
        self, role: str, handler: Handler, *, stream: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            viewer = await self.sessions.viewer(request.cookies.get(COOKIE))
            if viewer is None:
                if stream:
                    return web.json_response({"error": "login required"}, status=401)
                return _see_other(_login_url(request))
            visit = Visit(_language(request), viewer)
            if not viewer.may(role):
                if stream:
                    return web.json_response({"error": "forbidden"}, status=403)
                return self._problem(request, visit, 403, "dash.error.forbidden")
            if request.method == "POST":
                if not _same_origin(request, self._public_url):
                    return self._problem(request, visit, 403, "dash.error.csrf")
                form = await request.post()
                token = form.get("csrf")
                if not isinstance(token, str) or not same_token(token, viewer.csrf_token):
                    return self._problem(request, visit, 403, "dash.error.csrf")
                visit = Visit(visit.lang, viewer, form)
            return await handler(request, visit)

        return guarded

    @web.middleware
    async def _pages(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """The reader's language (``?lang=`` remembered in a cookie) and security headers."""
        asked = request.query.get("lang")
        cookie = request.cookies.get(LANGUAGE_COOKIE)
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            visit = Visit(_language(request))
            response = self._problem(request, visit, 404, "dash.error.not_found")
        if not response.prepared:
            headers = response.headers
            headers.setdefault("Content-Security-Policy", _CSP)
            headers.setdefault("Cache-Control", "no-store")
            headers["X-Content-Type-Options"] = "nosniff"
            headers["X-Frame-Options"] = "DENY"
            # Not "no-referrer": browsers would then send "Origin: null" with every form.
            headers["Referrer-Policy"] = "same-origin"
            if asked in ("ar", "en") and asked != cookie:
                response.set_cookie(
                    LANGUAGE_COOKIE,
                    asked,
                    max_age=365 * 24 * 3600,
                    path=COOKIE_PATH,
                    httponly=True,
                    samesite="Strict",
                    secure=self._secure,
                )
        return response

    def _render(
        self,
        request: web.Request,
        visit: Visit,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        section: str = "",
    ) -> web.Response:
        lang: Language = visit.lang
        other: Language = "en" if lang == "ar" else "ar"
        viewer = visit.viewer
        done = request.query.get("done")

        def t(key: str, **params: object) -> str:
            return flows.text(lang, key, **params)

        base = {
            "t": t,
            "lang": lang,
            "dir": "rtl" if lang == "ar" else "ltr",
            "other_lang": other,
            "other_lang_name": flows.text(other, "dash.language.name"),
            "switch_url": str(request.rel_url.update_query(lang=other)),
            "viewer": viewer,
            "csrf": viewer.csrf_token if viewer else "",
            "organization": self._organization,
            "section": section,
            "asset": self._asset_url,
            "digits": lambda value: localize_digits(str(value), lang),
            "flash": t(f"dash.done.{done}") if done in _DONE else None,
            "error": None,
        }
        return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)

    def _problem(
        self, request: web.Request, visit: Visit, status: int, key: str, **params: object
    ) -> web.Response:
        text = flows.text(visit.lang, key, **params)
        return self._render(request, visit, "problem.html", {"message": text}, status=status)

    def _asset_url(self, name: str) -> str:
        return f"/staff/static/{name}?v={self._assets[name][1]}"

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._assets:
            raise web.HTTPNotFound()
        body, version = self._assets[name]
        cache = (
            "public, max-age=31536000, immutable"
            if request.query.get("v") == version
            else "no-cache"
        )
        return web.Response(
            body=body, content_type=_ASSETS[name], charset="utf-8", headers={"Cache-Control": cache}
        )

    # --- login and logout ---

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        if await self.sessions.viewer(request.cookies.get(COOKIE)) is not None:
            return _see_other(_next_url(request.query.get("next")))
        return self._login_form(request, Visit(_language(request)))

    def _login_form(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE)
        if not well_formed(token):
            token = new_token()
        assert token is not None
        next_url = visit.field("next") or request.query.get("next") or ""
        flash = flows.text(visit.lang, "dash.login.logged_out") if "bye" in request.query else None
        response = self._render(
            request,
            visit,
            "login.html",
            {
                "login_token": token,
                "next": _next_url(next_url),
                "error": error,
                "flash": flash,
            },
            status=status,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=LOGIN_PATH,
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )
        return response

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        visit = Visit(_language(request), None, form)
        lang = visit.lang
        cookie = request.cookies.get(LOGIN_COOKIE)
        token = form.get("csrf")
        if (
            not _same_origin(request, self._public_url)
            or not well_formed(cookie)
            or not isinstance(token, str)
            or not same_token(token, cookie or "")
        ):
            return self._login_form(
                request, visit, status=403, error=flows.text(lang, "dash.error.csrf")
            )
        username, password = str(form.get("username") or ""), str(form.get("password") or "")
        try:
            address = client_address(
                request.remote, request.headers.getall("X-Forwarded-For", []), self._proxies
            )
            session_token = await self.sessions.login(username, password, address)
        except LoginRefused as refused:
            error = flows.text(lang, "dash.login.throttled")
            response = self._login_form(request, visit, status=429, error=error)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        if session_token is None:
            error = flows.text(lang, "dash.login.failed")
            return self._login_form(request, visit, status=401, error=error)
        response = _see_other(_next_url(str(form.get("next") or "")))
        response.set_cookie(
            COOKIE,
            session_token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )
        response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
        return response

    async def _logout(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        await self.sessions.logout(visit.me)
        response = _see_other(LOGIN_PATH + "?bye=1")
        response.del_cookie(COOKIE, path=COOKIE_PATH)
        return response

    # --- requests and case files ---

    def _filters(self, request: web.Request) -> dict[str, str]:
        """The list's filters from the query string, each checked against what exists."""
        query = request.query
        needs = {need.key for need in self._settings.needs}
        found = {
            "status": query.get("status", "") if query.get("status") in flows.STATUSES else "",
            "need": query.get("need", "") if query.get("need") in needs else "",
            "channel": (
                query.get("channel", "") if query.get("channel") in channel_names() else ""
            ),
            "overdue": "1" if query.get("overdue") == "1" else "",
            "q": clean_line(query.get("q", ""))[:100],
        }
        return {key: value for key, value in found.items() if value}

    async def _filtered(self, filters: Mapping[str, str]) -> list[Any]:
        async with self._db.session() as session:
            return await RequestRepository(session).list(
                status=filters.get("status"),
                need=filters.get("need"),
                channel=filters.get("channel"),
                overdue_at=self._clock() if filters.get("overdue") else None,
                undecided=UNDECIDED,
                search=filters.get("q"),
                fold=flows.fold_arabic,
            )

    async def _requests(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        lang: Language = visit.lang
        filters = self._filters(request)
        found = await self._filtered(filters)
        pages = max(1, -(-len(found) // PAGE_SIZE))
        page = request.query.get("page", "1")
        number = min(int(page), pages) if page.isascii() and page.isdigit() and page != "0" else 1
        shown = found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]

        def page_url(n: int) -> str:
            return "/staff/?" + urlencode({**filters, "page": n})

        context = {
            "rows": request_rows(shown, lang, self._settings, self._clock()),
            "total": len(found),
            "filters": filters,
            "statuses": [(s, flows.status_label(lang, s)) for s in flows.STATUSES],
            "needs": [(n.key, n.label(lang)) for n in self._settings.needs],
            "channels": [(c, flows.channel_label(lang, c)) for c in channel_names()],
            "page": number,
            "pages": pages,
            "previous_url": page_url(number - 1) if number > 1 else None,
            "next_url": page_url(number + 1) if number < pages else None,
            "csv_url": "/staff/requests.csv?" + urlencode(filters),
        }
        return self._render(request, visit, "requests.html", context, section="requests")

    async def _requests_csv(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        filters = self._filters(request)
        found = await self._filtered(filters)
        await self._audit(visit, "export_requests", None, {"filters": filters, "rows": len(found)})
        return _download("requests.csv", requests_csv(found, self._settings, self._clock()))

    async def _case(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        reference = request.match_info["reference"]
        try:
            case = await self._desk.case_file(reference)
        except StaffError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        view = case_view(case, visit.lang, self._settings, self._clock())
        form = visit.form
        context = {
            "case": view,
            "error": error,
            "kept": {key: str(form.get(key) or "") for key in ("status", "note", "text")}
            if error
            else {},
        }
        return self._render(request, visit, "case.html", context, status=status, section="requests")

    async def _case_export(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        reference, form = request.match_info["reference"], request.match_info["form"]
        try:
            body = await self._desk.export(reference, form, by=visit.me.staff)
        except StaffError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        name = re.sub(r"[^A-Za-z0-9-]", "", reference.upper()) or "case"
        return _download(f"{name}.{form}", body)

    async def _case_action(
        self,
        request: web.Request,
        visit: Visit,
        action: Callable[[str], Awaitable[object]],
        done: str,
    ) -> web.StreamResponse:
        reference = request.match_info["reference"]
        try:
            await action(reference)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._case(request, visit, status=400, error=error)
        return _see_other(f"/staff/requests/{_path(reference)}?done={done}")

    async def _set_status(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        status, note = visit.field("status"), visit.field("note")
        if status in NOTE_REQUIRED and not note.strip():
            error = flows.text(visit.lang, "dash.status.note_required")
            return await self._case(request, visit, status=400, error=error)

        async def change(reference: str) -> object:
            return await self._desk.set_status(reference, status, note=note, by=visit.me.username)

        return await self._case_action(request, visit, change, "status")

    async def _add_note(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        async def note(reference: str) -> object:
            await self._desk.add_note(reference, visit.field("note"), by=visit.me.username)
            return None

        return await self._case_action(request, visit, note, "note")

    async def _write_to(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        text = visit.field("text")

        async def write(reference: str) -> object:
            handoff = await self._desk.write_to(reference, visit.me.staff, text)
            self.live.publish("handoff", id=handoff.id, change="outreach")
            return handoff

        return await self._case_action(request, visit, write, "reply")

    # --- the handoff inbox ---

    async def _handoffs(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        handoffs = await self._desk.open_handoffs()
        cards = await handoff_cards(self._db, handoffs, visit.lang, self._settings, visit.me.staff)
        context = {"cards": cards, "error": error}
        return self._render(
            request, visit, "handoffs.html", context, status=status, section="handoffs"
        )

    async def _take(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        handoff_id = int(request.match_info["id"])
        taken = await self._desk.take(handoff_id, visit.me.staff)
        if taken:
            self.live.publish("handoff", id=handoff_id, change="taken")
        return _see_other(
            f"/staff/handoffs?done={'taken' if taken else 'already_taken'}#h{handoff_id}"
        )

    async def _close(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        handoff_id = int(request.match_info["id"])
        if await self._desk.close(handoff_id, visit.me.staff) is not None:
            self.live.publish("handoff", id=handoff_id, change="closed")
        return _see_other("/staff/handoffs?done=closed")

    async def _reply(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        handoff_id = int(request.match_info["id"])
        text = visit.field("text")
        try:
            await self._desk.reply(handoff_id, visit.me.staff, text)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._handoffs(request, visit, status=400, error=error)
        self.live.publish(
            "message",
            handoff=handoff_id,
            direction="out",
            text=live_text(text.strip(), 0),
            at=self._local(self._clock()),
        )
        return _see_other(f"/staff/handoffs?done=reply#h{handoff_id}")

    async def _events(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        """Server-sent events: ``message`` (into an open handoff) and ``handoff`` (the list
        changed). The session is checked again at every heartbeat."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a reverse proxy must pass events at once
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        with self.live.subscribe() as queue:
            try:
                await response.write(b"retry: 3000\n\n")
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        if await self.sessions.viewer(request.cookies.get(COOKIE)) is None:
                            break  # logged out, expired or removed meanwhile
                        await response.write(b": still here\n\n")
                        continue
                    if event is None:
                        break
                    await response.write(event.encode())
            except ConnectionResetError:
                pass  # the page was closed: the next write after it finds out
        return response

    # --- reports ---

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
        }
        return self._render(request, visit, "reports.html", context, section="reports")

    async def _reports_csv(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        period, rows = await self._ratings(request)
        await self._audit(visit, "export_ratings", None, {"period": period, "rows": len(rows)})
        return _download("ratings.csv", ratings_csv(rows))

    # --- staff administration ---

    async def _staff(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        lang: Language = visit.lang
        async with self._db.session() as session:
            members = await StaffRepository(session).list()
            entries = await AuditRepository(session).recent(limit=50)
        form = visit.form
        context = {
            "members": members,
            "roles": [(role, flows.text(lang, f"dash.role.{role}")) for role in StaffRole],
            "audit": audit_lines(entries, lang, self._settings.timezone),
            "error": error,
            "kept": {k: str(form.get(k) or "") for k in ("username", "role", "telegram_id")}
            if error
            else {},
        }
        return self._render(request, visit, "staff.html", context, status=status, section="staff")

    async def _add_staff(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        lang: Language = visit.lang
        username, role = visit.field("username"), visit.field("role")
        password, telegram = visit.field("password"), visit.field("telegram_id").strip()
        if len(password) < MIN_PASSWORD:
            error = flows.text(lang, "dash.staff.password_short")
            return await self._staff(request, visit, status=400, error=error)
        if telegram and not (telegram.isascii() and telegram.isdigit() and len(telegram) <= 18):
            error = flows.text(lang, "dash.staff.telegram_invalid")
            return await self._staff(request, visit, status=400, error=error)
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            await self._desk.add_member(
                username,
                role,
                telegram_id=int(telegram) if telegram else None,
                password_hash=password_hash,
                by=visit.me.staff,
            )
        except StaffError as problem:
            error = flows.text(lang, "dash.error.refused", reason=str(problem))
            return await self._staff(request, visit, status=400, error=error)
        return _see_other("/staff/admin/staff?done=staff_added")

    async def _remove_staff(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        username = request.match_info["username"].strip().lower()
        if username == visit.me.username:
            error = flows.text(visit.lang, "dash.staff.not_yourself")
            return await self._staff(request, visit, status=400, error=error)
        try:
            await self._desk.remove_member(username, by=visit.me.staff)
        except StaffError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        return _see_other("/staff/admin/staff?done=staff_removed")

    # --- passwords ---

    async def _password_page(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        return self._render(request, visit, "password.html", {"error": error}, status=status)

    async def _change_password(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        """A member changes their own password: the current one first, the new one twice;
        their other sessions end, this one stays."""
        me = visit.me
        current, new = visit.field("current"), visit.field("new")
        stored = me.staff.password_hash or ""
        if not await asyncio.to_thread(verify_password, stored, current):
            error = flows.text(visit.lang, "dash.password.wrong")
            return await self._password_page(request, visit, status=400, error=error)
        if new != visit.field("again"):
            error = flows.text(visit.lang, "dash.password.mismatch")
            return await self._password_page(request, visit, status=400, error=error)
        try:
            await self._desk.set_password(me.username, new, by=me.staff, keep_session=me.token_hash)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._password_page(request, visit, status=400, error=error)
        return _see_other("/staff/password?done=password")

    async def _reset_password(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        """An admin gives a member a new password (to tell them in person); audited."""
        username = request.match_info["username"]
        try:
            await self._desk.set_password(username, visit.field("password"), by=visit.me.staff)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._staff(request, visit, status=400, error=error)
        return _see_other("/staff/admin/staff?done=password_reset")

    # --- attachments ---

    async def _media_file(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        """A file from the media folder, by the name ``MediaStore.save`` gave it; nothing
        else (no other folder, no hidden file, no link leading out) is ever served."""
        name = request.match_info["name"]
        if not _MEDIA_NAME.fullmatch(name):
            return self._problem(request, visit, 404, "dash.error.not_found")
        path = await asyncio.to_thread(self._media.path, f"media/{name}")
        folder = await asyncio.to_thread(self._media.folder.resolve)
        if path is None or (await asyncio.to_thread(path.resolve)).parent != folder:
            return self._problem(request, visit, 404, "dash.error.not_found")
        extension = path.suffix.lower()
        kind = _INLINE_MEDIA.get(extension)
        headers = {
            "Content-Type": kind or "application/octet-stream",
            "Content-Disposition": "inline" if kind else f'attachment; filename="{name}"',
            # Even an image is shown as a document of its own: no script may run in it.
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox"
            if kind and kind.startswith("image/")
            else "default-src 'none'",
            "Cache-Control": "private, no-store",
        }
        return web.FileResponse(path, headers=headers)

    # --- helpers ---

    async def _audit(
        self, visit: Visit, action: str, target: str | None, detail: dict[str, Any]
    ) -> None:
        async with self._db.session() as session, session.begin():
            await AuditRepository(session).add(
                visit.me.staff, action, target, detail, now=self._clock()
            )


def _rating_context(language: Language, context: str) -> str:
    key = f"staff.rating_context.{context}"
    return flows.text(language, key) if key in CATALOGUE else context


def _language(request: web.Request) -> Language:
    """``?lang=`` when given, else the language cookie, else Arabic."""
    asked = request.query.get("lang")
    if asked == "en" or (asked != "ar" and request.cookies.get(LANGUAGE_COOKIE) == "en"):
        return "en"
    return "ar"


def _path(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "", reference.strip().upper())


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _login_url(request: web.Request) -> str:
    if request.method != "GET":
        return LOGIN_PATH
    return LOGIN_PATH + "?" + urlencode({"next": str(request.rel_url)})


def _next_url(raw: str | None) -> str:
    """Where to go after login: a dashboard page of ours, never another site."""
    # Our own links carry it percent-encoded: anything else (a CR/LF would split the
    # Location header) is not one of them.
    if not raw or not raw.isascii() or not raw.isprintable() or " " in raw:
        return "/staff/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not parts.path.startswith("/staff/") or "\\" in raw:
        return "/staff/"
    if parts.path.startswith(("/staff/login", "/staff/logout")):
        return "/staff/"
    return raw


def _same_origin(request: web.Request, public_url: str | None) -> bool:
    """A POST from a page of another site is refused, whatever it carries (browsers say
    where a form came from in ``Origin``; clients that do not are let through).

    Behind a reverse proxy the Host may be the proxy's upstream (127.0.0.1:8080): the
    site people use is ``server.public_url``, so an Origin naming it is ours too.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if public_url:
        public = urlsplit(public_url)
        if urlsplit(origin).scheme == public.scheme and same_origin(origin, public.netloc):
            return True
    return same_origin(origin, request.host)


def _download(filename: str, body: str) -> web.Response:
    kind = "text/csv" if filename.endswith(".csv") else "application/json"
    return web.Response(
        text=body,
        content_type=kind,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _asset(name: str) -> tuple[bytes, str]:
    body = resources.files("bot.dashboard").joinpath("static", name).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]
