"""What every dashboard page group shares: who is visiting (``Visit``), the guard, the
page drawing, the security headers, the static assets, redirects and downloads.

Every guarded route: no session -> the login page (303), or 401 for the live event
stream; a role too low -> 403; a POST from another site or without the session's CSRF
token -> 403 with nothing changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web

import flows
from bot.config import Settings
from bot.dashboard.auth import COOKIE, COOKIE_PATH, LOGIN_PATH, Sessions, Viewer, same_token
from bot.dashboard.live import LiveInbox
from bot.dashboard.views import when
from bot.desk import StaffDesk
from bot.media import MediaStore
from flows.catalogue import CATALOGUE
from flows.text import localize_digits
from flows.types import Language
from handlers.base import same_origin
from storage.db import Database
from storage.repositories import AuditRepository

LANGUAGE_COOKIE = "tawasul_staff_lang"
_ASSETS = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
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


class Site:
    """The dashboard's services and page machinery, handed to every page group."""

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        desk: StaffDesk,
        media: MediaStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = database
        self.desk = desk
        self.media = media
        self.clock = clock
        self.settings = settings.flow_settings()
        self.organization = settings.organization.name
        self.secure = (settings.server.public_url or "").startswith("https:")
        self.public_url = settings.server.public_url
        self.proxies = tuple(settings.server.trusted_proxies)
        self.live = LiveInbox()
        self.sessions = Sessions(database, clock)
        self._assets = {name: _asset(name) for name in _ASSETS}

    def local(self, moment: datetime) -> str:
        return when(moment, "en", self.settings.timezone)  # the page writes its own digits

    def guard(
        self, role: str, handler: Handler, *, stream: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            viewer = await self.sessions.viewer(request.cookies.get(COOKIE))
            if viewer is None:
                if stream:
                    return web.json_response({"error": "login required"}, status=401)
                return see_other(login_url(request))
            visit = Visit(language(request), viewer)
            if not viewer.may(role):
                if stream:
                    return web.json_response({"error": "forbidden"}, status=403)
                return self.problem(request, visit, 403, "dash.error.forbidden")
            if request.method == "POST":
                if not same_site(request, self.public_url):
                    return self.problem(request, visit, 403, "dash.error.csrf")
                form = await request.post()
                token = form.get("csrf")
                if not isinstance(token, str) or not same_token(token, viewer.csrf_token):
                    return self.problem(request, visit, 403, "dash.error.csrf")
                visit = Visit(visit.lang, viewer, form)
            return await handler(request, visit)

        return guarded

    @web.middleware
    async def pages(
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
            visit = Visit(language(request))
            response = self.problem(request, visit, 404, "dash.error.not_found")
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
                    secure=self.secure,
                )
        return response

    def render(
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
            "organization": self.organization,
            "section": section,
            "asset": self.asset_url,
            "digits": lambda value: localize_digits(str(value), lang),
            "flash": t(f"dash.done.{done}") if f"dash.done.{done}" in CATALOGUE else None,
            "error": None,
        }
        return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)

    def problem(
        self, request: web.Request, visit: Visit, status: int, key: str, **params: object
    ) -> web.Response:
        text = flows.text(visit.lang, key, **params)
        return self.render(request, visit, "problem.html", {"message": text}, status=status)

    def asset_url(self, name: str) -> str:
        return f"/staff/static/{name}?v={self._assets[name][1]}"

    async def static(self, request: web.Request) -> web.Response:
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

    async def audit(
        self, visit: Visit, action: str, target: str | None, detail: dict[str, Any]
    ) -> None:
        async with self.db.session() as session, session.begin():
            await AuditRepository(session).add(
                visit.me.staff, action, target, detail, now=self.clock()
            )


class PageGroup:
    """A group of dashboard pages: its ``routes()`` are mounted by ``bot.dashboard.app``;
    its handlers take ``(request, visit)`` and reach the services through these names."""

    def __init__(self, site: Site) -> None:
        self._db = site.db
        self._desk = site.desk
        self._media = site.media
        self._clock = site.clock
        self._settings = site.settings
        self._secure = site.secure
        self._public_url = site.public_url
        self._proxies = site.proxies
        self._live = site.live
        self._sessions = site.sessions
        self._guard = site.guard
        self._render = site.render
        self._problem = site.problem
        self._audit = site.audit
        self._local = site.local

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError


def language(request: web.Request) -> Language:
    """``?lang=`` when given, else the language cookie, else Arabic."""
    asked = request.query.get("lang")
    if asked == "en" or (asked != "ar" and request.cookies.get(LANGUAGE_COOKIE) == "en"):
        return "en"
    return "ar"


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def login_url(request: web.Request) -> str:
    if request.method != "GET":
        return LOGIN_PATH
    return LOGIN_PATH + "?" + urlencode({"next": str(request.rel_url)})


def same_site(request: web.Request, public_url: str | None) -> bool:
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


def download(filename: str, body: str) -> web.Response:
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
