"""The staff dashboard under /staff/, assembled: one page group per module, mounted here.

Page groups: ``login`` (login, logout, one's own password), ``cases`` (the requests list,
case files, attachments), ``handoffs`` (the live inbox), ``ratings`` (the report),
``staff_admin`` (members and the audit log), ``knowledge`` and ``feedback`` (through
``FeedbackDesk``). What they share (the guard, page drawing, security headers) is
``bot.dashboard.site``. Every staff action goes through a desk (``StaffDesk`` for
requests and handoffs), so the beneficiary is told exactly as from the command line or
the Telegram staff group, and the action lands in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.config import Settings
from bot.dashboard.appointments import AppointmentPages
from bot.dashboard.cases import CasePages
from bot.dashboard.feedback import FeedbackPages
from bot.dashboard.handoffs import HandoffPages
from bot.dashboard.knowledge import KnowledgePages
from bot.dashboard.login import LoginPages
from bot.dashboard.ratings import RatingPages
from bot.dashboard.site import PageGroup, Site
from bot.dashboard.staff_admin import StaffAdminPages
from bot.desk import StaffDesk
from bot.engine import HandleResult
from bot.feedback import FeedbackDesk
from bot.media import MediaStore
from bot.visits import VisitDesk
from flows.types import InboundMessage
from storage.db import Database


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
        feedback: FeedbackDesk | None = None,
        visits: VisitDesk | None = None,
    ) -> None:
        self.site = Site(settings=settings, database=database, desk=desk, media=media, clock=clock)
        self.live = self.site.live
        self.sessions = self.site.sessions
        self._feedback = feedback or FeedbackDesk(database, settings.flow_settings(), clock)
        self._handoffs = HandoffPages(self.site)
        # A new page group: its module beside this one, and one line here.
        self._groups: list[PageGroup] = [
            LoginPages(self.site),
            CasePages(self.site),
            self._handoffs,
            RatingPages(self.site),
            StaffAdminPages(self.site),
            KnowledgePages(self.site),
            FeedbackPages(self.site, self._feedback),
            AppointmentPages(self.site, visits),
        ]

    def app(self) -> web.Application:
        site = self.site
        app = web.Application(middlewares=[site.pages])
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.PackageLoader("bot.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            default_helpers=False,
        )
        app.add_routes([web.get("/static/{name}", site.static)])
        for group in self._groups:
            app.add_routes(group.routes())
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        self.live.close()  # open event streams end, so the server stops without waiting

    def heard(self, message: InboundMessage, result: HandleResult) -> None:
        """The server's receive hook: new handoffs and messages into them go live."""
        self._handoffs.heard(message, result)
