"""The `tawasul` command line: chat on the console and look after the database."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import getpass
import io
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from bot import appointments_cli, backup, feedback_cli
from bot.backup import BackupError
from bot.config import ConfigError, Settings, load_settings, resolve_config_path
from bot.desk import MIN_PASSWORD_CHARS, StaffDesk, StaffError
from bot.engine import ConversationEngine, utcnow
from bot.feedback import FeedbackError
from bot.followups import FollowUpPlanner, FollowUpPolicy
from bot.knowledge import (
    KnowledgeFileError,
    import_base,
    repository,
    seed_example,
    write_base,
)
from bot.media import MediaStore
from bot.passwords import hash_password
from bot.server import serve
from bot.texts import export_po
from bot.visits import AppointmentError
from flows.catalogue import use_own_wording
from flows.inquiry import answer_text
from flows.knowledge import KnowledgeIndex, question_key
from handlers.console import ConsoleChannel
from storage.cluster import Announcements
from storage.db import Database, normalize_url
from storage.keyring import (
    Keyring,
    PrivacyKeyError,
    key_file_for,
    new_key_text,
    write_key_file,
)
from storage.models import StaffRole
from storage.privacy import reencrypt
from storage.repositories import FollowUpRepository, MessageRepository, StaffRepository

log = logging.getLogger(__name__)

STDIN_FD = 0


class CommandError(Exception):
    """A failure to report to the operator as one line, with exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tawasul", description="Tawasul: a charity's conversations with its beneficiaries."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text)

    chat = command("chat", "talk to the bot as a beneficiary, one line per message")
    chat.add_argument("--user", default="console", metavar="ID", help="the console user's id")

    serve = command("serve", "run the web server with every configured channel and the outbox")
    serve.add_argument(
        "--telegram-polling",
        action="store_true",
        help="fetch Telegram updates by polling (development without a public URL)",
    )

    staff = command("staff", "the charity's staff members")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    add = staff_commands.add_parser("add", help="register a staff member")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    add.add_argument("--telegram-id", type=int, metavar="ID", help="their Telegram user id")
    add.add_argument(
        "--password-stdin", action="store_true", help="read a dashboard password from stdin"
    )
    password = staff_commands.add_parser(
        "password",
        help="set a staff member's dashboard password (asked twice at a terminal, else stdin)",
    )
    password.add_argument("username")
    staff_commands.add_parser("list", help="list active staff members")
    remove = staff_commands.add_parser("remove", help="deactivate a staff member")
    remove.add_argument("username")

    requests = command("requests", "support requests and their case files")
    request_commands = requests.add_subparsers(
        dest="requests_command", required=True, metavar="ACTION"
    )
    listing = request_commands.add_parser("list", help="list requests, oldest first")
    listing.add_argument("--status", metavar="S")
    listing.add_argument("--overdue", action="store_true", help="decision date passed, undecided")
    show = request_commands.add_parser("show", help="one request and its case timeline")
    show.add_argument("reference")
    set_status = request_commands.add_parser("set-status", help="move a request on")
    set_status.add_argument("reference")
    set_status.add_argument("status")
    set_status.add_argument("--note", metavar="TEXT")
    set_status.add_argument("--by", metavar="USERNAME", help="the staff member acting")
    erase = request_commands.add_parser(
        "erase", help="remove the applicant's personal data, keep anonymous statistics"
    )
    erase.add_argument("reference")
    erase.add_argument("--by", metavar="USERNAME", help="the staff member acting (audited)")
    export = request_commands.add_parser("export", help="the whole case file")
    export.add_argument("reference")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument(
        "--by",
        metavar="USERNAME",
        help="the staff member taking it out (audited; masked unless a manager or admin)",
    )

    jobs = command("jobs", "scheduled follow-ups (reminders, check-ins, staff alerts)")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    job_commands.add_parser("list", help="pending follow-ups, soonest first: kind, due, key")

    knowledge = command("knowledge", "the knowledge base that answers beneficiaries' questions")
    knowledge_commands = knowledge.add_subparsers(
        dest="knowledge_command", required=True, metavar="ACTION"
    )
    imported = knowledge_commands.add_parser(
        "import", help="replace the whole base with a CSV or .xlsx file"
    )
    imported.add_argument("file", metavar="FILE")
    exported = knowledge_commands.add_parser("export", help="write the base to a CSV or .xlsx file")
    exported.add_argument("file", metavar="FILE")
    knowledge_commands.add_parser("list", help="every entry: id, language, topic, question")
    asked = knowledge_commands.add_parser(
        "ask", help="answer as the bot would (exit 0 sure, 3 did-you-mean, 1 nothing)"
    )
    asked.add_argument("--lang", choices=("ar", "en"), default=None)
    asked.add_argument("text", nargs="+", metavar="TEXT")
    knowledge_commands.add_parser(
        "unanswered", help="questions the base could not answer, most frequent first"
    )

    feedback_cli.add_commands(command)
    appointments_cli.add_commands(command)

    backup = command("backup", "copy the database and media folder into DIR (while serving)")
    backup.add_argument("directory", metavar="DIR", help="a new or empty folder")
    restore = command("restore", "put a backup made by `tawasul backup` back (server stopped)")
    restore.add_argument("directory", metavar="DIR")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that already holds data"
    )

    texts = command("texts", "the bot's sentences: for translators, and the charity's own")
    text_commands = texts.add_subparsers(dest="texts_command", required=True, metavar="ACTION")
    export_po = text_commands.add_parser(
        "export-po", help="write tawasul.pot, ar.po and en.po (gettext) into DIR"
    )
    export_po.add_argument("directory", metavar="DIR")
    text_commands.add_parser("check", help="check the files of texts.overrides and count them")

    beneficiaries = command("beneficiaries", "applicants: the Saudi PDPL's rights")
    beneficiary_commands = beneficiaries.add_subparsers(
        dest="beneficiaries_command", required=True, metavar="ACTION"
    )
    forget = beneficiary_commands.add_parser(
        "erase", help="remove a person's data by national ID, keep anonymous statistics"
    )
    forget.add_argument("--national-id", required=True, metavar="ID")
    forget.add_argument("--by", metavar="USERNAME", help="the staff member acting (audited)")

    privacy = command("privacy", "personal data: encryption keys")
    privacy_commands = privacy.add_subparsers(
        dest="privacy_command", required=True, metavar="ACTION"
    )
    privacy_commands.add_parser(
        "purge", help="erase now whom privacy.retention has expired (the server does it daily)"
    )
    privacy_commands.add_parser(
        "rotate-key",
        help="re-encrypt personal data under privacy.key (with SQLite and no key set: "
        "under a new key in the key file)",
    )

    db = command("db", "database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply every pending schema migration")
    _config_everywhere(parser)
    return parser


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` on every level, so it may stand anywhere on the line
    (``tawasul --config F requests list`` and ``tawasul requests list --config F``).

    No default: a level that was not given it leaves the one another level read.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML file (else $TAWASUL_CONFIG, else ./config.toml, else the embedded default)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _config_everywhere(sub)


def configure_logging(command: str) -> None:
    # The console's stdout is the conversation: only problems go to stderr there.
    logging.basicConfig(
        level=logging.INFO if command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # APScheduler says "Running job" and "executed successfully" at INFO for the sweep,
    # every minute; our own lines say what the follow-ups did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.command)
    try:
        settings = load_settings(resolve_config_path(getattr(args, "config", None)))
        use_own_wording(settings.texts.wording)  # checked as the configuration was read
        if args.command == "chat":
            asyncio.run(chat(settings, args.user))
        elif args.command == "serve":
            asyncio.run(run_server(settings, args.telegram_polling))
        elif args.command == "db":
            asyncio.run(db_upgrade(settings))
        elif args.command == "beneficiaries":
            asyncio.run(beneficiaries_command(settings, args))
        elif args.command == "privacy" and args.privacy_command == "purge":
            asyncio.run(purge(settings))
        elif args.command == "privacy":
            asyncio.run(rotate_key(settings))
        elif args.command == "staff":
            asyncio.run(staff_command(settings, args))
        elif args.command == "requests":
            asyncio.run(requests_command(settings, args))
        elif args.command == "jobs":
            asyncio.run(jobs_command(settings))
        elif args.command == "knowledge":
            return asyncio.run(knowledge_command(settings, args))
        elif args.command == "feedback":
            asyncio.run(feedback_command(settings, args))
        elif args.command in ("appointments", "visits"):
            asyncio.run(appointments_command(settings, args))
        elif args.command == "texts":
            texts_command(settings, args)
        elif args.command == "backup":
            backup_command(settings, Path(args.directory))
        elif args.command == "restore":
            asyncio.run(restore_command(settings, Path(args.directory), force=args.force))
    except ConfigError as exc:
        print(f"tawasul: {exc}", file=sys.stderr)
        return 2
    except (
        CommandError,
        StaffError,
        KnowledgeFileError,
        BackupError,
        FeedbackError,
        AppointmentError,
    ) as exc:
        print(f"tawasul: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tawasul chat | head`): nothing left to say to anyone.
        sys.stderr.close()
        return 0
    return 0


