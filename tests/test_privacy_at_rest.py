"""Personal data at rest, every byte of it, on SQLite and PostgreSQL: a beneficiary files a
request over WhatsApp (the Twilio stand-in, the real client) with a document that holds
their national ID, name and the description of their need; neither the database nor the
media folder holds any of it in clear, staff read it all back with the key, and after the
person is erased neither the database, the export, the media folder nor the log has it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, WhatsApp, make_settings
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select, text
from sqlmodel import SQLModel, col
from transcript import INTAKE_AR

from bot.desk import StaffDesk
from bot.media import MediaStore
from bot.server import Tawasul
from storage.db import Database
from storage.keyring import Keyring, new_key_text, sealed_under
from storage.models import StoredMedia

NAME = "نورة عبدالله سعد القحطاني"
NATIONAL_ID = "1000000008"
DESCRIPTION = "أعاني من اكتئاب شديد منذ وفاة زوجي وأحتاج مساعدة في الإيجار"
SECRETS = (NAME, NATIONAL_ID, DESCRIPTION)
# A small PDF whose text is the ID card's and the medical report's.
DOCUMENT = (
    b"%PDF-1.4\n1 0 obj << /Length 200 >> stream\nBT ("
    + f"{NAME} {NATIONAL_ID} {DESCRIPTION}".encode()
    + b") Tj ET\nendstream endobj\n%%EOF\n"
)
_OURS = {INTAKE_AR[3]: NAME, INTAKE_AR[4]: NATIONAL_ID, INTAKE_AR[8]: DESCRIPTION}
FILING = [_OURS.get(line, line) for line in INTAKE_WHATSAPP]
DOCUMENTS_STEP = FILING.index(DESCRIPTION) + 1  # where the intake asks for documents


def in_clear(files: dict[str, bytes]) -> list[str]:
    """Which secret each file holds readably (UTF-8, UTF-16, or escaped in JSON)."""
    forms = {
        secret: (
            secret.encode(),
            secret.encode("utf-16-le"),
            json.dumps(secret).strip('"').encode(),
        )
        for secret in SECRETS
    }
    return [
        f"{name}: {secret[:6]}…"
        for name, content in files.items()
        for secret, encoded in forms.items()
        if any(form in content for form in encoded)
    ]


def on_disk(tmp_path: Path) -> dict[str, bytes]:
    """Every file of a SQLite database (with its -wal and -shm) and of the media folder."""
    return {
        str(path.relative_to(tmp_path)): path.read_bytes()
        for path in sorted(tmp_path.rglob("*"))
        if path.is_file() and not path.name.endswith(".key")
    }


async def stored(database: Database, tmp_path: Path) -> dict[str, bytes]:
    """What is kept: the files on disk, and for PostgreSQL every row of every table as the
    server keeps it."""
    files = on_disk(tmp_path)
    if not database.is_sqlite:
        async with database.engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                rows = await connection.execute(text(f'SELECT t::text FROM "{table.name}" t'))
                files[f"postgresql:{table.name}"] = "\n".join(r[0] for r in rows).encode()
    return files


async def everything_in_clear(database: Database) -> str:
    """Every value of every table, encrypted ones decrypted with the key."""
    keys = database.keyring
    values: list[str] = []
    async with database.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in await connection.execute(text(f'SELECT * FROM "{table.name}"')):
                values += [keys.decrypt(v) if isinstance(v, str) else str(v) for v in row]
    return "\n".join(values)


async def file_with_document(
    client: TestClient[Any, Any], twilio: FakeTwilio, db: Database
) -> None:
    phone = WhatsApp(client, twilio, db)
    for line in FILING[:DOCUMENTS_STEP]:
        await phone.send(line)
    url = twilio.add_media("report.pdf", DOCUMENT, "application/pdf")
    await phone.send("", NumMedia="1", MediaUrl0=url, MediaContentType0="application/pdf")
    for line in FILING[DOCUMENTS_STEP:]:
        await phone.send(line)


async def test_no_personal_data_in_clear_in_the_database_media_exports_or_logs(
    database: Database, twilio: FakeTwilio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        await file_with_document(client, twilio, database)
    desk = StaffDesk(database, tawasul.settings.flow_settings(), tawasul.clock)
    async with database.session() as session:
        [reference] = (await session.scalars(select(col(StoredMedia.reference)))).all()

    files = await stored(database, tmp_path)
    assert any(name.startswith("media/") for name in files), files.keys()
    assert in_clear(files) == []
    # Staff read it all back with the key: the case file and the document itself.
    assert tawasul.media.read(reference) == DOCUMENT
    exported = json.loads(await desk.export("REQ-000001", "json"))
    answers = exported["answers"]
    assert (answers["name"], answers["national_id"]) == (NAME, NATIONAL_ID)
    assert answers["description"] == DESCRIPTION

    erased = await desk.erase(reference="REQ-000001")
    assert tawasul.media.remove(erased.media) == 1
    assert tawasul.media.read(reference) is None
    assert list((tmp_path / "media").iterdir()) == []
    held = await everything_in_clear(database)
    for form in ("json", "csv"):
        export = await desk.export("REQ-000001", form)
        assert [s[:6] for s in SECRETS if s in export] == [], form
    assert [s[:6] for s in SECRETS if s in held] == []
    assert in_clear(await stored(database, tmp_path)) == []
    assert caplog.records, "the server logged nothing at all: the check below proves nothing"
    assert [s[:6] for s in SECRETS if s in caplog.text] == []


def test_a_file_is_sealed_under_the_current_key_and_rotation_reseals_it(tmp_path: Path) -> None:
    old, new = new_key_text(), new_key_text()
    store = MediaStore(tmp_path / "media", keyring=Keyring.from_text(old))
    reference = store.save(DOCUMENT, "application/pdf")
    path = store.path(reference)
    assert path is not None and sealed_under(path.read_bytes()) == Keyring.from_text(old).current_id
    clear = store.save(b"", "text/plain")  # stands for a file kept before encryption
    clear_path = store.path(clear)
    assert clear_path is not None
    clear_path.write_bytes(b"a lease in clear " + NATIONAL_ID.encode())

    rotated = MediaStore(tmp_path / "media", keyring=Keyring.from_text(new, [old]))
    assert rotated.seal_all() == (2, 0)
    assert rotated.seal_all() == (0, 0)  # nothing left to do
    only_new = MediaStore(tmp_path / "media", keyring=Keyring.from_text(new))
    assert only_new.read(reference) == DOCUMENT
    assert only_new.read(clear) == b"a lease in clear " + NATIONAL_ID.encode()
    assert in_clear({p.name: p.read_bytes() for p in (tmp_path / "media").iterdir()}) == []
    # Under a key no longer configured: left alone and counted, never a traceback.
    stranger = MediaStore(tmp_path / "media", keyring=Keyring.from_text(new_key_text()))
    assert stranger.seal_all() == (0, 2)
    assert only_new.read(reference) == DOCUMENT
