"""Storage's less travelled paths, on SQLite and PostgreSQL: encrypted JSON columns with
no value or not yet migrated, a database without a privacy key, feedback references that
are not one, an unknown feedback status, a second answer in the case file, and knowledge
base edits of an entry removed meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.dialects import sqlite
from test_storage_feedback import give
from test_storage_staff import NOW, WIDOW_PHONE, file_request

from flows.knowledge import KnowledgeEntry, question_key
from storage.columns import EncryptedJSON, EncryptedText, json_text, json_value, keyring_of
from storage.db import Database
from storage.feedback import ANSWERED, FeedbackRepository, NewFeedback
from storage.keyring import PrivacyKeyError
from storage.knowledge import KnowledgeRepository
from storage.repositories import RequestRepository


async def test_an_encrypted_json_column_keeps_null_and_reads_unmigrated_values_as_they_are(
    database: Database,
) -> None:
    dialect = database.engine.dialect
    column = EncryptedJSON()
    # No value stays no value: never an encrypted "null" a later reader would decode.
    assert column.process_bind_param(None, dialect) is None
    assert column.process_result_value(None, dialect) is None
    # A JSON column a migration has not reached yet hands back objects: read as they are.
    assert column.process_result_value({"need": "food"}, dialect) == {"need": "food"}
    stored = column.process_bind_param({"need": "سلة غذائية"}, dialect)
    assert stored is not None and "سلة" not in stored  # encrypted at rest
    assert column.process_result_value(stored, dialect) == {"need": "سلة غذائية"}


def test_json_text_keeps_arabic_and_writes_what_orjson_refuses_as_json_did() -> None:
    assert json_text({"need": "سلة", 3: [1.5, None, True]}) == '{"need":"سلة","3":[1.5,null,true]}'
    big = 2**70 + 1  # beyond orjson's 64 bits: json's turn, and read back as an integer
    assert json_value(json_text(big)) == big and isinstance(json_value(json_text([big]))[0], int)
    deep: list[object] = []
    for _ in range(300):  # beyond orjson's nesting
        deep = [deep]
    assert json_value(json_text(deep)) == deep
    # What json wrote before (spaces, NaN) reads as it did.
    assert json_value('{"a": NaN, "b": "\\u0633"}')["b"] == "س"
    with pytest.raises(TypeError):  # json refused it: a bug in the caller, caught at once
        json_text({"when": NOW})


def test_postgresql_without_a_privacy_key_is_refused_with_how_to_make_one() -> None:
    # No connection is made: the key is asked for before anything is read or written.
    database = Database("postgresql://tawasul@127.0.0.1:9/tawasul")
    with pytest.raises(PrivacyKeyError, match="set TAWASUL_PRIVACY__KEY") as refused:
        _ = database.keyring
    assert "openssl rand -base64 32" in str(refused.value)


def test_a_database_without_a_privacy_key_refuses_to_read_or_write_personal_data() -> None:
    keyless = sqlite.dialect()
    with pytest.raises(RuntimeError, match="no privacy key is set"):
        keyring_of(keyless)
    with pytest.raises(RuntimeError, match="no privacy key is set"):
        EncryptedText().process_bind_param("١٠٠٠٠٠٠٠٠٨", keyless)


async def test_a_feedback_reference_that_is_not_one_finds_nothing_to_lock(
    database: Database,
) -> None:
    await give(database, WIDOW_PHONE, NewFeedback("suggestion", "توصيل للمنازل"))
    async with database.session() as session, session.begin():
        feedback = FeedbackRepository(session)
        assert await feedback.get_for_update("REQ-000001") is None
        assert await feedback.get_for_update("") is None
        found = await feedback.get_for_update("fb-1")
        assert found is not None and found.reference == "FB-000001"


async def test_an_unknown_feedback_status_is_refused_and_nothing_changes(
    database: Database,
) -> None:
    await give(database, WIDOW_PHONE, NewFeedback("suggestion", "توصيل للمنازل"))
    async with database.session() as session, session.begin():
        feedback = FeedbackRepository(session)
        stored = await feedback.get("FB-000001")
        assert stored is not None
        with pytest.raises(ValueError, match="unknown feedback status 'archived'"):
            await feedback.change_status(stored, "archived", now=NOW, by="huda")
    async with database.session() as session:
        feedback = FeedbackRepository(session)
        stored = await feedback.get("FB-000001")
        assert stored is not None and stored.status == "received"
        assert [e.kind for e in await feedback.events(stored)] == ["received"]


async def test_a_second_answer_is_noted_in_the_case_file_by_whom_without_a_status_change(
    database: Database,
) -> None:
    own = await file_request(database, WIDOW_PHONE)
    given = NewFeedback("suggestion", "توصيل للمنازل", request_reference=own)
    await give(database, WIDOW_PHONE, given)
    async with database.session() as session, session.begin():
        feedback = FeedbackRepository(session)
        stored = await feedback.get("FB-000001")
        assert stored is not None
        await feedback.answer(stored, "سننظر فيه", by="huda", now=NOW + timedelta(hours=1))
        await feedback.answer(stored, "بدأنا التوصيل", by="huda", now=NOW + timedelta(hours=2))
        assert stored.status == ANSWERED
        request_id = stored.request_id
    assert request_id is not None
    async with database.session() as session:
        notes = [n.text for n in await RequestRepository(session).notes(request_id)]
    assert notes[-2].startswith("FB-000001 (suggestion): answer -> answered by huda")
    assert notes[-1] == "FB-000001 (suggestion): answer by huda\nبدأنا التوصيل"


async def test_editing_or_removing_an_entry_removed_meanwhile_changes_nothing(
    database: Database,
) -> None:
    entry = KnowledgeEntry(0, "ما أوقات الدوام؟", "الأحد إلى الخميس.")
    async with database.session() as session, session.begin():
        added = await KnowledgeRepository(session, question_key).add(entry, NOW)
        assert added.id is not None
        gone = added.id + 1000  # another staff member removed it a moment ago
    async with database.session() as session, session.begin():
        knowledge = KnowledgeRepository(session, question_key)
        revision = await knowledge.revision()
        changed = KnowledgeEntry(gone, "ما أوقات العمل؟", "من ٨ إلى ٢.")
        assert await knowledge.change(changed, NOW) is None
        assert await knowledge.remove(gone, NOW) is None
        assert await knowledge.revision() == revision  # no new revision for nothing
        assert [(e.question, e.answer) for e in await knowledge.entries()] == [
            ("ما أوقات الدوام؟", "الأحد إلى الخميس.")
        ]


async def test_a_question_of_no_words_is_not_counted_and_forgetting_nothing_keeps_all(
    database: Database,
) -> None:
    async with database.session() as session, session.begin():
        knowledge = KnowledgeRepository(session, question_key)
        await knowledge.record_unanswered("؟؟ !!", "ar", NOW)
        assert await knowledge.unanswered() == []
        await knowledge.record_unanswered("متى توزيع السلال؟", "ar", NOW)
        await knowledge.forget_unanswered([])
        assert [q.question for q in await knowledge.unanswered()] == ["متى توزيع السلال؟"]
