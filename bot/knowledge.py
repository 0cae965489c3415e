"""The knowledge base's files and upkeep: reading and checking the charity's spreadsheet,
writing it back, keeping each process's index in step with the database, and staff edits.

One set of checks serves the import and the dashboard (``check_entry``); an import is
read and checked whole before anything is written, then replaces the base in one
transaction.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows.knowledge import PLACEHOLDERS, KnowledgeIndex, question_key, unknown_placeholders
from flows.types import KnowledgeEntry
from storage.db import Database
from storage.knowledge import ImportCounts, KnowledgeRepository
from storage.models import Staff
from storage.repositories import AuditRepository

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parent / "knowledge_example.csv"
COLUMNS = ("question", "answer", "alternatives", "language", "topic")
REQUIRED = ("question", "answer")
MAX_ENTRIES = 5000
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_QUESTION = 300
# A WhatsApp message holds 1,600 characters; the "did this answer" line needs room.
MAX_ANSWER = 1500
MAX_ALTERNATIVES = 30
MAX_TOPIC = 60


class KnowledgeFileError(Exception):
    """A file or an entry that cannot be the knowledge base: one line saying where and why.

    ``key`` and ``params`` name the same reason in the catalogue, for the dashboard.
    """

    def __init__(self, message: str, key: str = "", **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class EntryFields:
    """An entry as staff typed it, before checking (a spreadsheet row or a form)."""

    question: str
    answer: str
    alternatives: str = ""
    language: str = ""
    topic: str = ""


def check_entry(fields: EntryFields, entry_id: int = 0) -> KnowledgeEntry:
    """The entry ``fields`` describe, or KnowledgeFileError saying what is wrong with it."""
    question = " ".join(fields.question.split())
    answer = fields.answer.strip()
    if not question_key(question):
        raise KnowledgeFileError("the question is empty", "dash.knowledge.error.question_empty")
    if not answer:
        raise KnowledgeFileError("the answer is empty", "dash.knowledge.error.answer_empty")
    if len(question) > MAX_QUESTION:
        raise KnowledgeFileError(
            f"the question is longer than {MAX_QUESTION} characters",
            "dash.knowledge.error.too_long",
            limit=MAX_QUESTION,
        )
    if len(answer) > MAX_ANSWER:
        raise KnowledgeFileError(
            f"the answer is longer than {MAX_ANSWER} characters",
            "dash.knowledge.error.too_long",
            limit=MAX_ANSWER,
        )
    language = fields.language.strip().lower() or "ar"
    if language not in ("ar", "en"):
        raise KnowledgeFileError(
            f'language must be "ar" or "en", not "{fields.language}"',
            "dash.knowledge.error.language",
        )
    topic = fields.topic.strip()
    if len(topic) > MAX_TOPIC:
        raise KnowledgeFileError(
            f"the topic is longer than {MAX_TOPIC} characters",
            "dash.knowledge.error.too_long",
            limit=MAX_TOPIC,
        )
    unknown = unknown_placeholders(answer)
    if unknown:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise KnowledgeFileError(
            f"unknown placeholder {{{unknown[0]}}} (known: {known})",
            "dash.knowledge.error.placeholder",
            name="{" + unknown[0] + "}",
            known=known,
        )
    alternatives: list[str] = []
    seen = {question_key(question)}
    for alternative in fields.alternatives.split("|"):
        alternative = " ".join(alternative.split())
        key = question_key(alternative)
        if not key or key in seen:
            continue
        if len(alternative) > MAX_QUESTION:
            raise KnowledgeFileError(
                f"an alternative is longer than {MAX_QUESTION} characters",
                "dash.knowledge.error.too_long",
                limit=MAX_QUESTION,
            )
        seen.add(key)
        alternatives.append(alternative)
    if len(alternatives) > MAX_ALTERNATIVES:
        raise KnowledgeFileError(
            f"more than {MAX_ALTERNATIVES} alternatives",
            "dash.knowledge.error.too_many",
            limit=MAX_ALTERNATIVES,
        )
    return KnowledgeEntry(
        id=entry_id,
        question=question,
        answer=answer,
        alternatives=tuple(alternatives),
        language="en" if language == "en" else "ar",
        topic=topic,
    )


def check_unique(entries: Sequence[KnowledgeEntry], lines: Sequence[int]) -> None:
    """Refuse a question (or alternative) that two entries share: which should answer it?"""
    first: dict[str, int] = {}
    for entry, line in zip(entries, lines, strict=True):
        for phrasing in (entry.question, *entry.alternatives):
            key = question_key(phrasing)
            if key in first and first[key] != line:
                raise KnowledgeFileError(
                    f'line {line}: the question "{phrasing}" is already on line {first[key]}'
                )
            first[key] = line


def read_base(path: Path) -> list[KnowledgeEntry]:
    """Every entry of a CSV or .xlsx file, checked; KnowledgeFileError at the first problem."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise KnowledgeFileError(
                f"{path.name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise KnowledgeFileError(f"cannot read {path}: {exc.strerror}") from None
    rows = _xlsx_rows(data) if path.suffix.lower() in (".xlsx", ".xlsm") else _csv_rows(data)
    entries: list[KnowledgeEntry] = []
    lines: list[int] = []
    header: dict[str, int] | None = None
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _header(cells, line)
            continue
        if len(entries) >= MAX_ENTRIES:
            raise KnowledgeFileError(
                f"line {line}: a knowledge base holds at most {MAX_ENTRIES:,} entries"
            )
        fields = EntryFields(**{name: _cell(cells, at) for name, at in header.items()})
        try:
            entries.append(check_entry(fields))
        except KnowledgeFileError as exc:
            raise KnowledgeFileError(f"line {line}: {exc}") from None
        lines.append(line)
    if header is None:
        raise KnowledgeFileError(
            f"{path.name} is empty: it needs a header line ({', '.join(COLUMNS)})"
        )
    check_unique(entries, lines)
    return entries


