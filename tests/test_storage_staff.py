"""Storage for the staff side: staff members, handoff lifecycle, request lists and the case file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from statements import counting_statements

from flows.lifecycle import SUBMITTED, UNDECIDED
from flows.text import fold_arabic
from flows.types import (
    Address,
    InboundMessage,
    Media,
    OpenHandoff,
    OutboundMessage,
    RecordRating,
    SaveIntake,
)
from storage.db import Database
from storage.models import Staff
from storage.repositories import (
    CASE_EVENT_KINDS,
    CaseFileRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    RatingRepository,
    RequestRepository,
    StaffRepository,
)

NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)

WIDOW_PHONE = Address("whatsapp", "+966501234567")
WIDOW_TELEGRAM = Address("telegram", "70011")
SON_PHONE = Address("whatsapp", "+966507654321")
STRANGER = Address("sms", "+966559876543")

WIDOW_ID = "1000000008"
SON_ID = "1000000016"
STRANGER_ID = "2000000006"

# Telegram user ids no longer fit in 32 bits.
SARA_TELEGRAM = 6_000_000_001


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def intake(
    national_id: str = WIDOW_ID,
    *,
    name: str = "فاطمة أحمد",
    need: str = "food_basket",
    documents: tuple[Media, ...] = (),
    signed_at: datetime = NOW,
) -> SaveIntake:
    return SaveIntake(
        answers={
            "name": name,
            "national_id": national_id,
            "mobile": "+966501234567",
            "city": "الرياض",
            "need": need,
            "description": "أسرة من خمسة أفراد",
        },
        documents=documents,
        decision_due_at=signed_at + timedelta(days=14),
        signed_at=signed_at,
    )


async def identity_id(session: AsyncSession, address: Address) -> int:
    identity = await IdentityRepository(session).get_or_create(address, NOW)
    await session.flush()
    assert identity.id is not None
    return identity.id


async def file_request(
    database: Database, address: Address, national_id: str = WIDOW_ID, **answers: Any
) -> str:
    """File a request from ``address`` in its own transaction; returns its reference."""
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(address, NOW)
        request = await RequestRepository(session).create(
            identity,
            intake(national_id, **answers),
            channel=address.channel,
            signed_message_id=None,
            status=SUBMITTED,
            now=NOW,
        )
        assert request.reference is not None
        return request.reference


async def add_staff(database: Database, *members: tuple[str, str]) -> list[int]:
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        rows = [await staff.add(name, role, now=NOW) for name, role in members]
    return [row.id for row in rows if row.id is not None]


async def open_handoff(
    database: Database, address: Address, opened_at: datetime = NOW, *, urgent: bool = False
) -> int:
    async with database.session() as session, session.begin():
        handoff = await HandoffRepository(session).open(
            await identity_id(session, address), OpenHandoff("requested", urgent), opened_at
        )
        assert handoff.id is not None
        return handoff.id


# Staff members


async def test_staff_are_stored_lowercase_and_found_by_name_or_telegram_id(
    database: Database,
) -> None:
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        sara = await staff.add(
            " Sara.R ", "researcher", telegram_id=SARA_TELEGRAM, password_hash="h", now=NOW
        )
        await staff.add("admin_1", "admin", now=NOW)
        await staff.add("mona-k", "agent", now=NOW)
    assert (sara.username, sara.role, sara.active, sara.created_at) == (
        "sara.r",
        "researcher",
        True,
        NOW,
    )
    async with database.session() as session:
        staff = StaffRepository(session)
        assert [m.username for m in await staff.list()] == ["admin_1", "mona-k", "sara.r"]
        found = await staff.get("SARA.R")
        assert found is not None and found.id == sara.id
        assert found.telegram_id == SARA_TELEGRAM and found.password_hash == "h"
        by_telegram = await staff.by_telegram_id(SARA_TELEGRAM)
        assert by_telegram is not None and by_telegram.id == sara.id
        assert await staff.by_telegram_id(1) is None
        assert await staff.get("nobody") is None
        assert await staff.get("not a name!") is None
        assert sara.id is not None
        by_id = await staff.by_id(sara.id)
        assert by_id is not None and by_id.username == "sara.r"


@pytest.mark.parametrize(
    ("username", "role", "error"),
    [
        ("s", "agent", "invalid username"),
        ("x" * 41, "agent", "invalid username"),
        ("sara r", "agent", "invalid username"),
        ("سارة", "agent", "invalid username"),
        ("sara", "boss", "unknown role"),
    ],
)
async def test_invalid_usernames_and_roles_are_refused(
    database: Database, username: str, role: str, error: str
) -> None:
    async with database.session() as session:
        with pytest.raises(ValueError, match=error):
            await StaffRepository(session).add(username, role, now=NOW)


async def test_duplicate_username_or_telegram_id_is_a_value_error(database: Database) -> None:
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        await staff.add("sara", "researcher", telegram_id=SARA_TELEGRAM, now=NOW)
        with pytest.raises(ValueError, match="already exists"):
            await staff.add("SARA", "agent", now=NOW)
        with pytest.raises(ValueError, match="already exists"):
            await staff.add("mona", "agent", telegram_id=SARA_TELEGRAM, now=NOW)
        # Nothing reached the database: the transaction is still good.
        await staff.add("mona", "agent", now=NOW)
    async with database.session() as session:
        assert [m.username for m in await StaffRepository(session).list()] == ["mona", "sara"]


async def test_the_database_refuses_an_unknown_role(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                session.add(Staff(username="sara", role="boss", created_at=NOW))


async def test_removing_staff_keeps_their_history_and_frees_the_telegram_id(
    database: Database,
) -> None:
    handoff_id = await open_handoff(database, WIDOW_PHONE)
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        sara = await staff.add(
            "sara", "researcher", telegram_id=SARA_TELEGRAM, password_hash="h", now=NOW
        )
        assert sara.id is not None
        assert await HandoffRepository(session).claim(handoff_id, sara.id, NOW)
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        assert await staff.remove("Sara")
        assert not await staff.remove("sara")  # already gone
        assert not await staff.remove("nobody")
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        assert await staff.get("sara") is None
        assert await staff.by_telegram_id(SARA_TELEGRAM) is None
        assert await staff.list() == []
        [removed] = await staff.list(include_inactive=True)
        assert (removed.username, removed.active, removed.telegram_id) == ("sara", False, None)
        assert removed.password_hash is None
        handoff = await HandoffRepository(session).get(handoff_id)
        assert handoff is not None and handoff.claimed_by == removed.id
        # The Telegram account can now be someone else's.
        await staff.add("mona", "agent", telegram_id=SARA_TELEGRAM, now=NOW)
    async with database.session() as session, session.begin():
        staff = StaffRepository(session)
        # Registering the name again brings the same person back, with the new details.
        back = await staff.add("sara", "manager", now=NOW)
        assert (back.id, back.role, back.active, back.telegram_id) == (
            removed.id,
            "manager",
            True,
            None,
        )
    async with database.session() as session:
        assert [m.username for m in await StaffRepository(session).list()] == ["mona", "sara"]


# Handoffs


async def test_only_one_of_two_claims_wins(database: Database) -> None:
    handoff_id = await open_handoff(database, WIDOW_PHONE)
    sara, mona = await add_staff(database, ("sara", "researcher"), ("mona", "agent"))
    async with database.session() as session, session.begin():
        assert await HandoffRepository(session).claim(handoff_id, sara, at(1))
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        loaded = await handoffs.get(handoff_id)
        assert not await handoffs.claim(handoff_id, mona, at(2))
        assert loaded is not None
        assert (loaded.claimed_by, loaded.claimed_at) == (sara, at(1))


async def test_claims_racing_in_two_transactions_give_one_winner(database: Database) -> None:
    handoff_id = await open_handoff(database, WIDOW_PHONE)
    staff_ids = await add_staff(database, ("sara", "researcher"), ("mona", "agent"))

    async def claim(staff_id: int) -> bool:
        async with database.session() as session, session.begin():
            return await HandoffRepository(session).claim(handoff_id, staff_id, NOW)

    results = await asyncio.gather(*(claim(staff_id) for staff_id in staff_ids))
    assert sorted(results) == [False, True]
    async with database.session() as session:
        handoff = await HandoffRepository(session).get(handoff_id)
        assert handoff is not None
        assert handoff.claimed_by == staff_ids[results.index(True)]


async def test_claim_keeps_a_loaded_handoff_in_step(database: Database) -> None:
    handoff_id = await open_handoff(database, WIDOW_PHONE)
    [sara] = await add_staff(database, ("sara", "researcher"))
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        loaded = await handoffs.get(handoff_id)
        assert loaded is not None
        unclaimed = (loaded.claimed_by, loaded.claimed_at)
        assert unclaimed == (None, None)
        assert await handoffs.claim(handoff_id, sara, at(1))
        assert (loaded.claimed_by, loaded.claimed_at) == (sara, at(1))


async def test_close_only_closes_an_open_handoff(database: Database) -> None:
    handoff_id = await open_handoff(database, WIDOW_PHONE)
    [sara] = await add_staff(database, ("sara", "researcher"))
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        closed = await handoffs.close(handoff_id, at(5), staff_id=sara)
        assert closed is not None
        assert (closed.status, closed.closed_at, closed.closed_by) == ("closed", at(5), sara)
        assert await handoffs.close(handoff_id, at(6), staff_id=sara) is None
        assert await handoffs.close(handoff_id + 100, at(6)) is None
        assert not await handoffs.claim(handoff_id, sara, at(7))  # closed: nothing to claim
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        stored = await handoffs.get(handoff_id)
        assert stored is not None and stored.closed_at == at(5)
        assert await handoffs.get_open(stored.identity_id) is None
        # The beneficiary may ask again; closing by the beneficiary names nobody.
        again = await handoffs.open(stored.identity_id, OpenHandoff("keyword"), at(10))
        assert again.id is not None and again.id != handoff_id
        left = await handoffs.close(again.id, at(11))
        assert left is not None and left.closed_by is None


async def test_list_open_is_urgent_first_then_longest_waiting(database: Database) -> None:
    waiting_longest = await open_handoff(database, WIDOW_PHONE, at(0))
    urgent_later = await open_handoff(database, SON_PHONE, at(3), urgent=True)
    waiting = await open_handoff(database, WIDOW_TELEGRAM, at(2))
    urgent_first = await open_handoff(database, STRANGER, at(1), urgent=True)
    closed = await open_handoff(database, Address("telegram", "99"), at(-10), urgent=True)
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        await handoffs.close(closed, at(4))
        open_ = await handoffs.list_open()
    assert [h.id for h in open_] == [urgent_first, urgent_later, waiting_longest, waiting]


async def test_open_keeps_the_request_it_is_about(database: Database) -> None:
    reference = await file_request(database, WIDOW_PHONE)
    async with database.session() as session, session.begin():
        request = await RequestRepository(session).get_by_reference(reference)
        assert request is not None and request.id is not None
        handoffs = HandoffRepository(session)
        widow = await identity_id(session, WIDOW_PHONE)
        first = await handoffs.open(widow, OpenHandoff("requested"), NOW)
        assert first.request_id is None
        again = await handoffs.open(widow, OpenHandoff("keyword"), NOW, request_id=request.id)
        assert again.id == first.id and again.request_id == request.id


async def test_staff_group_posts_lead_back_to_their_handoff(database: Database) -> None:
    first = await open_handoff(database, WIDOW_PHONE)
    second = await open_handoff(database, SON_PHONE)
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        await handoffs.record_post(first, "tg:-100123:10", at(1))
        await handoffs.record_post(first, "tg:-100123:9", NOW)
        await handoffs.record_post(first, "tg:-100123:11", at(1))
        await handoffs.record_post(second, "tg:-100123:12", at(1))
        await handoffs.record_post(first, "tg:-100123:9", at(2))  # recorded twice: harmless
    async with database.session() as session, session.begin():
        handoffs = HandoffRepository(session)
        found = await handoffs.by_post("tg:-100123:11")
        assert found is not None and found.id == first
        other = await handoffs.by_post("tg:-100123:12")
        assert other is not None and other.id == second
        assert await handoffs.by_post("tg:-100123:13") is None
        assert await handoffs.posts(first) == ["tg:-100123:9", "tg:-100123:10", "tg:-100123:11"]
        assert await handoffs.first_post(first) == "tg:-100123:9"
        assert await handoffs.first_post(second + 100) is None
        # A reply to a post about a closed handoff still finds it: the caller says so.
        await handoffs.close(first, at(3))
        closed = await handoffs.by_post("tg:-100123:10")
        assert closed is not None and closed.status == "closed"


async def test_a_post_must_be_about_a_real_handoff(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                await HandoffRepository(session).record_post(12345, "tg:-1:1", NOW)


# Requests for staff


async def test_staff_list_filters_by_need_channel_and_search(database: Database) -> None:
    first = await file_request(database, WIDOW_PHONE, WIDOW_ID)  # فاطمة أحمد, food, whatsapp
    second = await file_request(database, WIDOW_TELEGRAM, SON_ID, name="Omar Saleh", need="rent")
    third = await file_request(database, STRANGER, STRANGER_ID, name="نورة", need="rent")
    async with database.session() as session, session.begin():
        requests = RequestRepository(session)
        decided = await requests.get_by_reference(third)
        assert decided is not None
        await requests.change_status(decided, "accepted", now=NOW)

    async def references(**filters: Any) -> list[str | None]:
        async with database.session() as session:
            found = await RequestRepository(session).list(fold=fold_arabic, **filters)
            return [r.reference for r in found]

    assert await references() == [first, second, third]
    assert await references(need="rent") == [second, third]
    assert await references(channel="telegram") == [second]
    assert await references(need="rent", status="submitted") == [second]
    assert await references(
        need="rent", overdue_at=NOW + timedelta(days=15), undecided=UNDECIDED
    ) == [second]
    assert await references(search=second.lower()) == [second]
    assert await references(search=" req-٠٠٠٠٠١ ") == [first]  # Arabic-Indic digits
    assert await references(search="3") == [third]
    assert await references(search="omar") == [second]
    assert await references(search="SALEH") == [second]
    # Letter variants and diacritics are ignored: ة/ه, أ/ا.
    assert await references(search="فاطمه") == [first]
    assert await references(search="احمد") == [first]
    assert await references(search="فاطمة", need="rent") == []
    assert await references(search="REQ-000009") == []
    assert await references(search="  ") == [first, second, third]


async def test_requests_of_one_identity_newest_first(database: Database) -> None:
    first = await file_request(database, WIDOW_PHONE)
    await file_request(database, STRANGER, STRANGER_ID)
    second = await file_request(database, WIDOW_PHONE, need="rent")
    async with database.session() as session:
        widow = await identity_id(session, WIDOW_PHONE)
        requests = await RequestRepository(session).for_identity(widow)
        assert [r.reference for r in requests] == [second, first]
        assert await RequestRepository(session).for_identity(widow + 100) == []


async def test_applicant_identities_are_the_filer_then_its_channel_then_the_rest(
    database: Database,
) -> None:
    reference = await file_request(database, WIDOW_PHONE, WIDOW_ID)
    await file_request(database, WIDOW_TELEGRAM, WIDOW_ID)
    # The son files for his mother, then for himself: his phone still spoke for her.
    await file_request(database, SON_PHONE, WIDOW_ID)
    await file_request(database, SON_PHONE, SON_ID)
    await file_request(database, STRANGER, STRANGER_ID)
    async with database.session() as session:
        requests = RequestRepository(session)
        request = await requests.get_by_reference(reference)
        assert request is not None
        identities = await requests.applicant_identities(request)
        assert [(i.channel, i.user_id) for i in identities] == [
            (WIDOW_PHONE.channel, WIDOW_PHONE.user_id),
            (SON_PHONE.channel, SON_PHONE.user_id),
            (WIDOW_TELEGRAM.channel, WIDOW_TELEGRAM.user_id),
        ]
        sons = await requests.get_by_reference("REQ-000004")
        assert sons is not None
        assert [i.user_id for i in await requests.applicant_identities(sons)] == [SON_PHONE.user_id]


# The case file


async def test_case_file_is_one_timeline_with_every_kind(database: Database) -> None:
    photo = Media("https://files.example/id.jpg", "image/jpeg", "id.jpg")
    [sara] = await add_staff(database, ("sara", "researcher"))
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(WIDOW_PHONE, NOW)
        widow = await identity_id(session, WIDOW_PHONE)
        stranger = await identity_id(session, STRANGER)
        telegram = await identity_id(session, WIDOW_TELEGRAM)
        messages = MessageRepository(session)
        # The answer is stored before the question it answers: the kind orders a tie.
        await messages.enqueue(widow, "whatsapp", OutboundMessage("أهلًا", "ar"), NOW)
        await messages.log_inbound(
            widow, InboundMessage(WIDOW_PHONE, NOW, "السلام عليكم", platform_message_id="SM1")
        )
        await messages.log_inbound(
            stranger, InboundMessage(STRANGER, NOW, "not in this case", platform_message_id="SM2")
        )
        await messages.log_inbound(
            widow, InboundMessage(WIDOW_PHONE, at(1), "نعم", platform_message_id="SM3")
        )
        requests = RequestRepository(session)
        consent = {
            "version": "1",
            "at": NOW.isoformat(),
            "channel": "whatsapp",
            "message_id": "SM1",
        }
        request = await requests.create(
            identity,
            dataclasses.replace(intake(documents=(photo,), signed_at=at(1)), consent=consent),
            channel="whatsapp",
            signed_message_id="SM3",
            status=SUBMITTED,
            now=at(1),
        )
        assert request.id is not None
        await messages.enqueue(
            widow, "whatsapp", OutboundMessage("رقم طلبك", "ar"), at(1), request_id=request.id
        )
        await requests.change_status(
            request, "under_review", now=at(2), by="sara", note="to the committee"
        )
        await requests.add_note(request, "sara", "called her", at(3))
        handoffs = HandoffRepository(session)
        handoff = await handoffs.open(
            widow, OpenHandoff("crisis", urgent=True), at(4), request_id=request.id
        )
        assert handoff.id is not None
        await handoffs.claim(handoff.id, sara, at(5))
        await handoffs.close(handoff.id, at(6), staff_id=sara)
        await RatingRepository(session).add(
            identity, RecordRating(5, "شكرًا", "handoff"), channel="whatsapp", now=at(7)
        )
        stranger_identity = await IdentityRepository(session).get_or_create(STRANGER, NOW)
        await RatingRepository(session).add(
            stranger_identity, RecordRating(1, None), channel="sms", now=at(7)
        )
        # A notice about the request sent to another of her identities belongs here too.
        await messages.enqueue(
            telegram,
            "telegram",
            OutboundMessage("تغيرت حالة طلبك", "ar"),
            at(8),
            kind="proactive",
            request_id=request.id,
        )

    with counting_statements(database) as statements:
        async with database.session() as session:
            events = await CaseFileRepository(session).events(request)
    assert len(statements) <= 6, statements

    assert [(e.at, e.kind, e.actor, e.text) for e in events] == [
        (NOW, "message_in", None, "السلام عليكم"),
        (NOW, "consent", None, "1"),
        (NOW, "message_out", None, "أهلًا"),
        (at(1), "message_in", None, "نعم"),
        (at(1), "declaration", None, "signed"),
        (at(1), "document", None, "id.jpg"),
        (at(1), "status_change", None, "submitted"),
        (at(1), "message_out", None, "رقم طلبك"),
        (at(2), "status_change", "sara", "submitted -> under_review"),
        (at(3), "note", "sara", "called her"),
        (at(4), "handoff_opened", None, "crisis"),
        (at(5), "handoff_claimed", "sara", "crisis"),
        (at(6), "handoff_closed", "sara", "crisis"),
        (at(7), "rating", None, "5/5: شكرًا"),
        (at(8), "message_out", None, "تغيرت حالة طلبك"),
    ]
    assert {e.kind for e in events} == set(CASE_EVENT_KINDS)
    by_kind = {e.kind: e.detail for e in events}
    assert by_kind["message_in"]["platform_message_id"] == "SM3"
    assert by_kind["message_in"]["channel"] == "whatsapp"
    assert by_kind["message_out"]["channel"] == "telegram"
    assert by_kind["message_out"]["kind"] == "proactive"
    assert by_kind["message_out"]["status"] == "pending"
    assert by_kind["declaration"] == {"channel": "whatsapp", "platform_message_id": "SM3"}
    assert by_kind["status_change"] == {
        "from": "submitted",
        "to": "under_review",
        "note": "to the committee",
    }
    assert by_kind["handoff_closed"]["reason"] == "crisis"
    assert by_kind["handoff_closed"]["urgent"] is True
    assert by_kind["rating"]["score"] == 5 and by_kind["rating"]["context"] == "handoff"
    assert by_kind["rating"]["comment"] == "شكرًا"
    assert by_kind["document"]["url"] == photo.url
    assert by_kind["document"]["content_type"] == "image/jpeg"
    # An export writes the details as they are.
    json.dumps([e.detail for e in events])


async def test_case_file_names_staff_who_have_since_left(database: Database) -> None:
    reference = await file_request(database, WIDOW_PHONE)
    handoff_id = await open_handoff(database, WIDOW_PHONE, at(1))
    [sara] = await add_staff(database, ("sara", "researcher"))
    async with database.session() as session, session.begin():
        await HandoffRepository(session).claim(handoff_id, sara, at(2))
        await StaffRepository(session).remove("sara")
    async with database.session() as session:
        request = await RequestRepository(session).get_by_reference(reference)
        assert request is not None
        events = await CaseFileRepository(session).events(request)
    claimed = [e for e in events if e.kind == "handoff_claimed"]
    assert [(e.at, e.actor) for e in claimed] == [(at(2), "sara")]
    assert "handoff_closed" not in {e.kind for e in events}  # still open
