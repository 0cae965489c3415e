"""Staff administration (/staff/admin/staff): members added, removed, passwords reset."""

from __future__ import annotations

import asyncio

from aiohttp import web

import flows
from bot.dashboard.calendar_feed import calendar_url
from bot.dashboard.site import PageGroup, Visit, see_other
from bot.dashboard.views import audit_lines
from bot.desk import StaffError
from bot.passwords import hash_password
from flows.types import Language
from storage.models import StaffRole
from storage.repositories import AuditRepository, StaffRepository

MIN_PASSWORD = 10  # as `tawasul staff add --password-stdin`


class StaffAdminPages(PageGroup):
    """The members, the recent audit log, and an admin's actions on them (through the desk)."""

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/admin/staff", g("admin", self._staff)),
            web.post("/admin/staff", g("admin", self._add_staff)),
            web.post("/admin/staff/{username}/remove", g("admin", self._remove_staff)),
            web.post("/admin/staff/{username}/password", g("admin", self._reset_password)),
        ]

    async def _staff(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        lang: Language = visit.lang
        async with self._db.session() as session:
            members = await StaffRepository(session).list()
            entries = await AuditRepository(session).recent(limit=50)
        form = visit.form
        base = self._public_url or f"{request.scheme}://{request.host}"
        keyring = self._db.keyring
        context = {
            "members": members,
            # Each member's calendar link, for an admin to hand to one who does not log in.
            "feeds": {m.username: calendar_url(base, m, keyring) for m in members},
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
        return see_other("/staff/admin/staff?done=staff_added")

    async def _remove_staff(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        username = request.match_info["username"].strip().lower()
        if username == visit.me.username:
            error = flows.text(visit.lang, "dash.staff.not_yourself")
            return await self._staff(request, visit, status=400, error=error)
        try:
            await self._desk.remove_member(username, by=visit.me.staff)
        except StaffError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        return see_other("/staff/admin/staff?done=staff_removed")

    async def _reset_password(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        """An admin gives a member a new password (to tell them in person); audited."""
        username = request.match_info["username"]
        try:
            await self._desk.set_password(username, visit.field("password"), by=visit.me.staff)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._staff(request, visit, status=400, error=error)
        return see_other("/staff/admin/staff?done=password_reset")
