"""Storage: one suite of repository tests, run against every database backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from statements import counting_statements

from flows.lifecycle import SUBMITTED, UNDECIDED
from flows.types import (
    Address,
    Choice,
    ConversationState,
    InboundMessage,
    Media,
    OpenHandoff,
    OutboundMessage,
    RecordRating,
    SaveIntake,
    TemplateRef,
)
from storage.db import Database
from storage.models import (
    Beneficiary,
    ChannelIdentity,
    Conversation,
    Document,
    Handoff,
    Message,
    Rating,
    StatusChange,
    SupportRequest,
)
from storage.models import id_of as _id
from storage.repositories import (
    ConversationRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    RatingRepository,
    RequestRepository,
)

NOW = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
RIYADH = timezone(timedelta(hours=3))

WIDOW_PHONE = Address("whatsapp", "+966501234567")
WIDOW_TELEGRAM = Address("telegram", "70011")
STRANGER = Address("sms", "+966559876543")

# Valid-looking national IDs (10 digits, leading 1); storage does not check them.
WIDOW_ID = "1000000008"
NEIGHBOUR_ID = "1000000016"


def intake(national_id: str = WIDOW_ID, *, documents: tuple[Media, ...] = ()) -> SaveIntake:
    return SaveIntake(
        answers={
            "name": "فاطمة أحمد",
            "national_id": national_id,
            "mobile": "+966501234567",
            "city": "الرياض",
            "need": "food_basket",
            "description": "أسرة من خمسة أفراد",
        },
        documents=documents,
        decision_due_at=NOW + timedelta(days=14),
        signed_at=NOW,
    )


async def identity_for(session: AsyncSession, address: Address) -> ChannelIdentity:
    return await IdentityRepository(session).get_or_create(address, NOW)


async def file_request(
    database: Database, address: Address, national_id: str = WIDOW_ID
) -> tuple[int, str]:
    """File a request from ``address`` in its own unit of work; returns (identity id, reference)."""
    async with database.session() as session, session.begin():
        identity = await identity_for(session, address)
        request = await RequestRepository(session).create(
            identity,
            intake(national_id),
            channel=address.channel,
            signed_message_id=None,
            status=SUBMITTED,
            now=NOW,
        )
        assert identity.id is not None and request.reference is not None
        return identity.id, request.reference


# Identities


async def test_get_or_create_identity_is_idempotent(database: Database) -> None:
    later = NOW + timedelta(minutes=5)
    async with database.session() as session, session.begin():
        first = await IdentityRepository(session).get_or_create(WIDOW_PHONE, NOW)
    async with database.session() as session, session.begin():
        again = await IdentityRepository(session).get_or_create(WIDOW_PHONE, later)
        other = await IdentityRepository(session).get_or_create(WIDOW_TELEGRAM, later)
    assert again.id == first.id
    assert other.id != first.id
    assert (first.language, first.opted_out, first.unreachable) == ("ar", False, False)
    async with database.session() as session:
        stored = await session.get(ChannelIdentity, first.id)
        assert stored is not None
        assert stored.last_inbound_at == later
        assert stored.created_at == NOW
        count = await session.scalar(text("SELECT count(*) FROM channel_identity"))
        assert count == 2


async def test_the_inboxs_lock_reads_the_identitys_row_and_full_gives_its_object(
    database: Database,
) -> None:
    async with database.session() as session, session.begin():
        identities = IdentityRepository(session)
        created = await identities.get_or_create(WIDOW_PHONE, NOW)
        await identities.set_opted_out(_id(created), True)
    async with database.session() as session, session.begin():
        identities = IdentityRepository(session)
        row = await identities.lock(_id(created))
        assert row is not None and not isinstance(row, ChannelIdentity)
        assert (row.id, row.channel, row.user_id) == (created.id, "whatsapp", WIDOW_PHONE.user_id)
        assert (row.opted_out, row.beneficiary_id) == (True, None)
        assert await identities.lock(_id(created) + 1000) is None
        full = await identities.full(row)
        assert isinstance(full, ChannelIdentity) and full.id == row.id and full.opted_out
        assert await identities.full(row) is full  # the session's one object
    async with database.session() as session, session.begin():
        identities = IdentityRepository(session)
        gone = await identities.lock(_id(created))
        assert gone is not None
        await session.execute(text("DELETE FROM channel_identity WHERE id = :id"), {"id": gone.id})
        with pytest.raises(LookupError, match="gone"):
            await identities.full(gone)


# Conversations


async def test_conversation_defaults_to_the_main_menu(session: AsyncSession) -> None:
    identity = await identity_for(session, WIDOW_PHONE)
    assert identity.id is not None
    state = await ConversationRepository(session).load(identity.id)
    assert state == ConversationState()


async def test_conversation_round_trip_keeps_arabic_and_counts_versions(
    database: Database,
) -> None:
    data = {"name": "فاطمة أحمد", "city": "الرياض", "errors": 1, "documents": ({"url": "u"},)}
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        assert identity.id is not None
        identity_id = identity.id
        conversations = ConversationRepository(session)
        await conversations.save(identity_id, ConversationState("intake", "city", data, "ar"), NOW)

    async with database.session() as session, session.begin():
        conversations = ConversationRepository(session)
        state = await conversations.load(identity_id)
        assert state.flow == "intake" and state.step == "city" and state.language == "ar"
        assert state.data == {**data, "documents": [{"url": "u"}]}  # tuples come back as lists
        raw = await session.scalar(
            text("SELECT CAST(data AS TEXT) FROM conversation WHERE identity_id = :id"),
            {"id": identity_id},
        )
        # The state holds an intake's answers: encrypted (storage.keyring), never in clear.
        assert raw.startswith("tw1:") and "الرياض" not in raw
        await conversations.save(identity_id, ConversationState("menu", "start", {}, "en"), NOW)

    async with database.session() as session:
        row = await session.get(Conversation, identity_id)
        assert row is not None
        assert row.version == 2
        assert row.updated_at == NOW
        identity_row = await session.get(ChannelIdentity, identity_id)
        assert identity_row is not None and identity_row.language == "en"


async def test_the_conversations_language_reaches_its_identity_once(database: Database) -> None:
    """Saving a state in another language writes the identity's (and keeps the
    session's object of it true); saving one in the language it had writes nothing more."""
    english = ConversationState("menu", "start", {}, "en")
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        conversations = ConversationRepository(session)
        await conversations.save(_id(identity), english, NOW, language_was=identity.language)
        assert identity.language == "en" and identity not in session.dirty
        with counting_statements(database) as statements:
            await conversations.save(_id(identity), english, NOW, language_was="en")
        assert len(statements) == 1  # the state's upsert alone
    async with database.session() as session:
        stored = await session.get(ChannelIdentity, _id(identity))
        assert stored is not None and stored.language == "en"


