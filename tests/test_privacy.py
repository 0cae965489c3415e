"""Personal data under the Saudi PDPL, through the whole server and the command line: the
privacy notice asked over a channel with buttons, the consent kept in the case file, and
"no" leaving nothing of the intake."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import CHAT, TelegramChat, make_settings
from conftest import POSTGRESQL_KEY
from fakes.telegram_api import FakeTelegram, private_message
from sqlalchemy import select
from sqlalchemy.engine import make_url
from test_cli import blocks, query, run
from transcript import INTAKE_AR

from bot.desk import StaffDesk
from bot.media import MediaStore
from bot.server import Tawasul
from flows.knowledge import question_key
from flows.types import Address, FlowSettings, Media, SaveIntake
from storage.db import Database
from storage.keyring import Keyring, PrivacyKeyError, key_file_for, new_key_text
from storage.models import ChannelIdentity, Document, Message, Note, SupportRequest
from storage.privacy import erase_beneficiary, find_beneficiary, reencrypt
from storage.repositories import IdentityRepository, RatingRepository, RequestRepository

NOTICE = {"notice_version": "2026-12", "notice_url": "https://charity.example/privacy"}
NOTICE_ENV = {
    "TAWASUL_PRIVACY__NOTICE_VERSION": NOTICE["notice_version"],
    "TAWASUL_PRIVACY__NOTICE_URL": NOTICE["notice_url"],
}


@pytest.fixture
async def telegram_service(
    database: Database, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    tawasul = Tawasul(make_settings(tmp_path, telegram=telegram, privacy=NOTICE), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


def _buttons(call: dict[str, Any]) -> list[str]:
    markup = call.get("reply_markup") or {}
    rows = markup.get("keyboard") or markup.get("inline_keyboard") or []
    return [button["text"] for row in rows for button in row]


async def test_the_notice_over_telegram_with_buttons_and_the_consent_in_the_case_file(
    telegram_service: tuple[Tawasul, TestClient[Any, Any]], telegram: FakeTelegram
) -> None:
    tawasul, client = telegram_service
    chat = TelegramChat(client, telegram, tawasul.database)
    await chat.send(private_message(CHAT, "/start"))
    notice = await chat.send(private_message(CHAT, "١"))
    assert "https://charity.example/privacy" in notice[-1]["text"]
    assert _buttons(notice[-1]) == ["أوافق", "لا أوافق"]
    # A reply-keyboard tap sends its label.
    first = await chat.send(private_message(CHAT, "أوافق"))
    assert "(١/٨)" in first[-1]["text"]
    for line in INTAKE_AR[3:]:
        await chat.send(private_message(CHAT, line))
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
    assert request.consent is not None
    assert request.consent["version"] == "2026-12"
    assert request.consent["channel"] == "telegram"
    async with tawasul.database.session() as session:
        # Texts are encrypted (no SQL comparison finds them): compared once read.
        [tapped] = [m for m in await session.scalars(select(Message)) if m.text == "أوافق"]
    assert request.consent["message_id"] == tapped.platform_message_id

    case = await tawasul.desk.case_file(str(request.reference))
    [consent] = [event for event in case.events if event.kind == "consent"]
    assert consent.text == "2026-12"
    exported = json.loads(await tawasul.desk.export(str(request.reference), "json"))
    assert any(event["kind"] == "consent" for event in exported["events"])


def test_out_of_the_box_the_built_in_notice_is_asked_and_can_be_turned_off(
    tmp_path: Path,
) -> None:
    # No configuration at all: the notice is asked and the consent kept with version "1".
    filed = run(tmp_path, "chat", lines=INTAKE_AR)
    assert filed.returncode == 0, filed.stderr
    assert "لدراسة طلبك فقط" in blocks(filed.stdout)[1]
    shown = run(tmp_path, "requests", "show", "REQ-000001")
    assert shown.returncode == 0, shown.stderr
    assert "consent  1" in shown.stdout
    # An explicit empty version: a charity that collects consent another way.
    off = {"TAWASUL_PRIVACY__NOTICE_VERSION": ""}
    unasked = run(tmp_path, "chat", "--user", "other", lines=["١"], env=off)
    assert unasked.returncode == 0, unasked.stderr
    assert "(١/٨)" in blocks(unasked.stdout)[0] and "لدراسة طلبك فقط" not in unasked.stdout


def test_consent_shown_by_requests_show_and_no_keeps_nothing(tmp_path: Path) -> None:
    filed = run(tmp_path, "chat", lines=INTAKE_AR, env=NOTICE_ENV)
    assert filed.returncode == 0, filed.stderr
    assert "REQ-000001" in blocks(filed.stdout)[-1]
    shown = run(tmp_path, "requests", "show", "REQ-000001", env=NOTICE_ENV)
    assert shown.returncode == 0, shown.stderr
    assert "consent  2026-12" in shown.stdout
    audit = "SELECT action, target, username, detail FROM audit_entry"
    [(action, target, username, detail)] = query(tmp_path / "tawasul.db", audit)
    assert (action, target, username, json.loads(detail)) == (
        "case_read",
        "REQ-000001",
        None,
        {"where": "cli"},
    )

    declined = run(tmp_path, "chat", "--user", "other", lines=["١", "لا"], env=NOTICE_ENV)
    assert declined.returncode == 0, declined.stderr
    assert "لم نحفظ شيئاً" in blocks(declined.stdout)[-1]
    assert query(tmp_path / "tawasul.db", "SELECT count(*) FROM support_request") == [(1,)]
    [(data,)] = query(
        tmp_path / "tawasul.db",
        "SELECT data FROM conversation JOIN channel_identity ci ON ci.id = identity_id "
        "WHERE ci.user_id = 'other'",
    )
    state = json.loads(Keyring.beside(tmp_path / "tawasul.db").decrypt(str(data)))
    assert "intake_draft" not in state and "consent" not in state


# --- protection at rest ---

NAME = "نورة عبدالله سعد القحطاني"
NATIONAL_ID = "1000000008"
DESCRIPTION = "أعاني من اكتئاب شديد منذ وفاة زوجي وأحتاج مساعدة في الإيجار"
FILING = [*INTAKE_AR[:3], NAME, NATIONAL_ID, *INTAKE_AR[5:8], DESCRIPTION, "تم", "نعم"]


def _stored_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of the database (with its -wal and -shm) and of the media folder."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(".key")
    }


def _in_clear(files: dict[str, bytes], *secrets: str) -> list[str]:
    return [
        f"{name}: {secret[:6]}…"
        for name, content in files.items()
        for secret in secrets
        if secret.encode() in content or secret.encode("utf-16-le") in content
    ]


def test_no_personal_data_in_clear_in_the_database_file_or_media(tmp_path: Path) -> None:
    filed = run(tmp_path, "chat", lines=FILING)
    assert filed.returncode == 0, filed.stderr
    assert "REQ-000001" in blocks(filed.stdout)[-1]
    files = _stored_bytes(tmp_path)
    assert "tawasul.db" in files
    assert _in_clear(files, NAME, NATIONAL_ID, DESCRIPTION) == []
    key_file = tmp_path / "tawasul.db.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Staff read it all back, with the key.
    exported = run(tmp_path, "requests", "export", "REQ-000001", "--format", "json")
    answers = json.loads(exported.stdout)["answers"]
    assert (answers["name"], answers["national_id"]) == (NAME, NATIONAL_ID)
    assert answers["description"] == DESCRIPTION


def test_a_wrong_key_fails_start_up_in_one_line(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=FILING).returncode == 0
    wrong = {"TAWASUL_PRIVACY__KEY": new_key_text()}
    result = run(tmp_path, "requests", "show", "REQ-000001", env=wrong)
    assert result.returncode == 1
    assert result.stderr.startswith("tawasul: privacy.key is not the key")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert NAME not in result.stdout
    broken = run(tmp_path, "requests", "list", env={"TAWASUL_PRIVACY__KEY": "c2hvcnQ="})
    assert broken.returncode == 2 and "32 expected" in broken.stderr


def test_rotating_the_key_file_keeps_every_record_readable(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=FILING).returncode == 0
    key_file = tmp_path / "tawasul.db.key"
    old_key = key_file.read_text().split()[0]
    # A document kept under the old key (server.media_dir is ./media by default).
    document = MediaStore(tmp_path / "media", keyring=Keyring.from_text(old_key))
    reference = document.save(f"{NAME} {NATIONAL_ID}".encode(), "application/pdf")
    rotated = run(tmp_path, "privacy", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert "records re-encrypted" in rotated.stdout
    assert "1 media files re-encrypted" in rotated.stdout
    new_key = key_file.read_text().split()[0]
    assert new_key != old_key and key_file.stat().st_mode & 0o777 == 0o600
    old_id = Keyring.from_text(old_key).current_id
    assert f"tw1:{old_id}:".encode() not in (tmp_path / "tawasul.db").read_bytes()
    only_new_file = MediaStore(tmp_path / "media", keyring=Keyring.from_text(new_key))
    assert only_new_file.read(reference) == f"{NAME} {NATIONAL_ID}".encode()
    # Readable under the new key alone.
    only_new = {"TAWASUL_PRIVACY__KEY": new_key}
    exported = run(tmp_path, "requests", "export", "REQ-000001", "--format", "json", env=only_new)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["answers"]["name"] == NAME
    # The same national ID filed again is still recognised (its lookup hash followed).
    again = run(tmp_path, "chat", "--user", "phone-2", lines=FILING, env=only_new)
    assert again.returncode == 0, again.stderr
    assert query(tmp_path / "tawasul.db", "SELECT count(*) FROM beneficiary") == [(1,)]


# --- the right to erasure ---


def _everything_in_clear(database: Path) -> str:
    """Every value of every table, encrypted ones decrypted with the key: what the
    database holds as a whole, readable."""
    keys = Keyring.beside(database)
    with sqlite3.connect(database) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        values = [
            keys.decrypt(value) if isinstance(value, str) else str(value)
            for table in tables
            for row in connection.execute(f'SELECT * FROM "{table}"')
            for value in row
        ]
    return "\n".join(values)


async def _ratings(database: Path) -> list[tuple[int, str | None]]:
    db = Database(f"sqlite:///{database}")
    try:
        async with db.session() as session:
            rows = await RatingRepository(session).report()
        return [(row.score, row.need) for row in rows]
    finally:
        await db.dispose()


async def test_erase_removes_the_person_and_keeps_the_statistics(tmp_path: Path) -> None:
    filed = run(tmp_path, "chat", lines=[*FILING, "٣", "٥", "شكراً لكم يا نورة"])
    assert filed.returncode == 0, filed.stderr
    database = tmp_path / "tawasul.db"
    listed = run(tmp_path, "requests", "list").stdout
    ratings = await _ratings(database)
    assert ratings == [(5, None)]  # a rating on demand: about no request
    assert NAME in _everything_in_clear(database)

    erased = run(tmp_path, "requests", "erase", "REQ-000001")
    assert erased.returncode == 0, erased.stderr
    assert "erased: 1 requests" in erased.stdout

    assert run(tmp_path, "requests", "list").stdout == listed  # status, need, channel, dates
    assert await _ratings(database) == ratings
    held = _everything_in_clear(database)
    for gone in (NAME, NATIONAL_ID, DESCRIPTION, "نورة", "+966551234567", "0551234567"):
        assert gone not in held, gone
    exported = json.loads(run(tmp_path, "requests", "export", "REQ-000001").stdout)
    assert exported["answers"] == {"city": "جدة", "need": "food_basket"}
    assert [e["text"] for e in exported["events"] if e["kind"] == "status_change"] == ["submitted"]
    [(target, detail)] = query(
        database, "SELECT target, detail FROM audit_entry WHERE action = 'erase'"
    )
    assert target == "REQ-000001" and NAME not in str(detail) and NATIONAL_ID not in str(detail)


def test_erase_by_national_id(tmp_path: Path) -> None:
    assert run(tmp_path, "chat", lines=FILING).returncode == 0
    assert run(tmp_path, "chat", "--user", "phone-2", lines=FILING).returncode == 0
    erased = run(tmp_path, "beneficiaries", "erase", "--national-id", "١٠٠٠٠٠٠٠٠٨")
    assert erased.returncode == 0, erased.stderr
    assert "erased: 2 requests" in erased.stdout
    assert NAME not in _everything_in_clear(tmp_path / "tawasul.db")
    again = run(tmp_path, "beneficiaries", "erase", "--national-id", NATIONAL_ID)
    assert again.returncode == 1 and "no applicant" in again.stderr
    wrong = run(tmp_path, "beneficiaries", "erase", "--national-id", "123")
    assert wrong.returncode == 1 and "not a valid national ID" in wrong.stderr


async def test_erasing_in_storage_names_the_files_and_keeps_the_rows(database: Database) -> None:
    photo = Media("media/abc.jpg", "image/jpeg", "id.jpg")
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        request = await RequestRepository(session).create(
            identity,
            intake(documents=(photo,)),
            channel="whatsapp",
            signed_message_id=None,
            status="submitted",
            now=NOW,
        )
        await RequestRepository(session).add_note(request, "sara", "زوجها متوفى", NOW)
    async with database.session() as session, session.begin():
        found = await find_beneficiary(session, "1000000008")
        assert found is not None and found.id == request.beneficiary_id
        erased = await erase_beneficiary(session, request.beneficiary_id)
    assert erased.media == ("media/abc.jpg",) and erased.requests == 1
    async with database.session() as session:
        assert await find_beneficiary(session, "1000000008") is None
        kept = await session.get(SupportRequest, request.id)
        assert kept is not None and kept.answers == {"city": "الرياض", "need": "food_basket"}
        assert (await session.scalars(select(Document))).all() == []
        assert (await session.scalars(select(Note))).all() == []
        person = await session.get(ChannelIdentity, identity.id)
        assert person is not None and person.user_id == f"erased:{identity.id}"


PHONE = Address("whatsapp", "+966501234567")
NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)


def intake(documents: tuple[Media, ...] = ()) -> SaveIntake:
    answers = {
        "name": "فاطمة أحمد علي",
        "national_id": "1000000008",
        "mobile": "+966501234567",
        "city": "الرياض",
        "need": "food_basket",
        "description": "أسرة من خمسة أفراد",
    }
    return SaveIntake(answers, documents, NOW, NOW)


async def test_retention_purges_only_requests_closed_long_ago(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with database.session() as session, session.begin():
        requests = RequestRepository(session)
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        closed = await requests.create(
            identity,
            intake(),
            channel="whatsapp",
            signed_message_id=None,
            status="submitted",
            now=NOW,
        )
        await requests.change_status(closed, "rejected", now=NOW, by="sara", note=None)
        other = await IdentityRepository(session).get_or_create(
            Address("sms", "+966502222222"), NOW
        )
        still_open = dataclasses.replace(
            intake(), answers={**intake().answers, "national_id": "2000000006"}
        )
        await requests.create(
            other, still_open, channel="sms", signed_message_id=None, status="submitted", now=NOW
        )
    removed: list[str] = []

    def remove_files(references: Sequence[str]) -> int:
        removed.extend(references)
        return len(references)

    five_years = timedelta(days=5 * 365)
    soon = StaffDesk(database, FlowSettings(), lambda: NOW + timedelta(days=365))
    assert await soon.purge_expired(five_years, remove_files) == 0
    later = StaffDesk(database, FlowSettings(), lambda: NOW + timedelta(days=6 * 365))
    with caplog.at_level(logging.INFO):
        assert await later.purge_expired(five_years, remove_files) == 1
    assert "1 applicants' personal data purged" in caplog.text
    assert "فاطمة" not in caplog.text and "1000000008" not in caplog.text
    async with database.session() as session:
        assert await find_beneficiary(session, "1000000008") is None
        assert await find_beneficiary(session, "2000000006") is not None  # still open: kept
    assert await later.purge_expired(five_years, remove_files) == 0  # erased once


def test_my_data_through_the_engine_shows_only_the_senders_own(tmp_path: Path) -> None:
    filed = run(tmp_path, "chat", lines=[*FILING, "بياناتي"])
    assert filed.returncode == 0, filed.stderr
    shown = blocks(filed.stdout)[-1]
    assert NAME in shown and "******0008" in shown and "REQ-000001" in shown
    assert NATIONAL_ID not in shown and DESCRIPTION not in shown
    stranger = run(tmp_path, "chat", "--user", "someone-else", lines=["بياناتي"])
    assert "لا نحفظ عنك أي بيانات شخصية" in blocks(stranger.stdout)[-1]
    assert NAME not in stranger.stdout


async def test_rotation_under_a_configured_key_on_both_databases(database: Database) -> None:
    await file_one(database)
    old, new = key_of(database), new_key_text()
    both = Database(database.url, keyring=Keyring.from_text(new, [old]))
    try:
        await both.check_keys()  # the new key recorded beside the old one
        assert await reencrypt(both, fold_question=question_key) > 0
    finally:
        await both.dispose()
    only_new = Database(database.url, keyring=Keyring.from_text(new))
    try:
        await only_new.check_keys()
        async with only_new.session() as session:
            found = await find_beneficiary(session, "1000000008")
            assert found is not None and found.full_name == "فاطمة أحمد علي"
            [request] = (await session.scalars(select(SupportRequest))).all()
            assert request.answers["description"] == "أسرة من خمسة أفراد"
    finally:
        await only_new.dispose()
    with pytest.raises(PrivacyKeyError, match="not the key"):
        await database.check_keys()  # the old key alone is refused now


async def file_one(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(PHONE, NOW)
        await RequestRepository(session).create(
            identity, intake(), channel="whatsapp", signed_message_id=None,
            status="submitted", now=NOW,
        )  # fmt: skip


def key_of(database: Database) -> str:
    """The test database's key, as configured: the run's (PostgreSQL) or its key file's."""
    if not database.is_sqlite:
        return POSTGRESQL_KEY
    path = Path(str(make_url(database.url).database))
    return key_file_for(path).read_text().split()[0]
