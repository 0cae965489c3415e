"""The `tawasul` command line: chat on the console and look after the database."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings, resolve_config_path
from bot.engine import ConversationEngine, utcnow
from bot.server import serve
from handlers.console import ConsoleChannel
from storage.db import Database
from storage.repositories import MessageRepository

log = logging.getLogger(__name__)


class CommandError(Exception):
    """A failure to report to the operator as one line, with exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tawasul", description="Tawasul: a charity's conversations with its beneficiaries."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="TOML file (else $TAWASUL_CONFIG, else ./config.toml, else the embedded default)",
        )
        return sub

    chat = command("chat", "talk to the bot as a beneficiary, one line per message")
    chat.add_argument("--user", default="console", metavar="ID", help="the console user's id")

    serve = command("serve", "run the web server with every configured channel and the outbox")
    serve.add_argument(
        "--telegram-polling",
        action="store_true",
        help="fetch Telegram updates by polling (development without a public URL)",
    )

    db = command("db", "database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply every pending schema migration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The console's stdout is the conversation: only problems go to stderr there.
    logging.basicConfig(
        level=logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(resolve_config_path(args.config))
        if args.command == "chat":
            asyncio.run(chat(settings, args.user))
        elif args.command == "serve":
            asyncio.run(run_server(settings, args.telegram_polling))
        elif args.command == "db":
            asyncio.run(db_upgrade(settings))
    except ConfigError as exc:
        print(f"tawasul: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"tawasul: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tawasul chat | head`): nothing left to say to anyone.
        sys.stderr.close()
        return 0
    return 0


async def open_database(settings: Settings) -> Database:
    """Connect and bring the schema up to date, or fail with one readable line."""
    try:
        database = Database(settings.database.url)
    except Exception as exc:
        raise ConfigError(f"database.url: cannot be used ({type(exc).__name__})") from None
    try:
        await database.upgrade()
    except Exception as exc:
        await database.dispose()
        log.debug("database upgrade failed", exc_info=True)
        raise CommandError(f"cannot open the database ({type(exc).__name__}: {exc})") from None
    return database


async def db_upgrade(settings: Settings) -> None:
    database = await open_database(settings)
    await database.dispose()
    print("database is up to date")


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
    engine = ConversationEngine(database, settings.flow_settings())
    console = ConsoleChannel(user_id)
    # Arabic both ways whatever the locale; bytes that are not UTF-8 must not end the chat.
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    interactive = sys.stdin.isatty()
    try:
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
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


if __name__ == "__main__":
    sys.exit(main())