def _cell(cells: Sequence[str], at: int) -> str:
    return cells[at] if at < len(cells) else ""


def _header(cells: Sequence[str], line: int) -> dict[str, int]:
    names = [cell.strip().lower().lstrip("\ufeff") for cell in cells]
    unknown = [name for name in names if name and name not in COLUMNS]
    if unknown:
        raise KnowledgeFileError(
            f'line {line}: unknown column "{unknown[0]}" (columns: {", ".join(COLUMNS)})'
        )
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise KnowledgeFileError(f'line {line}: the column "{missing[0]}" is missing')
    doubled = [name for name in names if name and names.count(name) > 1]
    if doubled:
        raise KnowledgeFileError(f'line {line}: the column "{doubled[0]}" appears twice')
    return {name: at for at, name in enumerate(names) if name}


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise KnowledgeFileError(
            f'line {line} is not UTF-8 text: in Excel, save the file as "CSV UTF-8"'
        ) from None
    if "\x00" in text:
        raise KnowledgeFileError("the file holds binary data: it is not a CSV file")
    first = text.split("\n", 1)[0]
    # Excel in Arabic and European locales separates with ";": take what the header uses.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise KnowledgeFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
        yield start, cells
        start = reader.line_num + 1


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise KnowledgeFileError("the file is not a readable .xlsx workbook") from None
    try:
        sheet = workbook.worksheets[0]
        for line, row in enumerate(sheet.iter_rows(), start=1):
            cells = []
            for at, cell in enumerate(row):
                if getattr(cell, "data_type", None) == "f":
                    raise KnowledgeFileError(
                        f"line {line}, column {at + 1}: a formula; the knowledge base needs "
                        "the text itself (copy the cells and paste them as values)"
                    )
                cells.append(_as_text(cell.value))
            yield line, cells
    finally:
        workbook.close()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_base(entries: Sequence[KnowledgeEntry], path: Path) -> None:
    """Write the base as a file ``read_base`` reads back (CSV with Excel's BOM, or .xlsx)."""
    rows = [[e.question, e.answer, "|".join(e.alternatives), e.language, e.topic] for e in entries]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.append(list(COLUMNS))
        for row in rows:
            # A cell starting with "=" would become a formula in Excel: keep it text.
            sheet.append([f"'{c}" if c.startswith("=") else c for c in row])
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def repository(session: AsyncSession) -> KnowledgeRepository:
    """The knowledge base's tables, comparing questions as the matcher folds them."""
    return KnowledgeRepository(session, question_key)


def example_entries() -> list[KnowledgeEntry]:
    """The shipped example base (bot/knowledge_example.csv)."""
    return read_base(EXAMPLE)


