"""The knowledge base's unanswered questions at rest, on SQLite and PostgreSQL: a question
may tell someone's circumstances, so it is stored encrypted and counted by the keyed
hash of its folded wording; migration 0013 converts the ones kept before, and key
rotation hashes them again (two that now fold alike become one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from test_privacy import key_of
from test_storage_migrations import _migrate

from flows.knowledge import question_key
from storage.db import Database
from storage.keyring import Keyring, new_key_text
from storage.knowledge import KnowledgeRepository
from storage.privacy import reencrypt

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
QUESTION = "زوجي مريض بالسرطان وفصلوه من العمل هل تساعدون في علاجه؟"
AGAIN = "زوجي مريض بالسرطان وفصلوه من العمل، هل تساعدون في علاجه"  # folds alike


async def record(database: Database, question: str, at: datetime = NOW) -> None:
    async with database.session() as session, session.begin():
        await KnowledgeRepository(session, question_key).record_unanswered(question, "ar", at)


async def counted(database: Database) -> list[tuple[str, int]]:
    async with database.session() as session:
        rows = await KnowledgeRepository(session, question_key).unanswered()
    return [(row.question, row.count) for row in rows]


async def raw(database: Database) -> list[tuple[str, str]]:
    async with database.engine.connect() as connection:
        found = await connection.execute(
            text("SELECT question_key, question FROM knowledge_unanswered")
        )
        return [(str(k), str(q)) for k, q in found]


async def test_a_question_is_stored_encrypted_and_counted_by_its_keyed_hash(
    database: Database,
) -> None:
    assert question_key(QUESTION) == question_key(AGAIN)
    await record(database, QUESTION)
    await record(database, AGAIN, NOW + timedelta(minutes=5))
    assert await counted(database) == [(AGAIN, 2)]  # the latest wording, counted twice
    [(key, stored)] = await raw(database)
    assert stored.startswith("tw1:") and "السرطان" not in stored
    assert "السرطان" not in key and key == database.keyring.lookup_hash(question_key(QUESTION))
    # An entry that answers it now takes it off the list.
    async with database.session() as session, session.begin():
        await KnowledgeRepository(session, question_key).forget_unanswered([question_key(QUESTION)])
    assert await counted(database) == []


async def test_migration_0013_encrypts_the_questions_kept_before(database: Database) -> None:
    await _migrate(database, command.downgrade, "0012")
    folded = question_key(QUESTION)
    async with database.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO knowledge_unanswered (question_key, question, language, count,"
                " first_asked_at, last_asked_at) VALUES (:key, :question, 'ar', 3, :at, :at)"
            ),
            {"key": folded, "question": QUESTION, "at": NOW},
        )
    await database.upgrade()
    [(key, stored)] = await raw(database)
    assert "السرطان" not in key + stored
    await record(database, AGAIN)  # asked again after the upgrade: the same one
    assert await counted(database) == [(AGAIN, 4)]


async def test_rotation_hashes_the_questions_again_and_merges_what_folds_alike(
    database: Database,
) -> None:
    await record(database, QUESTION)
    old, new = key_of(database), new_key_text()
    # A process that knew only the new key (as a server restarted on a rotated key file
    # while another still wrote under the old one) counted it apart.
    apart = Database(database.url, keyring=Keyring.from_text(new))
    try:
        await record(apart, QUESTION, NOW + timedelta(seconds=30))
    finally:
        await apart.dispose()
    assert len(await raw(database)) == 2
    both = Database(database.url, keyring=Keyring.from_text(new, [old]))
    try:
        await both.check_keys()
        # Asked again with both keys before the rotation: found under both hashes.
        await record(both, AGAIN, NOW + timedelta(minutes=1))
        assert sorted(await counted(both)) == [(AGAIN, 2), (AGAIN, 2)]
        assert await reencrypt(both, fold_question=question_key) > 0
        assert await counted(both) == [(AGAIN, 4)]  # one again
    finally:
        await both.dispose()
    only_new = Database(database.url, keyring=Keyring.from_text(new))
    try:
        await only_new.check_keys()
        [(key, _stored)] = await raw(only_new)
        assert key == only_new.keyring.lookup_hash(question_key(QUESTION))
        await record(only_new, QUESTION, NOW + timedelta(minutes=2))
        assert await counted(only_new) == [(QUESTION, 5)]
    finally:
        await only_new.dispose()
