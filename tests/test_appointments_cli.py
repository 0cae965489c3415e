"""`tawasul appointments …` and `tawasul visits …` as an operator runs them: a real
subprocess on a real SQLite file, the beneficiary on the console."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from test_cli import query, run
from transcript import INTAKE_AR

CONFIG = """
[appointments]
days_ahead = 7

[[appointments.hours]]
branch = "الرياض"
days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
from = "08:00"
to = "20:00"
"""
LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}  APT-\d{6}  ")


def tomorrow() -> str:
    return (
        (datetime.now(UTC).astimezone(ZoneInfo("Asia/Riyadh")) + timedelta(days=1))
        .date()
        .isoformat()
    )


def test_an_interview_booked_in_the_chat_is_listed(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    chat = run(tmp_path, "chat", lines=("السلام عليكم", "٧", "٢", "١", "نعم"))
    assert "تم حجز موعدك برقم APT-000001" in chat.stdout, chat.stdout[-2000:]
    [line] = run(tmp_path, "appointments", "list").stdout.splitlines()
    assert LINE.match(line) and line.endswith("APT-000001  الرياض  booked")
    day = line[:10]
    assert run(tmp_path, "appointments", "list", "--date", day).stdout.strip() == line
    assert run(tmp_path, "appointments", "list", "--date", "2001-01-01").stdout == ""
    bad = run(tmp_path, "appointments", "list", "--date", "tomorrow")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


def test_a_visit_scheduled_told_confirmed_and_settled(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    filed = run(tmp_path, "chat", lines=INTAKE_AR)
    assert "REQ-000001" in filed.stdout
    run(tmp_path, "staff", "add", "huda", "--role", "researcher")
    at = f"{tomorrow()} 10:00"

    for args, error in (
        (("REQ-000001", "--at", "tomorrow 10am"), "YYYY-MM-DD HH:MM"),
        (("REQ-000001", "--at", "2001-01-01 10:00"), "a time to come"),
        (("REQ-000099", "--at", at), "no request"),
        (("REQ-000001", "--at", at, "--by", "nobody"), "no active staff member"),
    ):
        refused = run(tmp_path, "visits", "schedule", *args)
        assert refused.returncode == 1 and error in refused.stderr, refused.stderr
    assert run(tmp_path, "visits", "list").stdout == ""  # nothing half-written

    done = run(tmp_path, "visits", "schedule", "REQ-000001", "--at", at, "--by", "huda")
    assert done.returncode == 0, done.stderr
    assert "APT-000001 proposed for REQ-000001" in done.stdout
    [(text, kind)] = query(
        tmp_path / "tawasul.db",
        "SELECT text, kind FROM message WHERE direction='out' ORDER BY id DESC LIMIT 1",
    )
    assert "زيارة ميدانية (APT-000001)" in str(text) and "huda" in str(text)
    assert "الهوية الوطنية" in str(text) and kind == "proactive"
    assert run(tmp_path, "visits", "list").stdout.strip() == (
        f"{at}  APT-000001  visit REQ-000001  proposed  huda"
    )

    answer = run(tmp_path, "chat", lines=("١",))
    assert "تم تأكيد الزيارة APT-000001" in answer.stdout
    assert "confirmed" in run(tmp_path, "visits", "list").stdout
    [(kind,)] = query(
        tmp_path / "tawasul.db", "SELECT kind FROM followup WHERE key LIKE 'visit_answered:%'"
    )
    assert kind == "visit_answered"

    settled = run(tmp_path, "visits", "done", "APT-000001", "--note", "الأسرة بحاجة فعلية")
    assert settled.stdout.strip() == "APT-000001 is now done"
    notes = [str(row[0]) for row in query(tmp_path / "tawasul.db", "SELECT text FROM note")]
    assert "field visit APT-000001 proposed" in notes
    assert "field visit APT-000001: done. الأسرة بحاجة فعلية" in notes
    again = run(tmp_path, "visits", "no-show", "APT-000001")
    assert again.returncode == 1 and "done already" in again.stderr
