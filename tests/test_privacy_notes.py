"""Free text about a beneficiary beyond the case file, at rest, on SQLite and PostgreSQL:
staff's note on an appointment (migration 0014), the names of the files a beneficiary
sent and the place they shared (migration 0015) are encrypted, read back in clear,
rotated and erased with the person; the audit log of a list export does not keep what
was searched for (a name or a national ID)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, text
from test_dashboard import audit, browser, file_request, login, office  # noqa: F401
from test_privacy import NOW, PHONE, file_one, intake, key_of

from bot.server import Tawasul
from flows.knowledge import question_key
from flows.types import InboundMessage, Location, Media
from storage.appointments import DONE, VISIT
from storage.db import Database
from storage.keyring import Keyring, new_key_text
from storage.models import Appointment, Document, Message, SupportRequest
from storage.privacy import erase_beneficiary, reencrypt
from storage.repositories import IdentityRepository, MessageRepository, RequestRepository

NOTE = "وجدنا الزوج طريح الفراش بعد جلطة، والأسرة بلا دخل منذ ثلاثة أشهر"


async def visit_with_note(database: Database) -> int:
    await file_one(database)
    async with database.session() as session, session.begin():
        request = (await session.scalars(select(SupportRequest))).one()
        visit = Appointment(
            kind=VISIT,
            status=DONE,
            starts_at=NOW,
            ends_at=NOW + timedelta(hours=1),
            identity_id=request.identity_id,
            request_id=request.id,
            note=NOTE,
        )
        session.add(visit)
        await session.flush()
        assert visit.id is not None
        return visit.id


async def stored_note(database: Database) -> str | None:
    async with database.engine.connect() as connection:
        return (await connection.execute(text("SELECT note FROM appointment"))).scalar_one()


async def test_an_appointment_note_is_encrypted_rotated_and_erased(database: Database) -> None:
    visit_id = await visit_with_note(database)
    raw = await stored_note(database)
    assert raw is not None and raw.startswith("tw1:") and "جلطة" not in raw
    async with database.session() as session:
        visit = await session.get(Appointment, visit_id)
        assert visit is not None and visit.note == NOTE

    old, new = key_of(database), new_key_text()
    both = Database(database.url, keyring=Keyring.from_text(new, [old]))
    try:
        await both.check_keys()
        await reencrypt(both, fold_question=question_key)
        assert str(await stored_note(both)).startswith(f"tw1:{both.keyring.current_id}:")
        async with both.session() as session, session.begin():
            visit = await session.get(Appointment, visit_id)
            assert visit is not None and visit.note == NOTE
            request = (await session.scalars(select(SupportRequest))).one()
            assert request.beneficiary_id is not None
            await erase_beneficiary(session, request.beneficiary_id)
        assert await stored_note(both) is None
        async with both.session() as session:
            visit = await session.get(Appointment, visit_id)
            assert visit is not None and visit.status == DONE  # the visit itself stays
    finally:
        await both.dispose()


async def test_the_audit_of_a_list_export_keeps_no_search_words(
    office: tuple[Tawasul, TestClient[Any, Any]],  # noqa: F811
) -> None:
    tawasul, client = office
    await file_request(client, tawasul.database)
    async with browser(client) as staff:
        await login(staff, "mona")
        export = await staff.get("/staff/requests.csv?q=1000000008&status=submitted")
        assert export.status == 200
    [entry] = await audit(tawasul.database, "export_requests")
    assert "1000000008" not in str(entry.detail)
    assert entry.detail["filters"] == {"status": "submitted", "q": "…"}


async def test_file_names_and_a_shared_place_are_encrypted(database: Database) -> None:
    named = Media("media/0a1b.pdf", "application/pdf", "هوية نورة القحطاني 1000000008.pdf")
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        assert identity.id is not None
        await RequestRepository(session).create(
            identity, intake((named,)), channel="whatsapp", signed_message_id=None,
            status="submitted", now=NOW,
        )  # fmt: skip
        sent = InboundMessage(PHONE, NOW, media=(named,), location=Location(24.7136, 46.6753))
        await MessageRepository(session).log_inbound(identity.id, sent)
        await MessageRepository(session).log_inbound(identity.id, InboundMessage(PHONE, NOW, "؟"))
    async with database.engine.connect() as connection:
        media = [r[0] for r in await connection.execute(text("SELECT media FROM message"))]
        names = [r[0] for r in await connection.execute(text("SELECT filename FROM document"))]
    raw = " ".join(str(value) for value in (*media, *names))
    assert "1000000008" not in raw and "القحطاني" not in raw and "24.71" not in raw
    assert "[]" in media  # a message with no attachment: nothing to hide, nothing spent
    async with database.session() as session:
        [document] = (await session.scalars(select(Document))).all()
        assert document.filename == named.filename
        kept = [m.media for m in (await session.scalars(select(Message))).all()]
    assert sorted(kept, key=len) == [
        [],
        [
            {"url": named.url, "content_type": named.content_type, "filename": named.filename},
            {"location": [24.7136, 46.6753]},
        ],
    ]
