"""Personal data: national IDs however typed, phones in the staff group, exports by role."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import WhatsApp, eventually, make_settings
from fakes.telegram_api import FakeTelegram, group_message
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select
from transcript import INTAKE_AR

from bot.dashboard.views import requests_csv
from bot.desk import spreadsheet_cell
from bot.engine import utcnow
from bot.passwords import hash_password
from bot.server import Tawasul
from flows.staff_texts import mask_for_group, mask_ids
from flows.types import FlowSettings
from flows.validation import check_national_id, mask_ids_in, mask_phones_in
from storage.db import Database
from storage.models import AuditEntry, SupportRequest
from storage.repositories import StaffRepository

STAFF_GROUP = -1001234567890
SARA = 4242
PASSWORD = "a long enough password"
# Every way the ID and the phone of the intake below could show in clear.
ID_IN_CLEAR = ("1000000008", "1000-000-008", "1000 000 008", "١٠٠٠٠٠٠٠٠٨")
PHONE_IN_CLEAR = ("0551234567", "966551234567", "٠٥٥١٢٣٤٥٦٧", "055 123 4567")
FORMULA = '=HYPERLINK("http://evil.example/x","انقر هنا للمساعدة")'
# The intake over WhatsApp, the ID typed with dashes and a formula in the description.
INTAKE = [*INTAKE_AR[:4], "1000-000-008", "نعم", INTAKE_AR[6], INTAKE_AR[7], FORMULA, "تم", "نعم"]


@pytest.fixture
async def office(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=STAFF_GROUP)
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        secret = hash_password(PASSWORD)
        await staff.add("sara", "agent", telegram_id=SARA, password_hash=secret, now=utcnow())
        await staff.add("mona", "manager", password_hash=secret, now=utcnow())
    tawasul = Tawasul(settings, database)
    async with TestClient(TestServer(tawasul.app())) as client:
        yield tawasul, client


async def logged_in(client: TestClient[Any, Any], username: str) -> TestClient[Any, Any]:
    """Another browser on the same server, logged in as ``username``."""
    # The server says https (``server.public_url``), so its cookies are Secure.
    origin = str(client.server.make_url("/")).rstrip("/")
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[origin])
    browser: TestClient[Any, Any] = TestClient(client.server, cookie_jar=jar)
    await browser.start_server()
    page = await browser.get("/staff/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    form = {"csrf": token.group(1), "username": username, "password": PASSWORD}
    assert (await browser.post("/staff/login", data=form, allow_redirects=False)).status == 303
    return browser


def shows_in_clear(text: str, forms: tuple[str, ...] = ID_IN_CLEAR + PHONE_IN_CLEAR) -> list[str]:
    return [form for form in forms if form in text]


def staff_posts(telegram: FakeTelegram) -> list[str]:
    return [
        str(call.params["text"])
        for call in telegram.calls("sendMessage")
        if call.params["chat_id"] == STAFF_GROUP
    ]


async def test_an_id_typed_with_dashes_is_stored_as_ten_digits_and_masked_everywhere(
    office: tuple[Tawasul, TestClient[Any, Any]], twilio: FakeTwilio, telegram: FakeTelegram
) -> None:
    tawasul, client = office
    phone = WhatsApp(client, twilio, tawasul.database)
    for line in INTAKE:
        reply = await phone.send(line)
    assert "REQ-000001" in reply
    async with tawasul.database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
    assert request.answers["national_id"] == "1000000008"

    # The staff group: the ID and the phone, typed in the chat, masked but their last 4.
    await phone.send("موظف")
    await eventually(lambda: staff_posts(telegram), "the handoff's announcement")
    await phone.send("هويتي 1000 000 008 وجوالي ٠٥٥١٢٣٤٥٦٧")
    await eventually(lambda: len(staff_posts(telegram)) >= 2, "the relayed message")
    await client.post(
        "/webhooks/telegram",
        json={"update_id": 1, **group_message(STAFF_GROUP, SARA, "/case REQ-000001")},
        headers={"X-Telegram-Bot-Api-Secret-Token": "telegram-webhook-secret"},
    )
    await eventually(lambda: len(staff_posts(telegram)) >= 3, "the answer to /case")
    group = "\n".join(staff_posts(telegram))
    assert shows_in_clear(group) == []
    assert "******0008" in group and "******4567" in group

    # The dashboard, for an agent: the case page, the inbox, and a masked export.
    sara = await logged_in(client, "sara")
    try:
        for path in ("/staff/requests/REQ-000001", "/staff/handoffs"):
            page = await sara.get(path)
            assert page.status == 200
            text = await page.text()
            # Staff call the applicant from here: the dashboard shows their mobile.
            assert shows_in_clear(text, ID_IN_CLEAR) == [], path
            assert "******0008" in text, path
        exported = await sara.get("/staff/requests/REQ-000001/export.json")
        assert exported.status == 200
        document = json.loads(await exported.text())
        assert document["masked"] is True
        assert document["answers"]["national_id"] == "******0008"
        assert "1000000008" not in await exported.text()
        assert "1000-000-008" not in await exported.text()
        as_csv = await (await sara.get("/staff/requests/REQ-000001/export.csv")).text()
        assert "1000-000-008" not in as_csv and "1000000008" not in as_csv
        table = list(csv.reader(io.StringIO(as_csv)))  # the applicant, then the timeline
        header, *events = table[table.index([]) + 1 :]
        texts = [event[header.index("text")] for event in events]
        assert "'" + FORMULA in texts  # a formula stays text
        assert not any(cell.startswith("=") for row in table for cell in row)
        assert (await sara.get("/staff/requests.csv")).status == 403
    finally:
        await sara.session.close()
    # Every staff read of the case file is in the audit log: who, where, which request.
    async with tawasul.database.session() as session:
        reads = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action.in_(("case_read", "export")))  # type: ignore[attr-defined]
            )
        ).all()
    assert [(a.action, a.target, a.username, a.detail.get("where")) for a in reads] == [
        ("case_read", "REQ-000001", "sara", "staff_group"),
        ("case_read", "REQ-000001", "sara", "dashboard"),
        ("export", "REQ-000001", "sara", None),
        ("export", "REQ-000001", "sara", None),
    ]

    # A manager takes the whole file; the list export masks the ID for everyone.
    mona = await logged_in(client, "mona")
    try:
        whole = json.loads(await (await mona.get("/staff/requests/REQ-000001/export.json")).text())
        assert whole["masked"] is False and whole["answers"]["national_id"] == "1000000008"
        listing = await mona.get("/staff/requests.csv")
        assert listing.status == 200
        assert shows_in_clear(await listing.text(), ID_IN_CLEAR) == []
    finally:
        await mona.session.close()

    # The command line's code path: an agent named gets the masked file.
    assert json.loads(await tawasul.desk.export("REQ-000001", "json", by="sara"))["masked"]
    assert not json.loads(await tawasul.desk.export("REQ-000001", "json"))["masked"]
    async with tawasul.database.session() as session:
        exports = await session.scalars(select(AuditEntry).where(AuditEntry.action == "export"))
        details = [(entry.username, entry.detail) for entry in exports.all()]
    # The command line's export without --by is audited too (no member named).
    assert [d["masked"] for _, d in details] == [True, True, False, True, False]
    assert details[-1][0] is None


@pytest.mark.parametrize(
    "typed", ["1000-000-008", "1000 000 008", "١٠٠٠-٠٠٠-٠٠٨", " ١٠٠٠ ٠٠٠ ٠٠٨ ", "1000–000–008"]
)
def test_an_id_is_accepted_however_it_is_split_and_kept_as_ten_digits(typed: str) -> None:
    assert check_national_id(typed) == "1000000008"
    masked = mask_ids_in(f"رقمي {typed} شكراً")
    assert masked == "رقمي ******0008 شكراً" or masked == "رقمي  ******0008  شكراً"


def test_ids_and_phones_are_masked_in_text_and_dates_are_not() -> None:
    assert mask_ids_in("هويتي ١٠٠٠٠٠٠٠٠٨ و 2000000006") == "هويتي ******0008 و ******0006"
    assert mask_ids_in("1000-000-008.") == "******0008."
    # Split digits are an ID only with a valid check digit: a date and time stays.
    assert mask_ids_in("الموعد 2026-12-02 10:00") == "الموعد 2026-12-02 10:00"
    assert mask_ids_in("31000000008") == "31000000008"  # part of a longer number
    for phone in ("0551234567", "+966551234567", "00966 55 123 4567", "055-123-4567"):
        masked = mask_phones_in(f"جوالي {phone} شكراً")
        assert masked.endswith("4567 شكراً") and "123" not in masked, masked
    assert mask_phones_in("+44 20 7946 0958") == "********0958"
    for kept in ("REQ-000123", "2026-12-02 10:00", "الساعة ١٠"):
        assert mask_phones_in(kept) == kept
    # The staff group's view: both, in Latin digits; the dashboard's: IDs only.
    said = "هويتي ١٠٠٠-٠٠٠-٠٠٨ وجوالي ٠٥٥١٢٣٤٥٦٧"
    assert mask_for_group(said) == "هويتي ******0008 وجوالي ******4567"
    assert mask_ids(said) == "هويتي ******0008 وجوالي ٠٥٥١٢٣٤٥٦٧"


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    for dangerous in ("=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_cell(dangerous) == "'" + dangerous
    for plain in ("محمد", "REQ-000001", "", None, 5):
        assert spreadsheet_cell(plain) == ("" if plain is None else str(plain))
    now = datetime(2026, 12, 2, tzinfo=UTC)
    request = SupportRequest(
        id=1,
        reference="REQ-000001",
        status="submitted",
        need="=cmd",
        channel="web",
        beneficiary_id=1,
        identity_id=1,
        signed_at=now,
        signed_channel="web",
        answers={"name": "=cmd|' /C calc'!A0", "national_id": "1000-000-008", "city": "@x"},
        created_at=now,
        decision_due_at=now + timedelta(days=14),
    )
    text = requests_csv([request], FlowSettings(), now)
    row = next(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert row["name"] == "'=cmd|' /C calc'!A0" and row["need"] == "'=cmd"
    assert row["city"] == "'@x" and row["national_id"] == "******0008"