def texts_command(settings: Settings, args: argparse.Namespace) -> None:
    wording = settings.texts.wording
    changed = sum(len(languages) for languages in wording.values())
    if args.texts_command == "export-po":
        for path in export_po(Path(args.directory), wording):
            print(path)
    else:
        files = len(settings.texts.overrides)
        print(
            f"texts.overrides: {changed} sentence(s) in the charity's own wording, "
            f"from {files} file(s); all usable"
        )


def keyring_of(settings: Settings) -> Keyring | None:
    """The configured privacy keys; None leaves a SQLite database its key file."""
    privacy = settings.privacy
    if privacy.key is None:
        if privacy.previous_keys:
            raise ConfigError("privacy.previous_keys: needs privacy.key, the new key")
        return None
    try:
        return Keyring.from_text(
            privacy.key.get_secret_value(),
            [key.get_secret_value() for key in privacy.previous_keys],
        )
    except PrivacyKeyError as exc:
        raise ConfigError(str(exc)) from None


async def open_database(settings: Settings) -> Database:
    """Connect and bring the schema up to date, or fail with one readable line."""
    keyring = keyring_of(settings)
    try:
        database = Database(settings.database.url, keyring=keyring)
    except Exception as exc:
        raise ConfigError(f"database.url: cannot be used ({type(exc).__name__})") from None
    try:
        await database.upgrade()
    except PrivacyKeyError as exc:
        await database.dispose()
        raise CommandError(str(exc)) from None
    except Exception as exc:
        await database.dispose()
        log.debug("database upgrade failed", exc_info=True)
        raise CommandError(f"cannot open the database ({type(exc).__name__}: {exc})") from None
    return database


