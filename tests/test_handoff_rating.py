"""A rating is offered after a handoff only when a person actually wrote in it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from test_dashboard import (
    Visitor,
    office,  # noqa: F401 (the fixture)
)

from bot.server import Tawasul
from storage.models import Handoff
from storage.repositories import StaffRepository

Office = tuple[Tawasul, TestClient[Any, Any]]
RATING = "(غير مُرضية)"


async def open_handoff(tawasul: Tawasul, client: TestClient[Any, Any]) -> tuple[Visitor, int]:
    visitor = Visitor(client, tawasul.database)
    await visitor.open()
    await visitor.send("مرحبا")
    assert "أوقات العمل" in await visitor.send("٤")
    async with tawasul.database.session() as session:
        handoff = (await session.scalars(select(Handoff))).one()
    assert handoff.id is not None
    return visitor, handoff.id


async def test_closed_without_a_word_from_staff_no_rating_is_offered(
    office: Office,  # noqa: F811
) -> None:
    tawasul, client = office
    visitor, handoff_id = await open_handoff(tawasul, client)
    async with tawasul.database.session() as session:
        amal = await StaffRepository(session).get("amal")
    assert amal is not None
    assert await tawasul.desk.take(handoff_id, amal)  # taken, but nobody wrote
    await visitor.wait_for("")
    await tawasul.desk.close(handoff_id, amal)
    said = await visitor.wait_for("أنهى الموظف المحادثة")
    assert RATING not in said and "أرسل ٠ للعودة إلى القائمة" in said
    assert "[1] طلب دعم جديد" in await visitor.send("مرحبا")  # at the menu, not asked to rate


async def test_after_staff_wrote_the_rating_is_offered(office: Office) -> None:  # noqa: F811
    tawasul, client = office
    visitor, handoff_id = await open_handoff(tawasul, client)
    async with tawasul.database.session() as session:
        amal = await StaffRepository(session).get("amal")
    assert amal is not None
    await tawasul.desk.reply(handoff_id, amal, "أهلاً، معك أمل. كيف أساعدك؟")
    await visitor.wait_for("معك أمل")
    await tawasul.desk.close(handoff_id, amal)
    assert RATING in await visitor.wait_for("أنهى الموظف المحادثة")
