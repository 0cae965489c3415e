"""`tawasul knowledge` and the knowledge base in `tawasul chat`, as a user runs them."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook
from test_cli import blocks, query, run

from bot.cli import main

HEADER = "question,answer,alternatives,language,topic\n"
BASE = (
    HEADER
    + "متى توزيع السلال؟,في الأسبوع الأول من كل شهر.,موعد السلة,ar,baskets\n"
    + "ما أوقات الدوام؟,{organization.hours},متى تفتحون,ar,hours\n"
    + "What are your hours?,{organization.hours},when are you open,en,hours\n"
)


def write(tmp_path: Path, text: str, name: str = "base.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return str(path)


class Result:
    """What one command printed and its exit status."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def tawasul(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``tawasul knowledge …`` run in this process (the same parser and database code as
    the console script, without a Python start-up per command) on a SQLite file."""
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "kb.db"}"\n')

    def command(*args: str) -> Result:
        capsys.readouterr()
        code = main(["knowledge", "--config", str(config), *args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return command


def listed(tawasul: Callable[..., Result]) -> list[str]:
    result = tawasul("list")
    assert result.returncode == 0, result.stderr
    return [line.split("\t")[3] for line in result.stdout.splitlines()]


def test_the_shipped_example_answers_out_of_the_box(
    tmp_path: Path, tawasul: Callable[..., Result]
) -> None:
    assert len(listed(tawasul)) >= 50
    sure = tawasul("ask", "وش الاوراق اللي تبونها؟")
    assert sure.returncode == 0 and "صورة الهوية الوطنية" in sure.stdout
    close = tawasul("ask", "عنوانكم لو سمحت")
    assert close.returncode == 3
    assert "1. " in close.stdout and "أين مقر الجمعية؟" in close.stdout
    nothing = tawasul("ask", "--lang", "en", "recipe for chocolate cake")
    assert nothing.returncode == 1 and nothing.stdout == ""
    # A staff tool: what staff try out is not what beneficiaries could not get answered.
    unanswered = tawasul("unanswered")
    assert unanswered.returncode == 0 and unanswered.stdout == ""


def test_import_replaces_the_base_and_counts_added_changed_removed(
    tmp_path: Path, tawasul: Callable[..., Result]
) -> None:
    first = tawasul("import", write(tmp_path, BASE))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().startswith("added 3, changed 0, removed ")
    assert listed(tawasul) == ["متى توزيع السلال؟", "ما أوقات الدوام؟", "What are your hours?"]
    second_text = (
        HEADER
        + "متى توزيع السلال؟,في الأسبوع الثاني من كل شهر.,,ar,baskets\n"
        + "ما أوقات الدوام؟,{organization.hours},متى تفتحون,ar,hours\n"
        + "كيف أتطوع؟,سجل في منصة العمل التطوعي.,,ar,volunteer\n"
    )
    second = tawasul("import", write(tmp_path, second_text, "b.csv"))
    assert second.stdout.strip() == "added 1, changed 1, removed 1"
    answer = tawasul("ask", "متى توزيع السلال")
    assert answer.returncode == 0 and "الأسبوع الثاني" in answer.stdout
    hours = tawasul("ask", "متى الدوام")
    assert "الأحد–الخميس" in hours.stdout  # the placeholder filled


def test_export_writes_a_file_import_reads_back_unchanged(
    tmp_path: Path, tawasul: Callable[..., Result]
) -> None:
    tawasul("import", write(tmp_path, BASE))
    for name in ("out.csv", "out.xlsx"):
        exported = tawasul("export", str(tmp_path / name))
        assert exported.returncode == 0, exported.stderr
        again = tawasul("import", str(tmp_path / name))
        assert again.stdout.strip() == "added 0, changed 0, removed 0"
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel's BOM: Arabic opens right in Excel


BAD_FILES = [
    ("question,alternatives\nمتى الدوام؟,x\n", 'line 1: the column "answer" is missing'),
    (HEADER + "متى الدوام؟,الأحد,,ar,\nما الأوراق؟,   ,,ar,\n", "line 3: the answer is empty"),
    (
        HEADER + "متى الدوام؟,الأحد,,ar,\nكيف أتبرع؟,بالحساب,,ar,\nمتى الدوام,غير,,ar,\n",
        'line 4: the question "متى الدوام" is already on line 2',
    ),
    (HEADER + 'متى الدوام؟,"الأحد\nإلى الخميس",,fr,\n', 'line 2: language must be "ar" or "en"'),
    (HEADER + "متى الدوام؟,اتصل على {organization.fone},,ar,\n", "unknown placeholder"),
    ("", "is empty"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_bad_file_is_refused_with_its_line_and_nothing_changes(
    tmp_path: Path, tawasul: Callable[..., Result], content: str, message: str
) -> None:
    before = listed(tawasul)
    result = tawasul("import", write(tmp_path, content))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert listed(tawasul) == before


def test_a_file_that_is_not_utf8_is_refused_with_its_line(
    tmp_path: Path, tawasul: Callable[..., Result]
) -> None:
    before = listed(tawasul)
    path = tmp_path / "cp1256.csv"
    path.write_bytes((HEADER + "متى الدوام؟,الأحد,,ar,\n").encode("cp1256"))
    result = tawasul("import", str(path))
    assert result.returncode == 1
    assert "line 2 is not UTF-8" in result.stderr and "CSV UTF-8" in result.stderr
    assert listed(tawasul) == before


def test_a_100000_row_file_is_refused_whole(tmp_path: Path, tawasul: Callable[..., Result]) -> None:
    before = listed(tawasul)
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["question", "answer"])
        writer.writerows([f"سؤال رقم {n}", f"جواب {n}"] for n in range(100_000))
    result = tawasul("import", str(path))
    assert result.returncode == 1
    assert "line 5002: a knowledge base holds at most 5,000 entries" in result.stderr
    assert listed(tawasul) == before


def test_an_xlsx_is_read_and_one_with_a_formula_is_refused(
    tmp_path: Path, tawasul: Callable[..., Result]
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["question", "answer", "language"])
    sheet.append(["متى الدوام؟", "الأحد إلى الخميس", "ar"])
    sheet.append(["What are your hours?", "Sunday to Thursday", "en"])
    workbook.save(tmp_path / "good.xlsx")
    good = tawasul("import", str(tmp_path / "good.xlsx"))
    assert good.stdout.strip().startswith("added 2, changed 0, removed ")
    sheet.append(["كم الرسوم؟", '=CONCAT("مجاناً", "")', "ar"])
    workbook.save(tmp_path / "formula.xlsx")
    bad = tawasul("import", str(tmp_path / "formula.xlsx"))
    assert bad.returncode == 1
    assert "line 4, column 2: a formula" in bad.stderr
    assert listed(tawasul) == ["متى الدوام؟", "What are your hours?"]
    (tmp_path / "fake.xlsx").write_text("not a workbook")
    fake = tawasul("import", str(tmp_path / "fake.xlsx"))
    assert fake.returncode == 1 and "not a readable .xlsx" in fake.stderr


def test_chat_answers_offers_and_counts_what_it_could_not_answer(tmp_path: Path) -> None:
    lines = [
        "السلام عليكم",
        "متى توزيع السلال؟",  # answered at the menu
        "لا",  # did not help: a person offered, the question counted
        "٢",  # another question instead
        "عنوانكم لو سمحت",  # did you mean
        "٢",  # by number
        "نعم",
        "وش الاوراق المطلوبة؟ ابي انتحر",  # a crisis word inside a question
    ]
    replies = blocks(run(tmp_path, "chat", lines=lines).stdout)
    assert "٥- استفسار" in replies[0]
    assert "الأسبوع الأول من كل شهر هجري" in replies[1] and "هل أجاب هذا عن سؤالك؟" in replies[1]
    assert "هل تود التحدث مع موظف؟" in replies[2]
    assert "اكتب سؤالك" in replies[3]
    assert "هل تقصد أحد هذه الأسئلة؟" in replies[4]
    assert "حي النسيم" in replies[5]
    assert "يسعدنا ذلك" in replies[6]
    assert "911" in replies[7] or "٩١١" in replies[7]
    urgent = query(tmp_path / "tawasul.db", "SELECT reason, urgent FROM handoff")
    assert urgent == [("crisis", 1)]
    unanswered = run(tmp_path, "knowledge", "unanswered")
    assert unanswered.returncode == 0
    count, _date, language, question = unanswered.stdout.splitlines()[0].split("\t")
    assert (count, language, question) == ("1", "ar", "متى توزيع السلال؟")


def test_the_same_unanswered_question_is_counted_not_repeated(tmp_path: Path) -> None:
    asked = ["٥", "كيف اجدد جواز السفر؟", "٢", "كيف اجدد جواز السفر", "٢", "كيف اطبخ الكبسة باللحم"]
    run(tmp_path, "chat", lines=["مرحبا", *asked])
    rows = run(tmp_path, "knowledge", "unanswered").stdout.splitlines()
    assert [(r.split("\t")[0], r.split("\t")[3]) for r in rows] == [
        ("2", "كيف اجدد جواز السفر"),
        ("1", "كيف اطبخ الكبسة باللحم"),
    ]