async def staff_command(settings: Settings, args: argparse.Namespace) -> None:
    database = await open_database(settings)
    try:
        # Adding and removing go through the staff desk, as on the dashboard: audited.
        desk = StaffDesk(database, settings.flow_settings(), utcnow)
        if args.staff_command == "password":
            await desk.staff_member(args.username)  # before asking for a password
            staff = await desk.set_password(args.username, read_password(), by=None)
            print(f"new password set for {staff.username}; their dashboard logins ended")
        elif args.staff_command == "add":
            password_hash = None
            if args.password_stdin:
                password_hash = hash_password(read_password())
            try:
                await desk.add_member(
                    args.username,
                    args.role,
                    telegram_id=args.telegram_id,
                    password_hash=password_hash,
                )
            except StaffError as exc:
                raise CommandError(str(exc)) from None
            print(f"added {args.username.lower()} ({args.role})")
        elif args.staff_command == "list":
            async with database.session() as session:
                for member in await StaffRepository(session).list():
                    telegram = member.telegram_id if member.telegram_id is not None else "-"
                    print(f"{member.username}\t{member.role}\ttelegram:{telegram}")
        elif args.staff_command == "remove":
            try:
                await desk.remove_member(args.username)
            except StaffError as exc:
                raise CommandError(str(exc)) from None
            print(f"removed {args.username.lower()}")
    finally:
        await database.dispose()


