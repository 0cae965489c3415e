"""Logging in and out of the dashboard, and a member's own password (/staff/password)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import web

import flows
from bot.dashboard.auth import (
    COOKIE,
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_PATH,
    SESSION_LIFETIME,
    LoginRefused,
    client_address,
    new_token,
    same_token,
    well_formed,
)
from bot.dashboard.site import PageGroup, Visit, language, same_site, see_other
from bot.desk import StaffError
from bot.passwords import verify_password


class LoginPages(PageGroup):
    """Logging in (with its own CSRF cookie), out, and changing one's own password."""

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/login", self._login_page),
            web.post("/login", self._login),
            web.post("/logout", g("agent", self._logout)),
            web.get("/password", g("agent", self._password_page)),
            web.post("/password", g("agent", self._change_password)),
        ]

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        if await self._sessions.viewer(request.cookies.get(COOKIE)) is not None:
            return see_other(_next_url(request.query.get("next")))
        return self._login_form(request, Visit(language(request)))

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
        visit = Visit(language(request), None, form)
        lang = visit.lang
        cookie = request.cookies.get(LOGIN_COOKIE)
        token = form.get("csrf")
        if (
            not same_site(request, self._public_url)
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
            session_token = await self._sessions.login(username, password, address)
        except LoginRefused as refused:
            error = flows.text(lang, "dash.login.throttled")
            response = self._login_form(request, visit, status=429, error=error)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        if session_token is None:
            error = flows.text(lang, "dash.login.failed")
            return self._login_form(request, visit, status=401, error=error)
        response = see_other(_next_url(str(form.get("next") or "")))
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
        await self._sessions.logout(visit.me)
        response = see_other(LOGIN_PATH + "?bye=1")
        response.del_cookie(COOKIE, path=COOKIE_PATH)
        return response

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
        return see_other("/staff/password?done=password")


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
