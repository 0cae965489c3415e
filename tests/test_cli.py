"""The `tawasul` command as a user runs it: a real subprocess on a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest
from transcript import INTAKE_AR

from handlers.console import BLOCK_END
from storage.keyring import Keyring


def tawasul_command() -> list[str]:
    script = Path(sys.executable).parent / "tawasul"
    found = str(script) if script.exists() else shutil.which("tawasul")
    assert found, "the tawasul console script is not installed (pip install -e .)"
    return [found]


def run(
    cwd: Path, *args: str, lines: Sequence[str] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    environment.update(env or {})
    return subprocess.run(
        [*tawasul_command(), *args],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )


def blocks(stdout: str) -> list[str]:
    """The reply blocks, one per line sent."""
    assert stdout.endswith(f"{BLOCK_END}\n")
    return [block.strip("\n") for block in stdout.split(f"{BLOCK_END}\n")[:-1]]


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of a SQL query, encrypted personal data read with the key file beside it."""
    keys = Keyring.beside(database)
    with sqlite3.connect(database) as connection:
        rows = connection.execute(sql).fetchall()
    return [tuple(keys.decrypt(v) if isinstance(v, str) else v for v in row) for row in rows]


def test_a_whole_arabic_conversation_on_the_embedded_default(tmp_path: Path) -> None:
    lines = [*INTAKE_AR, "٢", "٣", "٥", "خدمة ممتازة وسريعة"]
    result = run(tmp_path, "chat", lines=lines)
    assert result.returncode == 0, result.stderr
    replies = blocks(result.stdout)
    assert len(replies) == len(lines)
    assert "١- طلب دعم جديد" in replies[0]
    assert "لدراسة طلبك فقط" in replies[1]  # the privacy notice, asked by default
    assert "(٨/٨)" in replies[9] and "******0008" in replies[9]
    assert "REQ-000001" in replies[10]
    assert "هـ" in replies[10] and "٢٠٢٦م" in replies[10]  # Hijri beside Gregorian
    assert "REQ-000001" in replies[11]  # status shows the request
    assert "شكراً" in replies[-1]
    database = tmp_path / "tawasul.db"  # the embedded default: a file in the working directory
    assert query(database, "SELECT reference, status, need FROM support_request") == [
        ("REQ-000001", "submitted", "food_basket")
    ]
    assert query(database, "SELECT score, comment, context FROM rating") == [
        (5, "خدمة ممتازة وسريعة", "service")
    ]
    # Every message both ways is in the log, and every reply was marked sent.
    assert query(database, "SELECT count(*) FROM message WHERE direction = 'in'") == [(15,)]
    assert query(database, "SELECT count(*) FROM message WHERE status = 'pending'") == [(0,)]
    # Personal data never reaches the logs.
    assert "1000000008" not in result.stderr and "الزهراني" not in result.stderr


def test_english_on_request(tmp_path: Path) -> None:
    lines = ["hello", "English", "1", "yes", "Sara Ali Hassan Omar", "123"]
    replies = blocks(run(tmp_path, "chat", "--user", "sara", lines=lines).stdout)
    assert "1- New support request" in replies[1]
    assert "only to study your request" in replies[2]
    assert "(1/8)" in replies[3]
    assert "10 digits" in replies[5]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["١٠٠٠٠٠٠٠٠٩"], "أحد أرقامه مكتوباً خطأً"),
        (["١٢٣٤٥٦٧٨٩"], "١٠ أرقام"),
        (["abcdefghij"], "أرقام"),
    ],
)
def test_a_bad_national_id_is_refused_and_asked_again(
    tmp_path: Path, answers: list[str], reason: str
) -> None:
    lines = [*INTAKE_AR[:4], *answers, "١٠٠٠٠٠٠٠٠٨"]
    replies = blocks(run(tmp_path, "chat", lines=lines).stdout)
    assert reason in replies[4]
    assert "(٣/٨)" in replies[5]  # the valid answer moves on to the mobile


