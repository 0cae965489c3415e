"""The index a process answers from: the base's revision read once a transaction of
turns, a change seen from the next one."""

from __future__ import annotations

from datetime import UTC, datetime

from statements import counting_statements

from bot.knowledge import KnowledgeSource, repository
from flows.types import KnowledgeEntry
from storage.db import Database

NOW = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
HOURS = KnowledgeEntry(0, "ما مواعيد الدوام؟", "من الأحد إلى الخميس")
PLACE = KnowledgeEntry(0, "أين مقر الجمعية؟", "في حي النسيم")


async def test_the_revision_is_read_once_a_transaction_and_a_change_seen_in_the_next(
    database: Database,
) -> None:
    source = KnowledgeSource(example=None)
    async with database.session() as session, session.begin():
        await repository(session).replace_all([HOURS], NOW)
    async with database.session() as session, session.begin():
        first = await source.index(session, NOW)
        with counting_statements(database) as statements:
            again = await source.index(session, NOW)
        assert again is first and statements == []  # the second turn asks nothing
        assert [entry.question for entry in first.entries] == [HOURS.question]
    async with database.session() as session, session.begin():
        await repository(session).replace_all([HOURS, PLACE], NOW)
    async with database.session() as session, session.begin():
        changed = await source.index(session, NOW)
    assert {entry.question for entry in changed.entries} == {HOURS.question, PLACE.question}
