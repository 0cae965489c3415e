"""The knowledge base in the database: entries, the revision every process watches, and the
questions it could not answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.types import KnowledgeEntry
from storage import prepared
from storage.columns import keyring_of
from storage.models import KnowledgeEntryRow, KnowledgeRevision, UnansweredQuestion

_REVISION_TABLE = KnowledgeRevision.__table__  # type: ignore[attr-defined]
# Read for every message the knowledge base may answer: built once, run on the table.
_REVISION = select(_REVISION_TABLE.c.revision).where(_REVISION_TABLE.c.id == 1)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did to the base, by question."""

    added: int
    changed: int
    removed: int


def as_entry(row: KnowledgeEntryRow) -> KnowledgeEntry:
    """The neutral entry the matcher reads."""
    assert row.id is not None, "a stored row has an id"
    return KnowledgeEntry(
        id=row.id,
        question=row.question,
        answer=row.answer,
        alternatives=tuple(row.alternatives or ()),
        language="en" if row.language == "en" else "ar",
        topic=row.topic,
    )


def _same(row: KnowledgeEntryRow, entry: KnowledgeEntry) -> bool:
    return (
        row.question == entry.question
        and row.answer == entry.answer
        and list(row.alternatives or ()) == list(entry.alternatives)
        and row.language == entry.language
        and row.topic == entry.topic
    )


