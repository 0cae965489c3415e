"""The operator's day at the command line: config anywhere, Ctrl-C, passwords, time zones, stop."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import logging
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import termios
import time
from pathlib import Path

import aiohttp
from test_cli import free_port, run, tawasul_command
from transcript import INTAKE_AR

from bot.cli import build_parser, configure_logging
from bot.passwords import verify_password

PASSWORD = "a long enough password"


def test_config_is_taken_anywhere_on_the_line() -> None:
    parser = build_parser()
    for argv in (
        ["--config", "F", "requests", "list"],
        ["requests", "--config", "F", "list"],
        ["requests", "list", "--config", "F"],
        ["requests", "list", "--status", "submitted", "--config=F"],
        ["staff", "add", "sara", "--config", "F", "--role", "agent"],
        ["backup", "DIR", "--config", "F"],
    ):
        assert parser.parse_args(argv).config == "F", argv
    assert not hasattr(parser.parse_args(["requests", "list"]), "config")


def test_the_scheduler_s_minute_lines_are_quiet() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers[:] = []  # as in a fresh process (pytest's own are put back below)
        configure_logging("serve")
        assert logging.getLogger("bot.server").isEnabledFor(logging.INFO)
        assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
        assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], root.level = saved
        logging.getLogger("apscheduler").setLevel(logging.NOTSET)


def _controlling_terminal() -> None:
    # A session of its own whose terminal is the pty: Ctrl-C there is SIGINT, and
    # getpass opens /dev/tty, as at a real terminal.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A program on a pseudo-terminal, as a person at a keyboard runs it."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.master, slave = pty.openpty()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
        self.process = subprocess.Popen(
            [*tawasul_command(), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=environment,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while text.encode() not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} never shown: {self.screen!r}"
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:  # the program ended
                    assert text.encode() in self.screen, self.screen
                    return

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, seconds: float = 60) -> int:
        try:
            return self.process.wait(timeout=seconds)
        finally:
            while True:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    break
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.screen += chunk
            os.close(self.master)


def test_ctrl_c_ends_the_chat_at_once(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, "chat")
    try:
        terminal.wait_for("> ")
        terminal.type("السلام عليكم")
        terminal.wait_for("١- طلب دعم جديد")
        terminal.wait_for("> ")
        os.write(terminal.master, b"\x03")  # Ctrl-C at the prompt, as the terminal sends it
        started = time.monotonic()
        code = terminal.finish(seconds=60)  # a safety net: before the fix it never ended
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
    print(f"chat ended {time.monotonic() - started:.2f} s after Ctrl-C")
    assert code == 130
    assert b"Traceback" not in terminal.screen


def test_a_password_typed_at_a_terminal_is_not_shown_and_is_asked_twice(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, "staff", "add", "sara", "--role", "agent", "--password-stdin")
    terminal.wait_for("Password: ")
    terminal.type(PASSWORD)
    terminal.wait_for("Again: ")
    terminal.type(PASSWORD)
    assert terminal.finish() == 0, terminal.screen
    assert b"added sara" in terminal.screen
    assert PASSWORD.encode() not in terminal.screen
    with sqlite3.connect(tmp_path / "tawasul.db") as connection:
        [(stored,)] = connection.execute("SELECT password_hash FROM staff").fetchall()
    assert verify_password(stored, PASSWORD)

    mismatch = Terminal(tmp_path, "staff", "password", "sara")
    mismatch.wait_for("Password: ")
    mismatch.type("one long password")
    mismatch.wait_for("Again: ")
    mismatch.type("another long password")
    assert mismatch.finish() == 1
    assert b"differ" in mismatch.screen


def test_staff_password_sets_a_new_one_ends_logins_and_is_audited(tmp_path: Path) -> None:
    added = run(tmp_path, "staff", "add", "sara", "--role", "agent", "--password-stdin",
                lines=["first password 123"])  # fmt: skip
    assert added.returncode == 0, added.stderr
    database = tmp_path / "tawasul.db"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO staff_session (token_hash, staff_id, csrf_token, created_at, expires_at)"
            " VALUES ('h', 1, 'c', '2026-01-01 00:00:00', '2999-01-01 00:00:00')"
        )
    short = run(tmp_path, "staff", "password", "sara", lines=["short"])
    assert short.returncode == 1 and "at least 10" in short.stderr
    changed = run(tmp_path, "staff", "password", "SARA", lines=[PASSWORD])
    assert changed.returncode == 0, changed.stderr
    with sqlite3.connect(database) as connection:
        [(stored,)] = connection.execute("SELECT password_hash FROM staff").fetchall()
        sessions = connection.execute("SELECT count(*) FROM staff_session").fetchone()[0]
        audit = connection.execute("SELECT action, target FROM audit_entry").fetchall()
    assert verify_password(stored, PASSWORD) and not verify_password(stored, "first password 123")
    assert sessions == 0
    assert ("password_reset", "sara") in audit
    nobody = run(tmp_path, "staff", "password", "nobody", lines=[PASSWORD])
    assert nobody.returncode == 1 and "no active staff member" in nobody.stderr


def test_requests_show_and_list_in_the_organization_s_time_zone(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=INTAKE_AR).returncode == 0
    shown = run(tmp_path, "requests", "show", "REQ-000001")
    assert shown.returncode == 0, shown.stderr
    times = re.findall(r"^(\S+T\S+)\s", shown.stdout, re.MULTILINE)
    assert times and all(t.endswith("+03:00") for t in times), shown.stdout  # Asia/Riyadh
    utc = run(tmp_path, "requests", "show", "REQ-000001",
              env={"TAWASUL_ORGANIZATION__TIMEZONE": "UTC"})  # fmt: skip
    assert re.search(r"^\S+T\S+\+00:00\s", utc.stdout, re.MULTILINE), utc.stdout
    exported = json.loads(run(tmp_path, "requests", "export", "REQ-000001").stdout)
    assert exported["decision_due_at"].endswith("+03:00")
    assert all(event["at"].endswith("+03:00") for event in exported["events"])
    as_csv = run(tmp_path, "requests", "export", "REQ-000001", "--format", "csv").stdout
    table = list(csv.reader(io.StringIO(as_csv)))  # the applicant, then the timeline
    fields = {row[0]: row[2] for row in table[1 : table.index([])]}
    assert fields["decision_due_at"].endswith("+03:00")
    header, *events = table[table.index([]) + 1 :]
    rows = [dict(zip(header, event, strict=True)) for event in events]
    assert rows and all(row["at"].endswith("+03:00") for row in rows)
    assert not any(row["detail"].startswith(("{", "[")) for row in rows)  # no JSON blobs


async def test_sigterm_stops_the_server_at_once_with_an_event_stream_and_a_poll_open(
    tmp_path: Path,
) -> None:
    assert run(tmp_path, "staff", "add", "sara", "--role", "agent", "--password-stdin",
               lines=[PASSWORD]).returncode == 0  # fmt: skip
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    environment["TAWASUL_SERVER__PORT"] = str(port)
    server = await asyncio.create_subprocess_exec(
        *tawasul_command(),
        "serve",
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with browser.get(f"{base}/healthz") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert server.returncode is None and time.monotonic() < deadline
                await asyncio.sleep(0.2)
            async with browser.get(f"{base}/staff/login") as page:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
            assert csrf is not None
            form = {"csrf": csrf[1], "username": "sara", "password": PASSWORD}
            async with browser.post(
                f"{base}/staff/login", data=form, allow_redirects=False
            ) as logged_in:
                assert logged_in.status == 303, await logged_in.text()
            events = await browser.get(f"{base}/staff/handoffs/events")
            assert events.status == 200
            assert (await events.content.readline()).startswith(b"retry:")
            async with browser.get(f"{base}/chat") as chat:
                assert chat.status == 200
            poll = asyncio.create_task(browser.get(f"{base}/api/chat/messages?after=0"))
            await asyncio.sleep(0.5)  # the poll is waiting in the server
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(server.communicate(), 60)  # a safety net
            took = time.monotonic() - started
            events.close()
            poll.cancel()
    finally:
        if server.returncode is None:
            server.kill()
    print(f"tawasul serve stopped {took:.2f} s after SIGTERM")
    assert server.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
