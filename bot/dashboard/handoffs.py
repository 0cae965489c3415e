"""The live handoff inbox: /staff/handoffs, its event stream, take, close and reply."""

from __future__ import annotations

import asyncio

from aiohttp import web

import flows
from bot.dashboard.auth import COOKIE
from bot.dashboard.site import PageGroup, Visit, see_other
from bot.dashboard.views import handoff_cards, live_text
from bot.desk import StaffError
from bot.engine import HandleResult
from flows.types import InboundMessage

HEARTBEAT_SECONDS = 15.0  # an SSE comment line; also when the session is checked again


class HandoffPages(PageGroup):
    """Open handoffs as cards, kept live by server-sent events."""

    def routes(self) -> list[web.RouteDef]:
        g = self._guard
        return [
            web.get("/handoffs", g("agent", self._handoffs)),
            web.get("/handoffs/events", g("agent", self._events, stream=True)),
            web.post("/handoffs/{id:[0-9]{1,18}}/take", g("agent", self._take)),
            web.post("/handoffs/{id:[0-9]{1,18}}/close", g("agent", self._close)),
            web.post("/handoffs/{id:[0-9]{1,18}}/reply", g("agent", self._reply)),
        ]

    def heard(self, message: InboundMessage, result: HandleResult) -> None:
        """The server's receive hook: new handoffs and messages into them go live."""
        for handoff_id in result.handoffs_opened:
            self._live.publish("handoff", id=handoff_id, change="opened")
        if result.relayed_to is not None:
            self._live.publish(
                "message",
                handoff=result.relayed_to,
                direction="in",
                text=live_text(message.text, len(message.media)),
                at=self._local(message.received_at),
            )
        for handoff_id in result.handoffs_left:
            self._live.publish("handoff", id=handoff_id, change="left")

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
            self._live.publish("handoff", id=handoff_id, change="taken")
        return see_other(
            f"/staff/handoffs?done={'taken' if taken else 'already_taken'}#h{handoff_id}"
        )

    async def _close(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        handoff_id = int(request.match_info["id"])
        if await self._desk.close(handoff_id, visit.me.staff) is not None:
            self._live.publish("handoff", id=handoff_id, change="closed")
        return see_other("/staff/handoffs?done=closed")

    async def _reply(self, request: web.Request, visit: Visit) -> web.StreamResponse:
        handoff_id = int(request.match_info["id"])
        text = visit.field("text")
        try:
            await self._desk.reply(handoff_id, visit.me.staff, text)
        except StaffError as problem:
            error = flows.text(visit.lang, "dash.error.refused", reason=str(problem))
            return await self._handoffs(request, visit, status=400, error=error)
        self._live.publish(
            "message",
            handoff=handoff_id,
            direction="out",
            text=live_text(text.strip(), 0),
            at=self._local(self._clock()),
        )
        return see_other(f"/staff/handoffs?done=reply#h{handoff_id}")

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
        with self._live.subscribe() as queue:
            try:
                await response.write(b"retry: 3000\n\n")
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        if await self._sessions.viewer(request.cookies.get(COOKIE)) is None:
                            break  # logged out, expired or removed meanwhile
                        await response.write(b": still here\n\n")
                        continue
                    if event is None:
                        break
                    await response.write(event.encode())
            except ConnectionResetError:
                pass  # the page was closed: the next write after it finds out
        return response