class KnowledgeSource:
    """The index a process answers from, rebuilt only when the base's revision moves.

    Every write (an import, the dashboard, another process) moves the revision, so a
    change takes effect with the next transaction of turns in every process (the
    revision is read once in each). A base never written gets the shipped example.
    """

    def __init__(self, example: Path | None = EXAMPLE) -> None:
        self._example = example
        self._revision: int | None = None
        self._index = KnowledgeIndex(())
        # The transaction the revision was last read in: its other turns read no more.
        self._read_in: object = None

    async def index(self, session: AsyncSession, now: datetime) -> KnowledgeIndex:
        transaction = session.sync_session.get_transaction()
        if transaction is not None and transaction is self._read_in:
            return self._index
        base = repository(session)
        revision = await base.revision()
        if revision is None:
            await seed_example(session, now, self._example)
            revision = await base.revision()
        if revision != self._revision:
            self._index = KnowledgeIndex(await base.entries())
            self._revision = revision
        self._read_in = transaction
        return self._index


async def seed_example(
    session: AsyncSession, now: datetime, example: Path | None = EXAMPLE
) -> None:
    """Give a base that was never written the shipped example (nothing when it was)."""
    entries = read_base(example) if example is not None else []
    if await repository(session).seed(entries, now):
        log.info("knowledge base started from the shipped example (%d entries)", len(entries))


async def import_base(database: Database, path: Path, now: datetime) -> ImportCounts:
    """Replace the whole base with the file's entries, or change nothing."""
    entries = read_base(path)
    async with database.session() as session, session.begin():
        base = repository(session)
        counts = await base.replace_all(entries, now)
        await base.forget_unanswered(_keys(entries))
    return counts


def _keys(entries: Sequence[KnowledgeEntry]) -> list[str]:
    return [question_key(p) for e in entries for p in (e.question, *e.alternatives)]


class KnowledgeDesk:
    """Staff edits of single entries (the dashboard): checked like an import, audited."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def _check_unique(self, base: KnowledgeRepository, entry: KnowledgeEntry) -> None:
        taken = {
            question_key(phrasing): other.question
            for other in await base.entries()
            if other.id != entry.id
            for phrasing in (other.question, *other.alternatives)
        }
        for phrasing in (entry.question, *entry.alternatives):
            other = taken.get(question_key(phrasing))
            if other is not None:
                raise KnowledgeFileError(
                    f'the question "{phrasing}" is already in the entry "{other}"',
                    "dash.knowledge.error.duplicate",
                    question=phrasing,
                    other=other,
                )

    async def add(
        self, fields: EntryFields, staff: Staff | None, now: datetime, *, unanswered: int = 0
    ) -> KnowledgeEntry:
        """Add an entry; ``unanswered`` names the unanswered question it answers."""
        entry = check_entry(fields)
        async with self._db.session() as session, session.begin():
            base = repository(session)
            await seed_example(session, now)
            await self._check_unique(base, entry)
            row = await base.add(entry, now)
            await base.forget_unanswered(_keys([entry]))
            await AuditRepository(session).add(
                staff, "knowledge_add", f"knowledge:{row.id}", {"unanswered": unanswered}, now=now
            )
            return replace(entry, id=row.id or 0)

    async def change(
        self, entry_id: int, fields: EntryFields, staff: Staff | None, now: datetime
    ) -> KnowledgeEntry:
        entry = check_entry(fields, entry_id)
        async with self._db.session() as session, session.begin():
            base = repository(session)
            await self._check_unique(base, entry)
            if await base.change(entry, now) is None:
                raise KnowledgeFileError("that entry no longer exists", "dash.error.not_found")
            await base.forget_unanswered(_keys([entry]))
            await AuditRepository(session).add(
                staff, "knowledge_change", f"knowledge:{entry_id}", now=now
            )
        return entry

    async def remove(self, entry_id: int, staff: Staff | None, now: datetime) -> None:
        async with self._db.session() as session, session.begin():
            if await repository(session).remove(entry_id, now) is None:
                raise KnowledgeFileError("that entry no longer exists", "dash.error.not_found")
            await AuditRepository(session).add(
                staff, "knowledge_remove", f"knowledge:{entry_id}", now=now
            )
