"""`tawasul jobs list` and `tawasul staff password`, as an operator runs them: a real
subprocess on a real SQLite file."""

from __future__ import annotations

import re
from pathlib import Path

from test_cli import query, run
from transcript import INTAKE_AR

from bot.desk import MIN_PASSWORD_CHARS


def test_jobs_list_shows_what_the_database_will_do_in_the_charitys_time(tmp_path: Path) -> None:
    chatted = run(tmp_path, "chat", lines=INTAKE_AR[:4])  # an intake left half done
    assert chatted.returncode == 0, chatted.stderr
    listed = run(tmp_path, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    kind, due, key = line.split("\t")
    assert (kind, key) == ("intake_reminder", "intake_reminder:identity:1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00", due), due  # Riyadh
    stored = query(tmp_path / "tawasul.db", "SELECT key, status FROM followup")
    assert stored == [("intake_reminder:identity:1", "pending")]


def test_a_password_set_from_the_command_line_replaces_the_old_one(tmp_path: Path) -> None:
    added = run(tmp_path, "staff", "add", "omar", "--role", "manager")
    assert added.returncode == 0, added.stderr
    hashes = "SELECT password_hash FROM staff WHERE username='omar'"
    assert query(tmp_path / "tawasul.db", hashes) == [(None,)]

    short = run(tmp_path, "staff", "password", "omar", lines=["x" * (MIN_PASSWORD_CHARS - 1)])
    assert short.returncode == 1
    assert f"a password needs at least {MIN_PASSWORD_CHARS} characters" in short.stderr
    assert query(tmp_path / "tawasul.db", hashes) == [(None,)]  # nothing changed
    # (An unknown member is refused by the staff desk: tests/test_desk_refusals.py.)

    done = run(tmp_path, "staff", "password", "omar", lines=["a long enough secret"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "new password set for omar; their dashboard logins ended\n"
    [(hashed,)] = query(tmp_path / "tawasul.db", hashes)
    assert str(hashed).startswith("$argon2id$") and "a long enough secret" not in str(hashed)
