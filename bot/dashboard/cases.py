"""The requests list and the case files (/staff/, /staff/requests/...) and attachments."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

import flows
from bot.channels import channel_names
from bot.dashboard.feedback_views import on_case_page
from bot.dashboard.site import PageGroup, Visit, download, see_other
from bot.dashboard.views import case_view, request_rows, requests_csv
from bot.desk import StaffError
from flows.cleaning import clean_line
from flows.lifecycle import NOTE_REQUIRED, UNDECIDED
from flows.types import Language
from storage.keyring import PrivacyKeyError
from storage.models import id_of
from storage.repositories import RequestRepository

log = logging.getLogger(__name__)

PAGE_SIZE = 50
_MEDIA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9]{1,8}")
_INLINE_MEDIA = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}


class CasePages(PageGroup):
    """Requests filtered and paged, their CSV, a case file with its actions, and its attachments."""

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/", g("agent", self._requests)),
            web.get("/requests.csv", g("manager", self._requests_csv)),
            web.get("/requests/{reference}", g("agent", self._case)),
            web.get("/requests/{reference}/export.{form:json|csv}", g("agent", self._case_export)),
            web.post("/requests/{reference}/status", g("agent", self._set_status)),
            web.post("/requests/{reference}/note", g("agent", self._add_note)),
            web.post("/requests/{reference}/reply", g("agent", self._write_to)),
            web.get("/media/{name}", g("agent", self._media_file)),
        ]

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
            "rows": request_rows(
                shown, lang, self._settings, self._clock(), await self._desk.open_twins()
            ),
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
        # What was searched for may be a name or a national ID: the log says only that.
        logged = {k: v for k, v in filters.items() if k != "q"} | (
            {"q": "…"} if "q" in filters else {}
        )
        await self._audit(visit, "export_requests", None, {"filters": logged, "rows": len(found)})
        return download("requests.csv", requests_csv(found, self._settings, self._clock()))

    async def _case(
        self, request: web.Request, visit: Visit, *, status: int = 200, error: str | None = None
    ) -> web.StreamResponse:
        reference = request.match_info["reference"]
        try:
            case = await self._desk.case_file(reference, read_by=visit.me.staff, where="dashboard")
        except StaffError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        twin = case.request.id in await self._desk.open_twins()
        household = await self._desk.household(case.request)
        view = case_view(
            case, visit.lang, self._settings, self._clock(), twin=twin, household=household
        )
        form = visit.form
        linked = await on_case_page(
            self._db, self._clock(), id_of(case.request), visit.me.role, visit.lang
        )
        context = {
            "case": view,
            "feedback": linked,
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
        return download(f"{name}.{form}", body)

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
        return see_other(f"/staff/requests/{_case_path(reference)}?done={done}")

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
            self._live.publish("handoff", id=handoff.id, change="outreach")
            return handoff

        return await self._case_action(request, visit, write, "reply")

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
        try:
            content = await asyncio.to_thread(self._media.read, f"media/{name}")
        except PrivacyKeyError as error:
            log.warning("media file not served: %s", error)
            content = None
        if content is None:
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
        return web.Response(body=content, headers=headers)


def _case_path(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "", reference.strip().upper())
