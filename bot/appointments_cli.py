"""`tawasul appointments …` and `tawasul visits …`: the appointments list and field visits
from the command line (local times in ``organization.timezone``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime

from bot.config import Settings
from bot.followups import FollowUpPlanner, FollowUpPolicy
from bot.visits import OUTCOMES, AppointmentError, VisitDesk
from storage.cluster import Announcements
from storage.db import Database


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, not {value!r}") from None


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The ``appointments`` and ``visits`` commands, on the main parser."""
    appointments = command("appointments", "interviews and field visits, one line each")
    actions = appointments.add_subparsers(
        dest="appointments_command", required=True, metavar="ACTION"
    )
    listing = actions.add_parser("list", help="YYYY-MM-DD HH:MM, reference, branch, status")
    listing.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="that day only")

    visits = command("visits", "field visits: scheduled by staff, confirmed by the beneficiary")
    visit_actions = visits.add_subparsers(dest="visits_command", required=True, metavar="ACTION")
    schedule = visit_actions.add_parser("schedule", help="propose a visit; told at once")
    schedule.add_argument("reference", metavar="REQ")
    schedule.add_argument("--at", required=True, metavar='"YYYY-MM-DD HH:MM"')
    schedule.add_argument("--by", metavar="USERNAME", help="the staff member who goes")
    visit_actions.add_parser("list", help="visits from today on")
    for outcome in OUTCOMES:
        settle = visit_actions.add_parser(outcome, help=f"mark it {outcome}, noted in the case")
        settle.add_argument("reference", metavar="APT")
        settle.add_argument("--note", metavar="TEXT")
        settle.add_argument("--by", metavar="USERNAME")


async def run(
    database: Database,
    settings: Settings,
    args: argparse.Namespace,
    now: Callable[[], datetime],
) -> None:
    """Carry out one ``appointments`` or ``visits`` action; a refusal raises
    ``AppointmentError``."""
    # Follow-ups and messages are written here: running servers hear of them at once on
    # PostgreSQL (``Announcements``), on SQLite at their next look (the sweep, the outbox's).
    planner = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
    news = Announcements(database)
    desk = VisitDesk(
        database,
        settings.flow_settings(),
        now,
        followups=planner,
        on_outbox=news.outbox,
        on_followups=news.followups,
    )
    zone = settings.organization.timezone
    if args.command == "appointments":
        for listed in await desk.appointments(args.date):
            print(listed.line(zone))
        return
    action = args.visits_command
    if action == "list":
        for listed in await desk.visits():
            print(listed.line(zone))
    elif action == "schedule":
        visit = await desk.schedule(args.reference, args.at, by=args.by)
        await news.send()
        print(f"{visit.reference} proposed for {args.reference}; the beneficiary is told at once")
    elif action in OUTCOMES:
        settled = await desk.settle(args.reference, action, note=args.note, by=args.by)
        await news.send()
        print(f"{settled.reference} is now {settled.status}")
    else:  # argparse allows nothing else
        raise AppointmentError("outcome", outcome=action, choices=", ".join(OUTCOMES))
