"""A beneficiary answers staff's question (needs_info) over WhatsApp: a photo goes into
the case as a document and the words as a note, and the request goes back to review
once, even when staff moved it first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, WhatsApp, make_settings
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select
from sqlmodel import col

from bot.server import Tawasul
from storage.db import Database
from storage.models import Document, Note, StatusChange, SupportRequest

PHOTO = b"\xff\xd8\xff\xe0 the lease, page one" + bytes(range(256))
REFERENCE = "REQ-000001"


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, WhatsApp]]:
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, database)
        for line in INTAKE_WHATSAPP:
            await phone.send(line)
        yield tawasul, phone


async def case(database: Database) -> tuple[list[str], list[Any], list[str]]:
    """The request's status changes, documents and notes, in order."""
    async with database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
        changes = await session.scalars(
            select(StatusChange)
            .where(col(StatusChange.request_id) == request.id)
            .order_by(col(StatusChange.id))
        )
        documents = await session.scalars(
            select(Document).where(col(Document.request_id) == request.id)
        )
        notes = await session.scalars(select(Note).order_by(col(Note.id)))
        return (
            [c.to_status for c in changes],
            list(documents),
            [f"{n.author}: {n.text}" for n in notes],
        )


async def test_a_photo_answering_staffs_question_is_kept_in_the_case(
    office: tuple[Tawasul, WhatsApp], twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, phone = office
    await tawasul.desk.set_status(REFERENCE, "needs_info", note="أرسل صورة عقد الإيجار", by="sara")
    _statuses, documents_before, _notes = await case(tawasul.database)
    lease = twilio.add_media("lease.jpg", PHOTO, "image/jpeg")
    thanks = await phone.send(
        "هذه صورة العقد", NumMedia="1", MediaUrl0=lease, MediaContentType0="image/jpeg"
    )
    assert thanks  # answered, in the beneficiary's language
    statuses, documents, notes = await case(tawasul.database)
    assert statuses[-2:] == ["needs_info", "under_review"]
    assert notes[-1] == "beneficiary: هذه صورة العقد"
    [added] = [d for d in documents if d not in documents_before]
    assert added.url.startswith("media/") and added.content_type == "image/jpeg"
    assert tawasul.media.read(added.url) == PHOTO


async def test_an_answer_after_staff_moved_the_request_is_noted_without_a_second_move(
    office: tuple[Tawasul, WhatsApp],
) -> None:
    tawasul, phone = office
    await tawasul.desk.set_status(REFERENCE, "needs_info", note="ما دخل الأسرة الشهري؟", by="sara")
    # Staff found the answer elsewhere and went on before the beneficiary replied.
    await tawasul.desk.set_status(REFERENCE, "under_review", by="sara")
    await phone.send("الدخل ثلاثة آلاف ريال")
    statuses, _documents, notes = await case(tawasul.database)
    assert statuses == ["submitted", "needs_info", "under_review"]  # not moved again
    assert notes[-1] == "beneficiary: الدخل ثلاثة آلاف ريال"
