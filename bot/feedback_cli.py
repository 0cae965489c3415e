"""`tawasul feedback …`: suggestions, complaints and thanks from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.feedback import FeedbackDesk, is_overdue
from bot.feedback_alerts import facts, line
from bot.followups import FollowUpPlanner, FollowUpPolicy
from storage.cluster import Announcements
from storage.db import Database
from storage.feedback import KINDS, STATUSES


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The ``feedback`` command and its actions, on the main parser."""
    feedback = command("feedback", "suggestions, complaints and thanks, followed up to an answer")
    actions = feedback.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="feedback, newest first (⏰: past its deadline)")
    listing.add_argument("--kind", choices=KINDS, metavar="K", help=", ".join(KINDS))
    listing.add_argument("--status", choices=STATUSES, metavar="S", help=", ".join(STATUSES))
    listing.add_argument("--overdue", action="store_true", help="unanswered past its deadline")
    show = actions.add_parser("show", help="one feedback and its timeline")
    show.add_argument("reference", metavar="REF")
    answer = actions.add_parser("answer", help="answer it: the beneficiary gets it at once")
    answer.add_argument("reference", metavar="REF")
    answer.add_argument("text", metavar="TEXT")
    answer.add_argument("--by", metavar="USERNAME", help="the staff member answering")
    status = actions.add_parser("set-status", help="received, in_progress or closed")
    status.add_argument("reference", metavar="REF")
    status.add_argument("status", metavar="STATUS")
    status.add_argument("--note", metavar="TEXT")
    status.add_argument("--by", metavar="USERNAME", help="the staff member acting")


async def run(
    database: Database,
    settings: Settings,
    args: argparse.Namespace,
    now: Callable[[], datetime],
) -> None:
    """Carry out one ``feedback`` action; a refusal raises ``FeedbackError``."""
    # Follow-ups and messages are written here: running servers hear of them at once on
    # PostgreSQL (``Announcements``), on SQLite at their next look (the sweep, the outbox's).
    planner = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
    news = Announcements(database)
    desk = FeedbackDesk(
        database,
        settings.flow_settings(),
        now,
        followups=planner,
        on_outbox=news.outbox,
        on_followups=news.followups,
    )
    zone = ZoneInfo(settings.organization.timezone)
    action = args.feedback_command
    if action == "list":
        found = await desk.list_feedback(kind=args.kind, status=args.status, overdue=args.overdue)
        for feedback in found:
            print(line(facts(feedback), overdue=is_overdue(feedback, now())))
    elif action == "show":
        case = await desk.show(args.reference, where="cli")
        feedback = case.feedback
        print(f"{feedback.reference}  {feedback.kind}  {feedback.status}  ({feedback.channel})")
        if feedback.due_at is not None:
            late = "  OVERDUE" if case.overdue else ""
            print(f"answer due {feedback.due_at.astimezone(zone).date().isoformat()}{late}")
        if case.request_reference:
            print(f"about {case.request_reference}")
        if feedback.may_contact is not None:
            print(f"may be contacted: {'yes' if feedback.may_contact else 'no'}")
        if feedback.named_staff:
            print(f"thanks for: {feedback.named_staff}")
        for attachment in feedback.attachments:
            print(f"attachment: {attachment.get('url', '')}")
        print(feedback.text)
        for event in case.events:
            at = event.created_at.astimezone(zone).isoformat(timespec="seconds")
            actor = f" [{event.by}]" if event.by else ""
            moved = f" -> {event.to_status}" if event.to_status else ""
            words = f"  {event.text}" if event.text else ""
            print(f"{at}  {event.kind}{moved}{actor}{words}")
    elif action == "answer":
        feedback = await desk.answer(args.reference, args.text, by=args.by)
        await news.send()
        print(f"{feedback.reference} answered; the beneficiary will get it at once")
    elif action == "set-status":
        feedback = await desk.set_status(args.reference, args.status, by=args.by, note=args.note)
        await news.send()
        print(f"{feedback.reference} is now {feedback.status}")