# Messages


def inbound(address: Address, platform_id: str | None, text_: str = "مرحبا") -> InboundMessage:
    return InboundMessage(
        address=address,
        received_at=NOW,
        text=text_,
        media=(Media("https://files.example/1.jpg", "image/jpeg", "1.jpg"),),
        platform_message_id=platform_id,
    )


async def test_duplicate_platform_message_is_detected(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        assert identity.id is not None
        messages = MessageRepository(session)
        message_id = await messages.log_inbound(identity.id, inbound(WIDOW_PHONE, "SM1"))
        assert message_id is not None
        assert await messages.log_inbound(identity.id, inbound(WIDOW_PHONE, None))
        # NULLs never clash.
        assert await messages.log_inbound(identity.id, inbound(WIDOW_PHONE, None))
        telegram = await identity_for(session, Address("telegram", "42"))
        assert telegram.id is not None
        same_id_elsewhere = replace(inbound(WIDOW_PHONE, "SM1"), address=Address("telegram", "42"))
        assert await messages.log_inbound(telegram.id, same_id_elsewhere)
    async with database.session() as session, session.begin():
        # The redelivery is refused by the unique index: no second row, no error.
        messages = MessageRepository(session)
        assert await messages.log_inbound(identity.id, inbound(WIDOW_PHONE, "SM1")) is None
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(col(Message.direction) == "in")
        )
        assert count == 4
        stored = await session.get(Message, message_id)
        assert stored is not None
        assert (stored.direction, stored.status, stored.text) == ("in", "received", "مرحبا")
        assert stored.media == [
            {
                "url": "https://files.example/1.jpg",
                "content_type": "image/jpeg",
                "filename": "1.jpg",
            }
        ]