def read_password() -> str:
    """A new password: typed twice at a terminal without echo, else stdin's first line."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_CHARS:
        raise CommandError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


async def requests_command(settings: Settings, args: argparse.Namespace) -> None:
    database = await open_database(settings)
    # Follow-ups and messages are written here: running servers hear of them at once on
    # PostgreSQL (``Announcements``), on SQLite at their next look (the sweep, the outbox's).
    planner = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
    news = Announcements(database)
    desk = StaffDesk(
        database,
        settings.flow_settings(),
        utcnow,
        followups=planner,
        on_outbox=news.outbox,
        on_followups=news.followups,
    )
    zone = ZoneInfo(settings.organization.timezone)
    try:
        if args.requests_command == "list":
            for request in await desk.list_requests(status=args.status, overdue=args.overdue):
                print(
                    "\t".join(
                        [
                            request.reference or "",
                            request.status,
                            request.need,
                            request.channel,
                            request.created_at.astimezone(zone).date().isoformat(),
                            request.decision_due_at.astimezone(zone).date().isoformat(),
                        ]
                    )
                )
        elif args.requests_command == "show":
            case = await desk.case_file(args.reference, where="cli")
            request = case.request
            print(f"{request.reference}  {request.status}  {request.need}  ({request.channel})")
            print(f"decision due {request.decision_due_at.astimezone(zone).date().isoformat()}")
            for event in case.events:
                actor = f" [{event.actor}]" if event.actor else ""
                at = event.at.astimezone(zone).isoformat(timespec="seconds")
                print(f"{at}  {event.kind}{actor}  {event.text}")
        elif args.requests_command == "set-status":
            if args.by is not None:
                await desk.staff_member(args.by)
            request = await desk.set_status(args.reference, args.status, note=args.note, by=args.by)
            await news.send()
            print(f"{request.reference} is now {args.status}; the beneficiary will be told")
        elif args.requests_command == "erase":
            await _erase(settings, desk, reference=args.reference, by=args.by)
        elif args.requests_command == "export":
            if args.by is not None:
                await desk.staff_member(args.by)
            sys.stdout.write(await desk.export(args.reference, args.format, by=args.by))
            if args.format == "json":
                sys.stdout.write("\n")
    finally:
        await database.dispose()


async def jobs_command(settings: Settings) -> None:
    """``jobs list``: pending follow-ups as the database holds them (the truth a running
    server works from), with their due time in the organisation's time zone."""
    database = await open_database(settings)
    zone = ZoneInfo(settings.organization.timezone)
    try:
        async with database.session() as session:
            pending = await FollowUpRepository(session).pending()
        for followup in pending:
            due = followup.due_at.astimezone(zone).isoformat(timespec="seconds")
            print(f"{followup.kind}\t{due}\t{followup.key}")
    finally:
        await database.dispose()


# `knowledge ask` exits like this: the answer, "did you mean" candidates, or nothing.
ASK_EXIT = {"sure": 0, "close": 3, "none": 1}


