"""Attachments: fetched only where asked, only from the platform, within a quota, private."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from channels import INTAKE_WHATSAPP, TOKEN, WhatsApp, count, make_settings
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select
from sqlmodel import col

from bot.server import Tawasul
from flows.types import Media
from handlers.base import MediaError
from handlers.telegram import TelegramChannel
from storage.db import Database
from storage.models import Document, Message, StoredMedia

PHOTO = b"\xff\xd8\xff\xe0 a photo of the lease" + bytes(range(256)) * 4


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def start(
    database: Database, twilio: FakeTwilio, tmp_path: Path, **server: Any
) -> tuple[Tawasul, TestClient[Any, Any]]:
    settings = make_settings(tmp_path, twilio)
    settings.server = settings.server.model_copy(update=server)
    tawasul = Tawasul(settings, database)
    client: TestClient[Any, Any] = TestClient(TestServer(tawasul.app()))
    await client.start_server()
    return tawasul, client


@pytest.fixture
async def service(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul, client = await start(database, twilio, tmp_path)
    try:
        yield tawasul, client
    finally:
        await client.close()


def fetched(twilio: FakeTwilio) -> int:
    """Media files asked of Twilio (each then redirects to its CDN)."""
    return len([r for r in twilio.media_requests if r.path.startswith("/media/")])


def photos(twilio: FakeTwilio, number: int, size: int = len(PHOTO)) -> dict[str, str]:
    fields = {"NumMedia": str(number)}
    for n in range(number):
        fields[f"MediaUrl{n}"] = twilio.add_media(f"p{n}.jpg", PHOTO[:size], "image/jpeg")
        fields[f"MediaContentType{n}"] = "image/jpeg"
    return fields


async def test_photos_at_the_menu_are_not_fetched_but_recorded_as_sent(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    await phone.send("", **photos(twilio, 3))  # a new sender
    await phone.send("مرحبا")
    await phone.send("", **photos(twilio, 3))  # at the menu
    assert twilio.media_requests == []
    assert not (tmp_path / "media").exists()
    assert await count(tawasul.database, StoredMedia) == 0
    async with tawasul.database.session() as session:
        inbound = (
            await session.scalars(select(Message).where(col(Message.direction) == "in"))
        ).all()
    urls = [item["url"] for message in inbound for item in message.media]
    assert len(urls) == 6 and all(url.startswith(twilio.base_url) for url in urls)


async def test_photos_at_the_documents_step_are_fetched_recorded_and_private(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = service
    phone = WhatsApp(client, twilio, tawasul.database)
    for line in INTAKE_WHATSAPP[:9]:
        await phone.send(line)
    await phone.send("", **photos(twilio, 1))
    assert fetched(twilio) == 1
    async with tawasul.database.session() as session:
        kept = (await session.scalars(select(StoredMedia))).one()
    assert kept.size == len(PHOTO) and kept.content_type == "image/jpeg"
    file = tmp_path / "media" / kept.reference.removeprefix("media/")
    # Encrypted on disk (an ID card, a medical report), read back in clear with the key.
    assert b"a photo of the lease" not in file.read_bytes()
    assert tawasul.media.read(kept.reference) == PHOTO
    assert mode(file) == 0o600 and mode(tmp_path / "media") == 0o700


async def test_a_media_url_on_another_host_is_never_fetched(
    service: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio
) -> None:
    tawasul, client = service
    hits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=PHOTO, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/{path:.*}", elsewhere)
    async with TestServer(app, host="127.0.0.1") as other:
        phone = WhatsApp(client, twilio, tawasul.database)
        for line in INTAKE_WHATSAPP[:9]:
            await phone.send(line)
        for url in (
            str(other.make_url("/latest/meta-data/")),  # another port on this machine
            f"{twilio.base_url}@{other.host}:{other.port}/x.jpg",  # user-info trick
            "file:///etc/passwd",
        ):
            await phone.send("", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    assert hits == []
    assert twilio.media_requests == []
    assert await count(tawasul.database, StoredMedia) == 0
    async with tawasul.database.session() as session:
        documents = (await session.scalars(select(Document))).all()
    assert all(not d.url.startswith("media/") for d in documents)


async def test_each_sender_keeps_at_most_the_quota(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = await start(
        database, twilio, tmp_path, media_files_per_beneficiary=2, media_bytes_per_beneficiary=10**6
    )
    try:
        phone = WhatsApp(client, twilio, tawasul.database)
        for line in INTAKE_WHATSAPP[:9]:
            await phone.send(line)
        await phone.send("", **photos(twilio, 3))
        assert await count(tawasul.database, StoredMedia) == 2
        assert fetched(twilio) == 2
        # Another sender has a quota of their own.
        other = WhatsApp(client, twilio, tawasul.database, "+966551234568")
        for line in INTAKE_WHATSAPP[:9]:
            await other.send(line)
        await other.send("", **photos(twilio, 1))
        assert await count(tawasul.database, StoredMedia) == 3
    finally:
        await client.close()


async def test_the_byte_quota_stops_a_file_that_would_pass_it(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul, client = await start(
        database, twilio, tmp_path, media_bytes_per_beneficiary=len(PHOTO) + 100
    )
    try:
        phone = WhatsApp(client, twilio, tawasul.database)
        for line in INTAKE_WHATSAPP[:9]:
            await phone.send(line)
        await phone.send("", **photos(twilio, 2))
        async with tawasul.database.session() as session:
            sizes = [m.size for m in (await session.scalars(select(StoredMedia))).all()]
        assert sizes == [len(PHOTO)]
        assert len(list((tmp_path / "media").iterdir())) == 1
    finally:
        await client.close()


async def test_telegram_files_come_only_from_the_configured_bot_api(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    async with FakeTelegram(TOKEN) as api:
        channel = TelegramChannel(TOKEN, webhook_secret="s", api_base_url=api.base_url)
        await channel.start()
        try:
            api.add_file("LOCAL", b"secret", str(secret))  # a path on our own disk
            api.add_file("AWAY", b"x", "../../../elsewhere")
            for file_id in ("LOCAL", "AWAY"):
                with pytest.raises(MediaError):
                    await channel.fetch_media(Media(f"tg-file:{file_id}", "image/jpeg"))
            assert api.downloads == []
            api.add_file("OK", b"fine", "photos/file_1.jpg")
            assert await channel.fetch_media(Media("tg-file:OK", "image/jpeg")) == b"fine"
        finally:
            await channel.stop()


async def test_a_new_sqlite_database_and_its_journal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "tawasul.db"
    database = Database(f"sqlite:///{path}")
    try:
        await database.upgrade()
        async with database.session() as session, session.begin():
            await session.execute(select(1))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(file.exists() for file in files)
        assert [mode(file) for file in files] == [0o600, 0o600, 0o600]
    finally:
        await database.dispose()