class KnowledgeRepository:
    """Reads and writes of the knowledge base; every write moves the revision.

    ``fold`` turns a question into the key two questions are compared by (the matcher's
    folding, ``flows.knowledge.question_key``, passed in by the caller).
    """

    def __init__(self, session: AsyncSession, fold: Callable[[str], str]) -> None:
        self._session = session
        self._fold = fold

    def _insert(self, model: type[KnowledgeRevision] | type[UnansweredQuestion]) -> sqlite.Insert:
        if self._session.get_bind().dialect.name == "postgresql":
            return postgresql.insert(model)  # type: ignore[return-value]
        return sqlite.insert(model)

    async def revision(self) -> int | None:
        """The base's revision; None when it was never written."""
        found = await prepared.rows(self._session, _REVISION, {})  # every turn asks
        revision: int | None = found[0][0] if found else None
        return revision

    async def seed(self, entries: Sequence[KnowledgeEntry], now: datetime) -> bool:
        """Write ``entries`` as the base if it was never written; whether it did.

        The revision row goes in first with ON CONFLICT DO NOTHING, so of two processes
        starting together only one writes the entries.
        """
        statement = (
            self._insert(KnowledgeRevision)
            .values(id=1, revision=1, source="example", updated_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        result = await self._session.execute(statement)
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        for position, entry in enumerate(entries):
            self._session.add(self._row(entry, position, now))
        await self._session.flush()
        return True

    async def _bump(self, source: str, now: datetime) -> None:
        moved = await self._session.execute(
            update(KnowledgeRevision)
            .where(col(KnowledgeRevision.id) == 1)
            .values(revision=KnowledgeRevision.revision + 1, source=source, updated_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            self._session.add(KnowledgeRevision(id=1, revision=1, source=source, updated_at=now))
            await self._session.flush()

    async def rows(self) -> list[KnowledgeEntryRow]:
        """Every entry, in the order of the file it came from."""
        result = await self._session.execute(
            select(KnowledgeEntryRow).order_by(
                col(KnowledgeEntryRow.position), col(KnowledgeEntryRow.id)
            )
        )
        return list(result.scalars())

    async def entries(self) -> list[KnowledgeEntry]:
        return [as_entry(row) for row in await self.rows()]

    async def get(self, entry_id: int) -> KnowledgeEntryRow | None:
        return await self._session.get(KnowledgeEntryRow, entry_id)

    async def replace_all(
        self, entries: Sequence[KnowledgeEntry], now: datetime, source: str = "import"
    ) -> ImportCounts:
        """Make ``entries`` the whole base (the caller's transaction makes it atomic).

        Entries are matched to the stored ones by question, so an unchanged entry keeps its
        id (a "did you mean" offered a moment ago still finds it).
        """
        stored = {row.question_key: row for row in await self.rows()}
        wanted = {self._fold(entry.question): entry for entry in entries}
        added = changed = 0
        for key in set(stored) - set(wanted):
            await self._session.delete(stored[key])
        await self._session.flush()
        for position, entry in enumerate(entries):
            key = self._fold(entry.question)
            row = stored.get(key)
            if row is None:
                self._session.add(self._row(entry, position, now))
                added += 1
                continue
            if not _same(row, entry):
                changed += 1
                row.question, row.answer = entry.question, entry.answer
                row.alternatives = list(entry.alternatives)
                row.language, row.topic, row.updated_at = entry.language, entry.topic, now
            row.position = position
        await self._session.flush()
        await self._bump(source, now)
        return ImportCounts(added, changed, len(set(stored) - set(wanted)))

    async def add(self, entry: KnowledgeEntry, now: datetime) -> KnowledgeEntryRow:
        last = await self._session.execute(select(func.max(KnowledgeEntryRow.position)))
        row = self._row(entry, (last.scalar() or 0) + 1, now)
        self._session.add(row)
        await self._session.flush()
        await self._bump("dashboard", now)
        return row

    async def change(self, entry: KnowledgeEntry, now: datetime) -> KnowledgeEntryRow | None:
        row = await self.get(entry.id)
        if row is None:
            return None
        row.question, row.question_key = entry.question, self._fold(entry.question)
        row.answer, row.alternatives = entry.answer, list(entry.alternatives)
        row.language, row.topic, row.updated_at = entry.language, entry.topic, now
        await self._session.flush()
        await self._bump("dashboard", now)
        return row

    async def remove(self, entry_id: int, now: datetime) -> KnowledgeEntryRow | None:
        row = await self.get(entry_id)
        if row is None:
            return None
        await self._session.delete(row)
        await self._session.flush()
        await self._bump("dashboard", now)
        return row

    async def record_unanswered(self, question: str, language: str, now: datetime) -> None:
        """Count ``question`` as unanswered; repeats are found by the keyed hash of its
        folded wording (under any configured key, so a question counted before a key
        rotation is counted on), and the question itself is stored encrypted."""
        key = self._fold(question)
        if not key:
            return
        keys = keyring_of(self._session.get_bind().dialect)
        counted = await self._session.execute(
            update(UnansweredQuestion)
            .where(col(UnansweredQuestion.question_key).in_(keys.lookup_hashes(key)))
            .values(count=UnansweredQuestion.count + 1, question=question, last_asked_at=now)
        )
        if counted.rowcount:  # type: ignore[attr-defined]
            return
        statement = self._insert(UnansweredQuestion).values(
            question_key=keys.lookup_hash(key),
            question=question,
            language=language,
            count=1,
            first_asked_at=now,
            last_asked_at=now,
        )
        statement = statement.on_conflict_do_update(  # the same question asked meanwhile
            index_elements=["question_key"],
            set_={
                "count": UnansweredQuestion.count + 1,
                "question": statement.excluded.question,
                "last_asked_at": statement.excluded.last_asked_at,
            },
        )
        await self._session.execute(statement)

    async def unanswered(self, limit: int = 200) -> list[UnansweredQuestion]:
        """The unanswered questions, most frequent first, then the most recent."""
        result = await self._session.execute(
            select(UnansweredQuestion)
            .order_by(
                col(UnansweredQuestion.count).desc(), col(UnansweredQuestion.last_asked_at).desc()
            )
            .limit(limit)
        )
        return list(result.scalars())

    async def get_unanswered(self, unanswered_id: int) -> UnansweredQuestion | None:
        return await self._session.get(UnansweredQuestion, unanswered_id)

    async def forget_unanswered(self, keys: Sequence[str]) -> None:
        """Drop unanswered questions that an entry now answers (by folded wording)."""
        if keys:
            keyring = keyring_of(self._session.get_bind().dialect)
            hashes = [h for key in keys for h in keyring.lookup_hashes(key)]
            await self._session.execute(
                delete(UnansweredQuestion).where(col(UnansweredQuestion.question_key).in_(hashes))
            )

    def _row(self, entry: KnowledgeEntry, position: int, now: datetime) -> KnowledgeEntryRow:
        return KnowledgeEntryRow(
            question=entry.question,
            question_key=self._fold(entry.question),
            answer=entry.answer,
            alternatives=list(entry.alternatives),
            language=entry.language,
            topic=entry.topic,
            position=position,
            created_at=now,
            updated_at=now,
        )