# Each line sent with a fragment its reply must hold: every refusal gives its reason and
# the next question comes only once the answer is valid.
BAD_ANSWERS = [
    ("مرحبا", "١- طلب دعم جديد"),
    ("٩", "اختر رقماً من ١ إلى ٧"),  # out of range: still the menu
    ("١", "لدراسة طلبك فقط"),  # the privacy notice
    ("ربما", "الرجاء إرسال ١ للموافقة"),  # neither yes nor no: asked again
    ("أوافق", "(١/٨)"),
    ("محمد 123", "بالحروف فقط"),
    ("محمد أحمد علي الزهراني", "(٢/٨)"),
    ("12345", "١٠ أرقام"),
    ("3000000000", "يبدأ"),
    ("١٠٠٠٠٠٠٠٠٨", "(٣/٨)"),
    ("+447700900123", "رقم غير سعودي"),
    ("٠٥٥١٢٣٤٥٦٧", "(٤/٨)"),
    ("جده", "(٥/٨)"),
    ("٩", "أرسل رقماً من ١ إلى ٦"),
    ("١", "(٦/٨)"),
    ("", "قصير جداً"),
    ("ا" * 5000, "الحد الأقصى ١٠٠٠ حرف"),
    ("نحتاج سلة غذائية للأسرة المكونة من خمسة أفراد", "(٧/٨)"),
    ("\U0001f600", "تم"),
    ("تم", "(٨/٨)"),
    ("ربما", "نعم"),
]


def test_bad_answers_at_every_step_keep_the_flow_in_place(tmp_path: Path) -> None:
    result = run(tmp_path, "chat", lines=[line for line, _ in BAD_ANSWERS])
    assert result.returncode == 0, result.stderr
    replies = blocks(result.stdout)
    assert len(replies) == len(BAD_ANSWERS)
    for (line, expected), reply in zip(BAD_ANSWERS, replies, strict=True):
        assert expected in reply, f"after {line[:20]!r}: {reply}"
    assert "(٨/٨)" not in replies[-1]  # not signed: still waiting for the declaration
    assert query(tmp_path / "tawasul.db", "SELECT count(*) FROM support_request") == [(0,)]
    assert "Traceback" not in result.stderr


def test_bytes_that_are_not_utf8_do_not_end_the_chat(tmp_path: Path) -> None:
    result = subprocess.run(
        [*tawasul_command(), "chat"],
        input=b"\xff\xfe\n\xd8\xa7\xd9\x84\xd9\x82\xd8\xa7\xd8\xa6\xd9\x85\xd8\xa9\n",
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(blocks(result.stdout.decode("utf-8"))) == 2


def test_a_half_done_intake_resumes_in_a_new_process(tmp_path: Path) -> None:
    first = blocks(run(tmp_path, "chat", lines=INTAKE_AR[:5]).stdout)
    assert "(٣/٨)" in first[-1]
    second = blocks(run(tmp_path, "chat", lines=INTAKE_AR[5:]).stdout)
    assert "(٤/٨)" in second[0]
    assert "REQ-000001" in second[-1]


def test_another_console_user_sees_no_one_elses_request(tmp_path: Path) -> None:
    filed = blocks(run(tmp_path, "chat", "--user", "owner", lines=[*INTAKE_AR, "٢"]).stdout)
    assert "REQ-000001" in filed[-2] and "REQ-000001" in filed[-1]  # filed, and its own
    replies = blocks(run(tmp_path, "chat", "--user", "other", lines=["٢", "REQ-000001"]).stdout)
    assert "REQ-000001" not in replies[0]
    assert "الزهراني" not in replies[1] and "سلة غذائية" not in replies[1]


def test_a_config_file_is_used(tmp_path: Path) -> None:
    config = tmp_path / "custom.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///other.db"\n[organization]\nname = "جمعية النور"\n',
        encoding="utf-8",
    )
    result = run(tmp_path, "chat", "--config", str(config), lines=["السلام عليكم"])
    assert "جمعية النور" in result.stdout
    assert (tmp_path / "other.db").exists() and not (tmp_path / "tawasul.db").exists()