async def test_outbox_is_oldest_first_and_sent_messages_leave_it(database: Database) -> None:
    ask = OutboundMessage(
        "اختر رقمًا", "ar", choices=(Choice("1", "طلب دعم"), Choice("2", "حالة طلبي"))
    )
    template = OutboundMessage(
        "Your request changed", "en", template=TemplateRef("status_changed", {"1": "REQ-000001"})
    )
    async with database.session() as session, session.begin():
        widow = await identity_for(session, WIDOW_PHONE)
        other = await identity_for(session, WIDOW_TELEGRAM)
        assert widow.id is not None and other.id is not None
        messages = MessageRepository(session)
        first = await messages.enqueue(widow.id, "whatsapp", ask, NOW)
        second = await messages.enqueue(other.id, "telegram", ask, NOW)
        third = await messages.enqueue(widow.id, "whatsapp", template, NOW, kind="proactive")

    async with database.session() as session, session.begin():
        messages = MessageRepository(session)
        pending = await messages.pending()
        assert [item.id for item in pending] == [first, second, third]
        assert pending[0].address == WIDOW_PHONE
        assert pending[0].message == ask
        assert pending[0].attempts == 0 and pending[0].kind == "reply"
        assert pending[1].address == WIDOW_TELEGRAM
        assert pending[2].message == template and pending[2].kind == "proactive"
        assert [item.id for item in await messages.pending(channel="telegram")] == [second]
        assert [item.id for item in await messages.pending(limit=1)] == [first]
        await messages.mark_sent(first, NOW, "wamid.1")
        await messages.mark_failed(second, NOW, "blocked by the user")

    async with database.session() as session:
        messages = MessageRepository(session)
        assert [item.id for item in await messages.pending()] == [third]
        sent = await session.get(Message, first)
        assert sent is not None
        assert (sent.status, sent.platform_message_id, sent.attempts) == ("sent", "wamid.1", 1)
        assert sent.sent_at == NOW
        failed = await session.get(Message, second)
        assert failed is not None
        assert (failed.status, failed.error, failed.attempts) == (
            "failed",
            "blocked by the user",
            1,
        )