async def knowledge_command(settings: Settings, args: argparse.Namespace) -> int:
    """The knowledge base from the command line; the exit status of ``ask`` tells its outcome."""
    database = await open_database(settings)
    now = utcnow()
    try:
        if args.knowledge_command == "import":
            counts = await import_base(database, Path(args.file), now)
            print(f"added {counts.added}, changed {counts.changed}, removed {counts.removed}")
            return 0
        async with database.session() as session, session.begin():
            await seed_example(session, now)
            base = repository(session)
            entries = await base.entries()
            unanswered = await base.unanswered()
        if args.knowledge_command == "export":
            write_base(entries, Path(args.file))
            print(f"wrote {len(entries)} entries to {args.file}")
        elif args.knowledge_command == "list":
            for entry in entries:
                print(f"{entry.id}\t{entry.language}\t{entry.topic or '-'}\t{entry.question}")
        elif args.knowledge_command == "unanswered":
            zone = ZoneInfo(settings.organization.timezone)
            for question in unanswered:
                last = question.last_asked_at.astimezone(zone).date().isoformat()
                print(f"{question.count}\t{last}\t{question.language}\t{question.question}")
        elif args.knowledge_command == "ask":
            match = KnowledgeIndex(entries).ask(" ".join(args.text), args.lang)
            if match.outcome == "sure":
                print(answer_text(settings.flow_settings(), match.entries[0]))
            else:
                for number, entry in enumerate(match.entries, start=1):
                    print(f"{number}. {entry.question}")
            return ASK_EXIT[match.outcome]
        return 0
    finally:
        await database.dispose()


async def feedback_command(settings: Settings, args: argparse.Namespace) -> None:
    database = await open_database(settings)
    try:
        await feedback_cli.run(database, settings, args, utcnow)
    finally:
        await database.dispose()


async def appointments_command(settings: Settings, args: argparse.Namespace) -> None:
    database = await open_database(settings)
    try:
        await appointments_cli.run(database, settings, args, utcnow)
    finally:
        await database.dispose()


def backup_command(settings: Settings, directory: Path) -> None:
    summary = backup.backup(
        settings.database.url, Path(settings.server.media_dir), directory, utcnow()
    )
    print(
        f"backup written to {summary.directory}: database ({summary.messages} messages, "
        f"{summary.database_bytes} bytes), {summary.media_files} media files"
    )


async def restore_command(settings: Settings, directory: Path, *, force: bool) -> None:
    summary = backup.restore(
        directory, settings.database.url, Path(settings.server.media_dir), force=force
    )
    # A backup from an older version gets this version's schema now, not at the next start.
    database = await open_database(settings)
    await database.dispose()
    print(
        f"restored from {directory}: {summary.messages} messages, "
        f"{summary.media_files} media files; start the server again"
    )


async def db_upgrade(settings: Settings) -> None:
    database = await open_database(settings)
    await database.dispose()
    print("database is up to date")


async def _erase(
    settings: Settings,
    desk: StaffDesk,
    *,
    reference: str | None = None,
    national_id: str | None = None,
    by: str | None = None,
) -> None:
    if by is not None:
        await desk.staff_member(by)
    erased = await desk.erase(reference=reference, national_id=national_id, by=by)
    removed = MediaStore(Path(settings.server.media_dir)).remove(erased.media)
    print(
        f"erased: {erased.requests} requests, {erased.messages} messages' texts, "
        f"{removed} files; anonymous statistics kept"
    )


async def beneficiaries_command(settings: Settings, args: argparse.Namespace) -> None:
    database = await open_database(settings)
    try:
        desk = StaffDesk(database, settings.flow_settings(), utcnow)
        await _erase(settings, desk, national_id=args.national_id, by=args.by)
    finally:
        await database.dispose()


async def purge(settings: Settings) -> None:
    database = await open_database(settings)
    try:
        desk = StaffDesk(database, settings.flow_settings(), utcnow)
        media = MediaStore(Path(settings.server.media_dir))
        count = await desk.purge_expired(settings.privacy.retention, media.remove)
        print(f"{count} applicants past privacy.retention erased")
    finally:
        await database.dispose()


