"""One applicant, several requests: a second open request for the same need is flagged
for staff on the dashboard (list and case page), not silently accepted; a closed one or
another need is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_dashboard import PASSWORD, browser, login, settings

from bot.passwords import hash_password
from bot.server import Tawasul
from flows.types import Address, SaveIntake
from storage.db import Database
from storage.repositories import IdentityRepository, RequestRepository, StaffRepository

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
TWIN = "طلب مفتوح آخر للحاجة نفسها"


def intake(need: str, national_id: str = "1000000008") -> SaveIntake:
    answers = {
        "name": "فاطمة أحمد علي",
        "national_id": national_id,
        "mobile": "+966501234567",
        "city": "الرياض",
        "need": need,
        "description": "أسرة من خمسة أفراد",
    }
    return SaveIntake(answers, (), NOW + timedelta(days=14), NOW)


async def file(database: Database, address: Address, filing: SaveIntake) -> str:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(address, NOW)
        request = await RequestRepository(session).create(
            identity, filing, channel=address.channel, signed_message_id=None,
            status="submitted", now=NOW,
        )  # fmt: skip
        return str(request.reference)


@pytest.fixture
async def office(
    database: Database, tmp_path: Path
) -> AsyncIterator[tuple[Tawasul, TestClient[Any, Any]]]:
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "researcher", password_hash=hash_password(PASSWORD), now=NOW
        )
    tawasul = Tawasul(settings(tmp_path), database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        yield tawasul, client


async def test_a_second_open_request_for_the_same_need_is_flagged(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    phone, web = Address("whatsapp", "+966501234567"), Address("web", "session-1")
    first = await file(tawasul.database, phone, intake("rent"))
    second = await file(tawasul.database, web, intake("rent"))  # same ID, another channel
    other_need = await file(tawasul.database, phone, intake("food_basket"))
    someone_else = await file(tawasul.database, phone, intake("rent", "2000000006"))
    async with browser(client) as staff:
        await login(staff, "amal")
        listing = await (await staff.get("/staff/")).text()
        rows = {
            ref: row
            for row in listing.split("<tr")[1:]
            for ref in [first, second, other_need, someone_else]
            if ref in row
        }
        assert TWIN in rows[first] and TWIN in rows[second]
        assert TWIN not in rows[other_need] and TWIN not in rows[someone_else]
        assert TWIN in await (await staff.get(f"/staff/requests/{second}")).text()
        await tawasul.desk.set_status(first, "under_review", by="amal")
        await tawasul.desk.set_status(first, "rejected", note="مكرر", by="amal")
        case = await (await staff.get(f"/staff/requests/{second}")).text()
        assert TWIN not in case  # the first is closed: nothing to compare any more


async def test_the_case_page_shows_the_household_and_the_links(
    office: tuple[Tawasul, TestClient[Any, Any]],
) -> None:
    tawasul, client = office
    phone, web = Address("whatsapp", "+966501234567"), Address("web", "session-1")
    mother = await file(tawasul.database, phone, intake("rent"))
    son = await file(tawasul.database, phone, intake("medical", "2000000006"))  # same phone
    again = await file(tawasul.database, web, intake("food_basket"))  # her ID, another channel
    stranger = await file(
        tawasul.database, Address("sms", "+966509999999"), intake("rent", "1111111111")
    )
    async with browser(client) as staff:
        await login(staff, "amal")
        page = await (await staff.get(f"/staff/requests/{mother}")).text()
        household = page.split('id="household"')[1].split("</section>")[0]
        same_applicant, same_sender = household.split("طلبات قدّمها الرقم نفسه")
        assert again in same_applicant and son not in same_applicant
        assert son in same_sender and stranger not in household
        alone = await (await staff.get(f"/staff/requests/{stranger}")).text()
        assert 'id="household"' not in alone