async def test_delivery_receipts_never_move_backwards(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        assert identity.id is not None
        messages = MessageRepository(session)
        message_id = await messages.enqueue(
            identity.id, "whatsapp", OutboundMessage("x", "ar"), NOW
        )
        await messages.mark_sent(message_id, NOW, "SM9")
        assert await messages.mark_delivery("whatsapp", "SM9", "read")
        assert not await messages.mark_delivery("whatsapp", "SM9", "delivered")
        assert not await messages.mark_delivery("whatsapp", "unknown", "delivered")
    async with database.session() as session:
        stored = await session.get(Message, message_id)
        assert stored is not None and stored.status == "read"


async def test_history_is_the_latest_messages_oldest_first(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        assert identity.id is not None
        messages = MessageRepository(session)
        for number in range(5):
            await messages.log_inbound(identity.id, inbound(WIDOW_PHONE, None, str(number)))
        history = await messages.history(identity.id, limit=3)
    assert [message.text for message in history] == ["2", "3", "4"]


# Requests


async def test_requests_get_sequential_references_history_and_documents(
    database: Database,
) -> None:
    photo = Media("https://files.example/id.jpg", "image/jpeg", "id.jpg")
    pdf = Media("https://files.example/lease.pdf", "application/pdf")
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        requests = RequestRepository(session)
        first = await requests.create(
            identity,
            intake(documents=(photo, pdf)),
            channel="whatsapp",
            signed_message_id="SM42",
            status=SUBMITTED,
            now=NOW,
        )
        second = await requests.create(
            identity,
            intake(),
            channel="whatsapp",
            signed_message_id=None,
            status=SUBMITTED,
            now=NOW,
        )
    assert (first.reference, second.reference) == ("REQ-000001", "REQ-000002")
    assert first.beneficiary_id == second.beneficiary_id == identity.beneficiary_id
    assert not first.linked_existing and not second.linked_existing  # same identity both times

    async with database.session() as session:
        requests = RequestRepository(session)
        stored = await requests.get_by_reference(" req-000001 ")
        assert stored is not None and stored.id == first.id
        assert stored.status == "submitted"
        assert stored.need == "food_basket"
        assert stored.answers["city"] == "الرياض"
        assert (stored.signed_channel, stored.signed_message_id) == ("whatsapp", "SM42")
        assert stored.signed_at == NOW and stored.decision_due_at == NOW + timedelta(days=14)
        assert first.id is not None
        history = select(StatusChange).where(col(StatusChange.request_id) == first.id)
        changes = (await session.scalars(history)).all()
        assert [(c.from_status, c.to_status, c.by) for c in changes] == [(None, "submitted", None)]
        documents = await requests.documents(first.id)
        assert [(d.url, d.content_type, d.filename) for d in documents] == [
            (photo.url, "image/jpeg", "id.jpg"),
            (pdf.url, "application/pdf", None),
        ]
        assert await requests.get_by_reference("REQ-999999") is None
        beneficiaries = (await session.scalars(select(Beneficiary))).all()
        assert [(b.national_id, b.full_name) for b in beneficiaries] == [(WIDOW_ID, "فاطمة أحمد")]


async def test_the_filed_request_is_the_sessions_object_and_as_stored(
    database: Database,
) -> None:
    """``create`` writes with statements and hands back an object it built: every column
    of it as a fresh read gives, and the session's own (changes to it are written)."""
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        requests = RequestRepository(session)
        filed = await requests.create(
            identity,
            replace(intake(), consent={"version": "1", "channel": "whatsapp"}),
            channel="whatsapp",
            signed_message_id="SM7",
            status=SUBMITTED,
            now=NOW,
        )
        assert await requests.get_by_reference(str(filed.reference)) is filed
        assert filed not in session.dirty
        built = {column: getattr(filed, column) for column in SupportRequest.model_fields}
        filed.need = "rent"  # the session's object: flushed with the transaction
    async with database.session() as session:
        stored = await session.get(SupportRequest, filed.id)
        assert stored is not None
        read = {column: getattr(stored, column) for column in SupportRequest.model_fields}
        assert read == {**built, "need": "rent"}
        assert read["reference"] == "REQ-000001" and read["consent"] == {
            "version": "1",
            "channel": "whatsapp",
        }


async def test_a_request_without_its_required_answers_is_refused(database: Database) -> None:
    incomplete = SaveIntake(
        answers={"name": "فاطمة", "national_id": " ", "mobile": "+966501234567", "city": "جدة"},
        documents=(),
        decision_due_at=NOW,
        signed_at=NOW,
    )
    async with database.session() as session:
        identity = await identity_for(session, WIDOW_PHONE)
        with pytest.raises(ValueError, match="national_id, need"):
            await RequestRepository(session).create(
                identity,
                incomplete,
                channel="whatsapp",
                signed_message_id=None,
                status=SUBMITTED,
                now=NOW,
            )


async def test_same_national_id_from_another_identity_links_to_the_same_applicant(
    database: Database,
) -> None:
    phone_id, first = await file_request(database, WIDOW_PHONE)
    telegram_id, second = await file_request(database, WIDOW_TELEGRAM)

    async with database.session() as session:
        requests = RequestRepository(session)
        filed_first = await requests.get_by_reference(first)
        filed_second = await requests.get_by_reference(second)
        assert filed_first is not None and filed_second is not None
        assert filed_second.beneficiary_id == filed_first.beneficiary_id
        assert filed_second.linked_existing and not filed_first.linked_existing
        assert await session.scalar(text("SELECT count(*) FROM beneficiary")) == 1

        # Linked for staff, but each identity sees only what it filed itself: typing
        # someone's national ID must not reveal their other requests.
        for identity_id, own in ((phone_id, first), (telegram_id, second)):
            identity = await session.get(ChannelIdentity, identity_id)
            assert identity is not None
            summaries = await requests.summaries_for(identity)
            assert [s.reference for s in summaries] == [own]

        stranger = await identity_for(session, STRANGER)
        await session.flush()
        assert await requests.summaries_for(stranger) == []


async def test_summaries_never_show_another_persons_requests(database: Database) -> None:
    _, widows = await file_request(database, WIDOW_PHONE, WIDOW_ID)
    _, neighbours = await file_request(database, STRANGER, NEIGHBOUR_ID)
    async with database.session() as session:
        widow = await identity_for(session, WIDOW_PHONE)
        neighbour = await identity_for(session, STRANGER)
        requests = RequestRepository(session)
        mine = await requests.summaries_for(widow)
        theirs = await requests.summaries_for(neighbour)
    assert [s.reference for s in mine] == [widows]
    assert [s.reference for s in theirs] == [neighbours]
    summary = mine[0]
    assert (summary.status, summary.need) == ("submitted", "food_basket")
    assert summary.created_at == NOW and summary.decision_due_at == NOW + timedelta(days=14)


async def test_staff_list_filters_by_status_and_overdue(database: Database) -> None:
    await file_request(database, WIDOW_PHONE, WIDOW_ID)
    await file_request(database, STRANGER, NEIGHBOUR_ID)
    async with database.session() as session, session.begin():
        requests = RequestRepository(session)
        decided = await requests.get_by_reference("REQ-000002")
        assert decided is not None
        change = await requests.change_status(
            decided, "accepted", now=NOW, by="researcher1", note="verified"
        )
        assert (change.from_status, change.to_status) == ("submitted", "accepted")
    after_due = NOW + timedelta(days=15)
    async with database.session() as session:
        requests = RequestRepository(session)
        assert [r.reference for r in await requests.list()] == ["REQ-000001", "REQ-000002"]
        assert [r.reference for r in await requests.list(status="accepted")] == ["REQ-000002"]
        assert [
            r.reference for r in await requests.list(overdue_at=after_due, undecided=UNDECIDED)
        ] == ["REQ-000001"]
        assert await requests.list(overdue_at=NOW, undecided=UNDECIDED) == []
        with pytest.raises(ValueError, match="undecided"):
            await requests.list(overdue_at=after_due)  # storage does not know the statuses
        history = await session.scalars(
            select(StatusChange)
            .order_by(col(StatusChange.id))
            .where(col(StatusChange.by).is_not(None))
        )
        assert [(c.to_status, c.by, c.note) for c in history] == [
            ("accepted", "researcher1", "verified")
        ]


# Ratings


async def test_rating_outside_one_to_five_is_refused(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                identity = await identity_for(session, WIDOW_PHONE)
                await RatingRepository(session).add(
                    identity, RecordRating(6, None), channel="whatsapp", now=NOW
                )


async def test_rating_links_only_the_senders_own_request(database: Database) -> None:
    _, widows = await file_request(database, WIDOW_PHONE, WIDOW_ID)
    async with database.session() as session, session.begin():
        ratings = RatingRepository(session)
        widow = await identity_for(session, WIDOW_PHONE)
        stranger = await identity_for(session, STRANGER)
        own = await ratings.add(
            widow, RecordRating(5, "شكرًا", request_reference=widows), channel="whatsapp", now=NOW
        )
        foreign = await ratings.add(
            stranger, RecordRating(2, None, "handoff", widows), channel="sms", now=NOW
        )
    assert own.request_id is not None and own.beneficiary_id == widow.beneficiary_id
    assert foreign.request_id is None and foreign.beneficiary_id is None
    async with database.session() as session:
        stored = (await session.scalars(select(Rating).order_by(col(Rating.id)))).all()
        assert [(r.score, r.context, r.comment) for r in stored] == [
            (5, "service", "شكرًا"),
            (2, "handoff", None),
        ]


# Handoffs


async def test_opening_a_handoff_twice_keeps_one_and_upgrades_urgency(database: Database) -> None:
    async with database.session() as session, session.begin():
        identity = await identity_for(session, WIDOW_PHONE)
        assert identity.id is not None
        handoffs = HandoffRepository(session)
        first = await handoffs.open(identity.id, OpenHandoff("requested"), NOW)
        again = await handoffs.open(identity.id, OpenHandoff("crisis", urgent=True), NOW)
        assert again.id == first.id
        assert again.urgent and again.reason == "requested"
        assert first.id is not None
        assert await handoffs.close(first.id, NOW + timedelta(hours=1)) is not None
        assert await handoffs.close(first.id, NOW + timedelta(hours=2)) is None  # closed already
        assert await handoffs.get_open(identity.id) is None
        reopened = await handoffs.open(identity.id, OpenHandoff("keyword"), NOW)
        assert reopened.id != first.id
    async with database.session() as session:
        rows = (await session.scalars(select(Handoff).order_by(col(Handoff.id)))).all()
        assert [(h.status, h.closed_at) for h in rows] == [
            ("closed", NOW + timedelta(hours=1)),
            ("open", None),
        ]


async def test_database_allows_one_open_handoff_per_identity(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                identity = await identity_for(session, WIDOW_PHONE)
                assert identity.id is not None
                session.add(Handoff(identity_id=identity.id, reason="requested", opened_at=NOW))
                session.add(Handoff(identity_id=identity.id, reason="keyword", opened_at=NOW))


# Cross-cutting


async def test_datetimes_come_back_aware_in_utc(database: Database) -> None:
    riyadh_evening = datetime(2025, 3, 2, 23, 15, tzinfo=RIYADH)
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(WIDOW_PHONE, riyadh_evening)
        identity_id = identity.id
    async with database.session() as session:
        stored = await session.get(ChannelIdentity, identity_id)
        assert stored is not None and stored.last_inbound_at is not None
        assert stored.last_inbound_at.tzinfo is UTC
        assert stored.last_inbound_at == riyadh_evening
        assert stored.last_inbound_at.hour == 20
        # Filters compare instants too, whatever zone the bound value is in.
        found = await session.scalar(
            select(col(ChannelIdentity.id)).where(
                col(ChannelIdentity.last_inbound_at) > datetime(2025, 3, 2, 20, 14, tzinfo=UTC)
            )
        )
        assert found == identity_id


async def test_naive_datetimes_are_refused(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(Exception, match="naive"):
            await IdentityRepository(session).get_or_create(WIDOW_PHONE, datetime(2025, 3, 2))
            await session.flush()


async def test_database_errors_carry_no_personal_data(database: Database) -> None:
    await file_request(database, WIDOW_PHONE)
    async with database.session() as session:
        with pytest.raises(IntegrityError) as caught:
            async with session.begin():
                session.add(Beneficiary(national_id=WIDOW_ID, full_name="x", mobile="y", city="z"))
    # Engine code logs exceptions; their text must not quote names, IDs or phones.
    assert WIDOW_ID not in str(caught.value)


async def test_foreign_keys_are_enforced(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                session.add(Document(request_id=12345, url="u", content_type="image/jpeg"))


async def test_one_message_costs_few_statements(database: Database) -> None:
    """The hot path of a known sender: dedupe, identity, log, state, save, one reply."""
    message = inbound(WIDOW_PHONE, "SM1")
    async with database.session() as session, session.begin():
        await identity_for(session, WIDOW_PHONE)
    with counting_statements(database) as statements:
        async with database.session() as session, session.begin():
            messages = MessageRepository(session)
            later = NOW + timedelta(minutes=1)
            identity = await IdentityRepository(session).get_or_create(WIDOW_PHONE, later)
            assert identity.id is not None
            await messages.log_inbound(identity.id, message)
            conversations = ConversationRepository(session)
            state = await conversations.load(identity.id)
            await conversations.save(identity.id, state, NOW)
            await messages.enqueue(identity.id, "whatsapp", OutboundMessage("أهلًا", "ar"), NOW)
    data = [s for s in statements if not s.upper().startswith(("BEGIN", "COMMIT"))]
    # select identity, update last_inbound_at, insert inbound (refused when a redelivery),
    # select state, upsert state, insert reply.
    assert len(data) <= 6, data
    assert any(s.startswith("INSERT INTO message") for s in data)  # counted on both
