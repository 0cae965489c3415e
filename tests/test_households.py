"""One applicant, several requests: a second open request for the same need is flagged
for staff on the dashboard (list and case page), not silently accepted; a closed one or
another need is not. One phone, several applicants: "لمن هذا الطلب؟" in the chat, and
the household on the case page."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import WhatsApp, make_settings
from fakes.twilio_api import FakeTwilio
from sqlalchemy import select
from test_case_page_attachments import staff as staff_browser
from test_dashboard import PASSWORD, browser, login, settings

from bot.passwords import hash_password
from bot.server import Tawasul
from flows.types import Address, Applicant, SaveIntake
from storage.db import Database
from storage.models import ChannelIdentity, SupportRequest
from storage.privacy import erase_beneficiary
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


MOTHER_ID, SON_ID = "1000000008", "2000000006"
ABOUT = "أسكن مع أطفالي الأربعة في شقة مستأجرة"


async def test_one_phone_files_for_a_mother_and_her_son_and_the_household_shows_them(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    """Over WhatsApp (the Twilio stand-in): she files for herself, then for her son
    ("someone else"), then for herself again by choosing herself."""
    async with database.session() as session, session.begin():
        await StaffRepository(session).add(
            "amal", "researcher", password_hash=hash_password(PASSWORD), now=NOW
        )
    configured = make_settings(tmp_path, twilio, privacy={"notice_version": "2026-11"})
    tawasul = Tawasul(configured, database)
    async with TestClient(TestServer(tawasul.app(), host="127.0.0.1")) as client:
        phone = WhatsApp(client, twilio, database)
        await phone.send("السلام عليكم")
        assert "أوافق" in await phone.send("١")
        first = await phone.send("نعم")
        assert "(١/٨)" in first and "لمن هذا الطلب" not in first  # never filed: as always
        for line in ("فاطمة أحمد علي الزهراني", "١٠٠٠٠٠٠٠٠٨", "نعم", "جده", "٢", ABOUT, "تم"):
            await phone.send(line)
        assert "REQ-000001" in await phone.send("نعم")

        second = await phone.send("١")
        assert "لمن هذا الطلب" in second and "١- فاطمة ******0008\n٢- شخص آخر" in second
        assert "(١/٨)" in await phone.send("٢")  # someone else: asked as always
        for line in ("خالد محمد أحمد الزهراني", "٢٠٠٠٠٠٠٠٠٦", "نعم", "جده", "٣", ABOUT, "تم"):
            await phone.send(line)
        assert "REQ-000002" in await phone.send("نعم")

        third = await phone.send("١")
        assert "١- فاطمة ******0008\n٢- خالد ******0006\n٣- شخص آخر" in third
        assert "(٣/٨)" in await phone.send("١")  # herself: name and ID not asked
        for line in ("نعم", "جده", "١", ABOUT):
            await phone.send(line)
        summary = await phone.send("تم")
        assert "الاسم: فاطمة أحمد علي الزهراني" in summary and "الهوية: ******0008" in summary
        assert "REQ-000003" in await phone.send("نعم")
        sent = "\n".join(m["Body"] for m in twilio.messages)
        assert MOTHER_ID not in sent and SON_ID not in sent  # only ever masked

        async with database.session() as session:
            requests = (await session.scalars(select(SupportRequest))).all()
        by_reference = {r.reference: r for r in requests}
        assert len(requests) == 3 and len({r.identity_id for r in requests}) == 1
        mine, his, again = (by_reference[f"REQ-00000{n}"] for n in (1, 2, 3))
        assert mine.beneficiary_id == again.beneficiary_id != his.beneficiary_id
        assert [r.answers["national_id"] for r in (mine, his, again)] == [
            MOTHER_ID,
            SON_ID,
            MOTHER_ID,
        ]
        assert again.answers["name"] == "فاطمة أحمد علي الزهراني"
        assert again.consent is not None and again.consent["version"] == "2026-11"

        async with staff_browser(client) as office:  # public_url is https: Secure cookies
            page = await (await office.get("/staff/requests/REQ-000003")).text()
            household = page.split('id="household"')[1].split("</section>")[0]
            same_applicant, same_sender = household.split("طلبات قدّمها الرقم نفسه")
            assert "REQ-000001" in same_applicant and "REQ-000002" not in same_applicant
            assert "REQ-000002" in same_sender


async def test_the_applicants_a_sender_filed_for_are_its_own_each_once(
    database: Database,
) -> None:
    """What the intake offers in "لمن هذا الطلب؟": this sender's own applicants, in the
    order first filed for, with the name last given; never another sender's; an erased
    one gone."""
    phone, other = Address("whatsapp", "+966501234567"), Address("sms", "+966509999999")
    await file(database, phone, intake("rent"))
    son = await file(database, phone, intake("medical", SON_ID))
    corrected = dataclasses.replace(
        intake("food_basket"), answers={**intake("x").answers, "name": "فاطمة أحمد علي الشهري"}
    )
    await file(database, phone, corrected)
    await file(database, other, intake("rent", "1111111111"))
    await file(database, other, intake("rent"))  # her ID, typed by another sender
    async with database.session() as session:
        identities = IdentityRepository(session)
        mine = await identities.get_or_create(phone, NOW)
        theirs = await identities.get_or_create(other, NOW)
        requests = RequestRepository(session)
        assert await requests.applicants_for(mine) == [
            Applicant("فاطمة أحمد علي الشهري", MOTHER_ID),
            Applicant("فاطمة أحمد علي", SON_ID),
        ]
        assert [a.national_id for a in await requests.applicants_for(theirs)] == [
            "1111111111",
            MOTHER_ID,
        ]
    async with database.session() as session, session.begin():
        filed = await RequestRepository(session).get_by_reference(son)
        assert filed is not None
        await erase_beneficiary(session, filed.beneficiary_id)
    async with database.session() as session:  # the phone's number erased with the son
        kept = await session.get(ChannelIdentity, mine.id)
        assert kept is not None
        assert [a.national_id for a in await RequestRepository(session).applicants_for(kept)] == [
            MOTHER_ID
        ]
