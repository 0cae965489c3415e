"""A knowledge-base file that cannot be imported is refused with one line saying where
and why, in words a charity's volunteer can act on (the CLI and the dashboard show it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge import (
    MAX_ALTERNATIVES,
    MAX_ANSWER,
    MAX_QUESTION,
    MAX_TOPIC,
    KnowledgeFileError,
    read_base,
)

HEADER = "question,answer,alternatives,language,topic\n"
ROW = "ما أوقات العمل؟,من الأحد إلى الخميس,,ar,الدوام\n"

REFUSED = {
    "unknown-column": (
        "question,answer,phone\n",
        'line 1: unknown column "phone" (columns: question, answer, alternatives, language, topic)',
    ),
    "missing-answer-column": ("question,topic\n", 'line 1: the column "answer" is missing'),
    "doubled-column": (
        "question,answer,answer\n",
        'line 1: the column "answer" appears twice',
    ),
    "empty-question": (HEADER + " ,جواب,,ar,\n", "line 2: the question is empty"),
    "empty-answer": (HEADER + "سؤال؟,  ,,ar,\n", "line 2: the answer is empty"),
    "long-question": (
        HEADER + "س" * (MAX_QUESTION + 1) + ",جواب,,ar,\n",
        f"line 2: the question is longer than {MAX_QUESTION} characters",
    ),
    "long-answer": (
        HEADER + "سؤال؟," + "ج" * (MAX_ANSWER + 1) + ",,ar,\n",
        f"line 2: the answer is longer than {MAX_ANSWER} characters",
    ),
    "long-topic": (
        HEADER + "سؤال؟,جواب,,ar," + "م" * (MAX_TOPIC + 1) + "\n",
        f"line 2: the topic is longer than {MAX_TOPIC} characters",
    ),
    "long-alternative": (
        HEADER + "سؤال؟,جواب," + "ب" * (MAX_QUESTION + 1) + ",ar,\n",
        f"line 2: an alternative is longer than {MAX_QUESTION} characters",
    ),
    "too-many-alternatives": (
        HEADER
        + "سؤال؟,جواب,"
        + "|".join(f"صيغة {n}" for n in range(MAX_ALTERNATIVES + 1))
        + ",ar,\n",
        f"line 2: more than {MAX_ALTERNATIVES} alternatives",
    ),
    "question-twice": (
        HEADER + ROW + "\n" + ROW,
        'line 4: the question "ما أوقات العمل؟" is already on line 2',
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_file_that_cannot_be_imported_says_where_and_why(case: str, tmp_path: Path) -> None:
    content, why = REFUSED[case]
    path = tmp_path / "base.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeFileError) as raised:
        read_base(path)
    assert str(raised.value) == why


def test_a_file_that_is_no_text_or_no_file_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "base.csv"
    binary.write_bytes(b"question,answer\n\x00\x01\x02")
    with pytest.raises(KnowledgeFileError, match="binary data: it is not a CSV file"):
        read_base(binary)
    with pytest.raises(KnowledgeFileError, match=r"cannot read .*missing\.csv"):
        read_base(tmp_path / "missing.csv")


def test_blank_lines_are_skipped_and_the_entries_kept(tmp_path: Path) -> None:
    path = tmp_path / "base.csv"
    path.write_text("\n,,\n" + HEADER + "\n" + ROW + " , , \n", encoding="utf-8")
    [entry] = read_base(path)
    assert (entry.question, entry.answer, entry.topic) == (
        "ما أوقات العمل؟",
        "من الأحد إلى الخميس",
        "الدوام",
    )
