"""`tawasul feedback …` as an operator runs it: a real subprocess on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import query, run

# Menu 6 from the console: a suggestion, then a complaint with consent to be contacted.
SUGGESTION = ("السلام عليكم", "٦", "١", "نقترح توصيل السلال لكبار السن في منازلهم")
COMPLAINT = ("٦", "٢", "تأخر الرد على طلبي", "٢")


def test_list_show_answer_and_set_status(tmp_path: Path) -> None:
    chat = run(tmp_path, "chat", lines=(*SUGGESTION, *COMPLAINT))
    assert "FB-000001" in chat.stdout and "FB-000002" in chat.stdout
    run(tmp_path, "staff", "add", "huda", "--role", "manager")
    run(tmp_path, "staff", "add", "sara", "--role", "agent")

    listing = run(tmp_path, "feedback", "list").stdout.splitlines()
    assert [row.split()[:3] for row in listing] == [
        ["FB-000002", "complaint", "received"],
        ["FB-000001", "suggestion", "received"],
    ]
    only = run(tmp_path, "feedback", "list", "--kind", "complaint").stdout
    assert "FB-000002" in only and "FB-000001" not in only
    assert run(tmp_path, "feedback", "list", "--status", "answered").stdout == ""
    bad = run(tmp_path, "feedback", "list", "--kind", "praise")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

    shown = run(tmp_path, "feedback", "show", "fb-2").stdout
    assert "FB-000002  complaint  received  (console)" in shown
    assert "may be contacted: no" in shown and "تأخر الرد على طلبي" in shown

    answered = run(tmp_path, "feedback", "answer", "FB-000001", "سندرس ذلك", "--by", "sara")
    assert answered.returncode == 0, answered.stderr
    refused = run(tmp_path, "feedback", "answer", "FB-000002", "نعتذر", "--by", "sara")
    assert refused.returncode == 1 and "managers and admins" in refused.stderr
    run(tmp_path, "feedback", "answer", "FB-000002", "نعتذر، سنتابع طلبك", "--by", "huda")
    # The answers wait in the outbox for the beneficiary's channel, in their language.
    sent = query(
        tmp_path / "tawasul.db",
        "SELECT text, kind FROM message WHERE direction='out' ORDER BY id DESC LIMIT 2",
    )
    assert "FB-000002" in str(sent[0][0]) and "سنتابع طلبك" in str(sent[0][0])
    assert sent[0][1] == "staff" and "FB-000001" in str(sent[1][0])
    assert "answer -> answered [huda]" in run(tmp_path, "feedback", "show", "FB-000002").stdout

    closed = run(tmp_path, "feedback", "set-status", "FB-000002", "closed", "--by", "huda")
    assert closed.stdout.strip() == "FB-000002 is now closed"
    again = run(tmp_path, "feedback", "answer", "FB-000002", "مرة أخرى")
    assert again.returncode == 1 and "closed" in again.stderr
    unknown = run(tmp_path, "feedback", "show", "FB-000099")
    assert unknown.returncode == 1 and "no feedback" in unknown.stderr
    wrong = run(tmp_path, "feedback", "set-status", "FB-000001", "done")
    assert wrong.returncode == 1 and "unknown status" in wrong.stderr
    # Each show is in the audit log, as a case file's read (the unknown one read nothing).
    reads = "SELECT target, username, detail FROM audit_entry WHERE action='feedback_read'"
    read = ("FB-000002", None, {"kind": "complaint", "where": "cli"})
    found = query(tmp_path / "tawasul.db", reads)
    assert [(target, who, json.loads(detail)) for target, who, detail in found] == [read, read]