def test_a_bad_config_stops_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[organization]\ndecision_days = -3\n")
    result = run(tmp_path, "chat", lines=["hi"])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "organization.decision_days" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_environment_override_is_checked_too(tmp_path: Path) -> None:
    result = run(tmp_path, "db", "upgrade", env={"TAWASUL_SERVER__PORT": "http"})
    assert result.returncode == 2
    assert "server.port" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {"TAWASUL_DATABASE__URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = run(tmp_path, "db", "upgrade", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("tawasul: cannot open the database")
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    tables = {row[0] for row in query(tmp_path / "tawasul.db", "SELECT name FROM sqlite_master")}
    assert {"support_request", "message", "conversation", "alembic_version"} <= tables
    assert run(tmp_path, "db", "upgrade").returncode == 0  # again: nothing to do


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_with_the_example_config_answers_healthz_and_the_chat(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAWASUL_")}
    environment["TAWASUL_SERVER__PORT"] = str(port)
    process = subprocess.Popen(
        [*tawasul_command(), "serve", "--config", str(example)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r) == {"status": "ok", "scheduler": "leader"}
                    break
            except (ConnectionError, urllib.error.URLError):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "tawasul serve did not answer"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/chat", timeout=5) as page:
            assert 'dir="rtl"' in page.read().decode("utf-8")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    # Each channel without credentials is skipped with one clear line, not a crash.
    assert "Telegram skipped: telegram.token is not set" in stderr
    assert "WhatsApp and SMS skipped" in stderr
    assert "Traceback" not in stderr


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, "serve", env={"TAWASUL_SERVER__PORT": str(port)})
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_staff_commands(tmp_path: Path) -> None:
    added = run(tmp_path, "staff", "add", "Sara", "--role", "agent", "--telegram-id", "4242")
    assert added.returncode == 0, added.stderr
    with_password = run(
        tmp_path,
        "staff",
        "add",
        "omar",
        "--role",
        "manager",
        "--password-stdin",
        lines=["a long enough secret"],
    )
    assert with_password.returncode == 0, with_password.stderr
    listing = run(tmp_path, "staff", "list").stdout
    assert "sara\tagent\ttelegram:4242" in listing and "omar\tmanager" in listing
    hashed = query(tmp_path / "tawasul.db", "SELECT password_hash FROM staff WHERE username='omar'")
    assert str(hashed[0][0]).startswith("$argon2id$")
    duplicate = run(tmp_path, "staff", "add", "sara", "--role", "admin")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_role = run(tmp_path, "staff", "add", "x1", "--role", "boss")
    assert bad_role.returncode == 2
    assert run(tmp_path, "staff", "remove", "sara").returncode == 0
    assert "sara" not in run(tmp_path, "staff", "list").stdout
    assert run(tmp_path, "staff", "remove", "sara").returncode == 1
    # Through the staff desk, as on the dashboard: every change is in the audit log (no
    # actor: the command line); refused ones are not.
    audit = "SELECT action, target, username FROM audit_entry ORDER BY id"
    assert query(tmp_path / "tawasul.db", audit) == [
        ("staff_add", "sara", None),
        ("staff_add", "omar", None),
        ("staff_remove", "sara", None),
    ]


def test_requests_commands(tmp_path: Path) -> None:
    run(tmp_path, "chat", lines=INTAKE_AR)
    run(tmp_path, "staff", "add", "sara", "--role", "researcher")
    listing = run(tmp_path, "requests", "list").stdout
    assert listing.startswith("REQ-000001\tsubmitted\tfood_basket\tconsole\t")
    moved = run(
        tmp_path,
        "requests",
        "set-status",
        "REQ-000001",
        "under_review",
        "--by",
        "sara",
        "--note",
        "بدأت الدراسة",
    )
    assert moved.returncode == 0, moved.stderr
    refused = run(tmp_path, "requests", "set-status", "REQ-000001", "delivered")
    assert refused.returncode == 1
    assert "cannot go from under_review to delivered" in refused.stderr
    unknown_staff = run(tmp_path, "requests", "set-status", "REQ-000001", "accepted", "--by", "x")
    assert unknown_staff.returncode == 1 and "no active staff member" in unknown_staff.stderr
    assert run(tmp_path, "requests", "list", "--status", "under_review").stdout.count("REQ-") == 1
    assert run(tmp_path, "requests", "list", "--status", "accepted").stdout == ""
    assert run(tmp_path, "requests", "list", "--overdue").stdout == ""  # due in 14 days
    shown = run(tmp_path, "requests", "show", "REQ-000001").stdout
    assert "status_change [sara]" in shown and "declaration" in shown
    exported = json.loads(run(tmp_path, "requests", "export", "REQ-000001").stdout)
    assert [e["kind"] for e in exported["events"]].count("status_change") == 2
    csv_text = run(tmp_path, "requests", "export", "REQ-000001", "--format", "csv").stdout
    assert csv_text.splitlines()[0] == "field,label,value"
    assert "at,kind,actor,text,detail" in csv_text.splitlines()
    assert exported["answers"]["national_id"] == "1000000008" and not exported["masked"]
    # Named, a researcher takes it out as the case page shows it.
    masked = run(tmp_path, "requests", "export", "REQ-000001", "--by", "sara").stdout
    assert json.loads(masked)["answers"]["national_id"] == "******0008"
    assert "1000000008" not in masked and "١٠٠٠٠٠٠٠٠٨" not in masked
    # The beneficiary's notice waits in the outbox for their channel, in Arabic.
    notice = query(
        tmp_path / "tawasul.db",
        "SELECT text, kind FROM message WHERE direction='out' ORDER BY id DESC LIMIT 1",
    )
    assert "REQ-000001" in str(notice[0][0]) and notice[0][1] == "proactive"
    missing = run(tmp_path, "requests", "show", "REQ-999999")
    assert missing.returncode == 1 and "no request" in missing.stderr