async def rotate_key(settings: Settings) -> None:
    """Re-encrypt personal data under the current key; the old keys read until done.

    With a configured key: under ``privacy.key`` (the old one in ``privacy.previous_keys``).
    With a SQLite key file: a new key goes first in the file and the old one stays below
    it, readable, so that what a running server writes until it is restarted is not
    lost; the next rotation drops it.
    """
    key_file: Path | None = None
    if settings.privacy.key is None:
        url = make_url(normalize_url(settings.database.url))
        if url.get_backend_name() != "sqlite" or not url.database:
            raise CommandError("privacy.key is needed with this database: nothing to rotate")
        key_file = key_file_for(Path(url.database))
        if not key_file.exists():
            raise CommandError(f"{key_file}: no key file to rotate")
        old = [line for line in key_file.read_text(encoding="ascii").split() if line]
        write_key_file(key_file, [new_key_text(), *old[:1]])
    database = await open_database(settings)
    try:
        count = await reencrypt(database, fold_question=question_key)
        print(f"{count} records re-encrypted under key {database.keyring.current_id}")
        media = MediaStore(Path(settings.server.media_dir), database)
        files, unreadable = await asyncio.to_thread(media.seal_all)
        print(f"{files} media files re-encrypted")
        if unreadable:
            raise CommandError(f"{unreadable} media files are under a key not configured")
        if key_file is not None:
            print("restart tawasul serve to write under the new key")
        elif settings.privacy.previous_keys:
            print("privacy.previous_keys may now be removed (restart tawasul serve)")
    finally:
        await database.dispose()


async def run_server(settings: Settings, telegram_polling: bool) -> None:
    database = await open_database(settings)
    try:
        await serve(settings, database, telegram_polling=telegram_polling)
    except OSError as exc:  # the port is taken, or the host is not ours
        raise CommandError(
            f"cannot listen on {settings.server.host}:{settings.server.port} ({exc.strerror})"
        ) from None
    finally:
        await database.dispose()


async def chat(settings: Settings, user_id: str) -> None:
    """The console channel: each stdin line is a message; its replies are printed as one block."""
    database = await open_database(settings)
    planner = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
    engine = ConversationEngine(database, settings.flow_settings(), followups=planner)
    console = ConsoleChannel(user_id)
    # Arabic both ways whatever the locale.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    interactive = sys.stdin.isatty()
    lines = _stdin_lines(asyncio.get_running_loop())
    try:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = await lines.get()
            if not line:
                break
            result = await engine.handle(console.inbound(line, utcnow()))
            sys.stdout.write(console.render([item.message for item in result.replies]))
            sys.stdout.flush()
            async with database.session() as session, session.begin():
                outbox = MessageRepository(session)
                for item in result.replies:
                    await outbox.mark_sent(item.id, utcnow())
    finally:
        await database.dispose()


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str]:
    """Standard input's lines as they come, "" at its end.

    Read in a daemon thread with ``os.read`` on the descriptor: a thread blocked in
    ``sys.stdin.readline`` would hold up the exit after Ctrl-C until the next line
    (asyncio waits for its executor's threads), and a daemon thread blocked inside
    ``sys.stdin``'s buffer can abort the interpreter's shutdown. Bytes that are not
    UTF-8 become U+FFFD rather than end the chat.
    """
    queue: asyncio.Queue[str] = asyncio.Queue()

    def put(line: str) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the chat is over
            return False
        return True

    def read() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(STDIN_FD, 65536)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                if not put(line + "\n"):
                    return
            if not chunk:
                if pending:
                    put(pending)
                put("")
                return

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    return queue


def run() -> NoReturn:
    """The console script: ``main``, then out at once.

    The interpreter's own tidying at exit (collecting every module's objects) takes
    seconds of CPU on a busy machine, after everything of ours is closed: a service
    manager's SIGTERM and an operator's Ctrl-C should not wait for it.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe: nobody is reading any more.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    _save_coverage()
    os._exit(code)


def _save_coverage() -> None:
    """Under coverage (CI measures every `tawasul` process the tests start), save what it
    measured: ``os._exit`` skips the exit hook that would. Nothing otherwise."""
    coverage = sys.modules.get("coverage")
    measuring = coverage.Coverage.current() if coverage is not None else None
    if measuring is not None:
        measuring.stop()
        measuring.save()


if __name__ == "__main__":
    run()
