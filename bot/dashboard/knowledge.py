"""The dashboard's knowledge base page, /staff/knowledge: entries listed, added, edited and
removed (checked like an import, audited, live at once), and the unanswered questions,
most frequent first, each a click away from becoming an entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

import flows
from bot.dashboard.site import PageGroup, Site, Visit, see_other
from bot.dashboard.views import when
from bot.knowledge import EntryFields, KnowledgeDesk, KnowledgeFileError, repository, seed_example
from flows.knowledge import PLACEHOLDERS

PATH = "/staff/knowledge"

# The answer column of the list: enough to recognise an entry on a phone.
_PREVIEW = 160


class KnowledgePages(PageGroup):
    """The routes of /staff/knowledge; its actions go through ``KnowledgeDesk`` (audited)."""

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self._knowledge = KnowledgeDesk(site.db)

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/knowledge", g("agent", self._page)),
            web.post("/knowledge", g("agent", self._add)),
            web.get("/knowledge/{id:[0-9]{1,18}}", g("agent", self._edit)),
            web.post("/knowledge/{id:[0-9]{1,18}}", g("agent", self._change)),
            web.post("/knowledge/{id:[0-9]{1,18}}/remove", g("agent", self._remove)),
        ]

    async def _page(
        self,
        request: web.Request,
        visit: Visit,
        *,
        editing: int | None = None,
        kept: Mapping[str, str] | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        lang = visit.lang
        async with self._db.session() as session, session.begin():
            await seed_example(session, self._clock())
            base = repository(session)
            rows = await base.rows()
            unanswered = await base.unanswered()
        form = dict(kept or {})
        if not form and editing is not None:
            row = next((r for r in rows if r.id == editing), None)
            if row is None:
                return self._problem(request, visit, 404, "dash.error.not_found")
            form = {
                "question": row.question,
                "alternatives": "\n".join(row.alternatives or ()),
                "answer": row.answer,
                "language": row.language,
                "topic": row.topic,
            }
        source = request.query.get("from", "")
        if not form and source.isdigit():
            chosen = next((u for u in unanswered if u.id == int(source)), None)
            if chosen is not None:
                form = {"question": chosen.question, "language": chosen.language}
                form["unanswered"] = source
        done = request.query.get("done")
        flash = (
            flows.text(lang, f"dash.knowledge.{done}")
            if done in ("added", "changed", "removed")
            else None
        )
        context: dict[str, Any] = {
            "entries": [
                {
                    "id": row.id,
                    "question": row.question,
                    "alternatives": len(row.alternatives or ()),
                    "answer": _preview(row.answer),
                    "language": row.language,
                    "topic": row.topic,
                }
                for row in rows
            ],
            "unanswered": [
                {
                    "id": u.id,
                    "question": u.question,
                    "count": u.count,
                    "last": when(u.last_asked_at, lang, self._settings.timezone),
                    "language": u.language,
                }
                for u in unanswered
            ],
            "editing": editing,
            "kept": form,
            "placeholders": " ".join("{" + name + "}" for name in PLACEHOLDERS),
            "error": error,
            "flash": flash,
        }
        return self._render(
            request, visit, "knowledge.html", context, status=status, section="knowledge"
        )

    async def _edit(self, request: web.Request, visit: Visit) -> web.Response:
        return await self._page(request, visit, editing=int(request.match_info["id"]))

    async def _add(self, request: web.Request, visit: Visit) -> web.Response:
        fields, kept = _fields(visit)
        source = visit.field("unanswered")
        try:
            await self._knowledge.add(
                fields,
                visit.me.staff,
                self._clock(),
                unanswered=int(source) if source.isdigit() else 0,
            )
        except KnowledgeFileError as exc:
            error = _reason(visit, exc)
            return await self._page(request, visit, kept=kept, error=error, status=400)
        return see_other(f"{PATH}?done=added")

    async def _change(self, request: web.Request, visit: Visit) -> web.Response:
        entry_id = int(request.match_info["id"])
        fields, kept = _fields(visit)
        try:
            await self._knowledge.change(entry_id, fields, visit.me.staff, self._clock())
        except KnowledgeFileError as exc:
            error = _reason(visit, exc)
            return await self._page(
                request, visit, editing=entry_id, kept=kept, error=error, status=400
            )
        return see_other(f"{PATH}?done=changed")

    async def _remove(self, request: web.Request, visit: Visit) -> web.Response:
        try:
            await self._knowledge.remove(
                int(request.match_info["id"]), visit.me.staff, self._clock()
            )
        except KnowledgeFileError:
            return self._problem(request, visit, 404, "dash.error.not_found")
        return see_other(f"{PATH}?done=removed")


def _fields(visit: Visit) -> tuple[EntryFields, dict[str, str]]:
    kept = {
        name: visit.field(name)
        for name in ("question", "alternatives", "answer", "language", "topic", "unanswered")
    }
    alternatives = "|".join(line for line in kept["alternatives"].splitlines() if line.strip())
    fields = EntryFields(
        question=kept["question"],
        answer=kept["answer"],
        alternatives=alternatives,
        language=kept["language"],
        topic=kept["topic"],
    )
    return fields, kept


def _reason(visit: Visit, error: KnowledgeFileError) -> str:
    if error.key:
        return flows.text(visit.lang, error.key, **error.params)
    return str(error)


def _preview(answer: str) -> str:
    flat = " ".join(answer.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"
