"""The staff desk's refusals, shared by the command line, the dashboard and the staff
group: each is a StaffError with its reason, and nothing is changed or audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from test_storage_staff import NOW, WIDOW_PHONE, add_staff, file_request, open_handoff

from bot.desk import MIN_PASSWORD_CHARS, StaffDesk, StaffError
from flows.types import FlowSettings
from storage.db import Database
from storage.models import AuditEntry, Message, Note

LONG_ENOUGH = "a long enough password"


def desk(database: Database) -> StaffDesk:
    return StaffDesk(database, FlowSettings(), lambda: NOW)


async def nothing_recorded(database: Database) -> bool:
    async with database.session() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(model))
            for model in (AuditEntry, Note, Message)
        ]
    return counts == [0, 0, 0]


async def test_unknown_members_and_a_non_admin_resetting_another_are_refused(
    database: Database,
) -> None:
    await add_staff(database, ("sara", "agent"), ("mona", "manager"))
    office = desk(database)
    for attempt, reason in (
        (office.staff_member("nobody"), "no active staff member 'nobody'"),
        (office.set_password("nobody", LONG_ENOUGH, by=None), "no active staff member"),
        (office.set_password("sara", "short", by=None), f"at least {MIN_PASSWORD_CHARS}"),
        (office.set_password("sara", LONG_ENOUGH, by="mona"), "only an admin can set another"),
        (office.remove_member("nobody"), "no active staff member 'nobody'"),
    ):
        with pytest.raises(StaffError, match=reason):
            await attempt
    assert await nothing_recorded(database)
    sara = await office.set_password("sara", LONG_ENOUGH, by="sara")  # her own: allowed
    assert sara.password_hash is not None and sara.password_hash.startswith("$argon2id$")


async def test_empty_words_unknown_statuses_and_formats_are_refused(database: Database) -> None:
    reference = await file_request(database, WIDOW_PHONE)
    [sara_id] = await add_staff(database, ("sara", "agent"))
    office = desk(database)
    sara = await office.staff_member("sara")
    assert sara.id == sara_id
    for attempt, reason in (
        (office.add_note(reference, "  \n ", by="sara"), "a note needs some text"),
        (office.add_note("REQ-999999", "ملاحظة", by="sara"), "no request 'REQ-999999'"),
        (office.list_requests(status="lost"), "unknown status 'lost'"),
        (office.export(reference, "pdf"), "unknown format 'pdf': json or csv"),
        (office.write_to(reference, sara, "   "), "an empty reply was not sent"),
    ):
        with pytest.raises(StaffError, match=reason):
            await attempt
    assert await nothing_recorded(database)


async def test_handoffs_nobody_took_or_that_do_not_exist(database: Database) -> None:
    handoff = await open_handoff(database, WIDOW_PHONE)
    [_sara] = await add_staff(database, ("sara", "agent"))
    office = desk(database)
    sara = await office.staff_member("sara")
    assert await office.owner(handoff) is None  # open, nobody has it
    assert await office.owner(handoff + 100) is None
    assert await office.close(handoff + 100, sara) is None
    with pytest.raises(StaffError, match="an empty reply was not sent"):
        await office.reply(handoff, sara, " ")
    with pytest.raises(StaffError, match="this conversation is closed"):
        await office.reply(handoff + 100, sara, "أهلاً")
    assert await nothing_recorded(database)
    closed = await office.close(handoff, None)  # from the command line: no one to audit
    assert closed is not None and closed.status == "closed"
    assert await nothing_recorded(database)
