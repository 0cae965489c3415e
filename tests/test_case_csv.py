"""`tawasul requests export --format csv`: the applicant's fields and a timeline in words,
as a spreadsheet opens them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from test_cli import run
from transcript import INTAKE_AR


def sections(text: str) -> tuple[dict[str, tuple[str, str]], list[dict[str, str]]]:
    """The fields (key -> label, value) and the timeline's rows of an exported CSV: two
    tables with an empty row between them."""
    rows = list(csv.reader(io.StringIO(text)))
    blank = rows.index([])
    head, timeline = rows[:blank], rows[blank + 1 :]
    assert head[0] == ["field", "label", "value"]
    assert timeline[0] == ["at", "kind", "actor", "text", "detail"]
    fields = {key: (label, value) for key, label, value in head[1:]}
    return fields, [dict(zip(timeline[0], row, strict=True)) for row in timeline[1:]]


def test_the_csv_holds_the_applicant_and_a_readable_timeline(tmp_path: Path) -> None:
    run(tmp_path, "chat", lines=INTAKE_AR)
    run(tmp_path, "staff", "add", "sara", "--role", "researcher")
    moved = run(
        tmp_path, "requests", "set-status", "REQ-000001", "under_review", "--note", "بدأت الدراسة"
    )
    assert moved.returncode == 0, moved.stderr
    exported = run(tmp_path, "requests", "export", "REQ-000001", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    fields, timeline = sections(exported.stdout)
    assert fields["reference"] == ("رقم الطلب", "REQ-000001")
    assert fields["name"] == ("الاسم", "محمد أحمد علي الزهراني")
    assert fields["national_id"] == ("الهوية", "1000000008")
    assert fields["mobile"] == ("الجوال", "0551234567")  # as written, never a formula
    assert fields["city"] == ("المدينة", "جدة")
    assert fields["need"] == ("نوع الدعم", "سلة غذائية")
    assert fields["description"][1] == INTAKE_AR[8]
    assert fields["status"] == ("الحالة", "قيد الدراسة لدى لجنة البحث")
    assert fields["masked"][1] == "لا"
    kinds = [row["kind"] for row in timeline]
    assert kinds[0] == "message_in" and "declaration" in kinds
    changes = [row for row in timeline if row["kind"] == "status_change"]
    assert [row["text"] for row in changes] == ["submitted", "submitted -> under_review"]
    assert changes[-1]["detail"] == "from: submitted; to: under_review; note: بدأت الدراسة"
    # Words, not JSON, and none of the database's own ids.
    for row in timeline:
        assert "{" not in row["detail"] and "platform_message_id" not in row["detail"]
        assert not row["detail"].startswith("id:")
    assert timeline[0]["detail"] == "channel: console; status: received"


def test_named_staff_get_the_id_masked_in_the_csv_too(tmp_path: Path) -> None:
    run(tmp_path, "chat", lines=INTAKE_AR)
    run(tmp_path, "staff", "add", "sara", "--role", "researcher")
    exported = run(tmp_path, "requests", "export", "REQ-000001", "--format", "csv", "--by", "sara")
    fields, _timeline = sections(exported.stdout)
    assert fields["national_id"][1] == "******0008"
    assert fields["masked"][1] == "نعم"
    assert "1000000008" not in exported.stdout and "١٠٠٠٠٠٠٠٠٨" not in exported.stdout
