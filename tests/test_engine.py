"""The engine on a real database: one message, one transaction; nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import col
from transcript import INTAKE_AR

import flows
from bot.engine import ConversationEngine
from flows.types import (
    Address,
    ConversationState,
    FlowSettings,
    InboundMessage,
    Need,
    OpenHandoff,
    SaveIntake,
    Transition,
    Turn,
)
from storage.db import Database
from storage.models import Handoff, Message, StatusChange, SupportRequest

SETTINGS = FlowSettings(
    organization_name="جمعية الاختبار",
    needs=(Need("food", "سلة غذائية", "Food basket"), Need("rent", "إيجار", "Rent")),
    handoff_keywords=("موظف", "staff"),
    crisis_words=("انتحار",),
    hotline_text="اتصل بـ 937",
)
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=5)
        return self.now


class Chat:
    """A beneficiary talking to an engine; returns each turn's replies as plain text."""

    def __init__(self, engine: ConversationEngine, user: str = "u1", channel: str = "console"):
        self.engine, self.address, self.count = engine, Address(channel, user), 0

    async def send(self, text: str, message_id: str | None = None) -> str:
        self.count += 1
        message = InboundMessage(
            address=self.address,
            received_at=START,
            text=text,
            platform_message_id=message_id or f"{self.address.user_id}-{self.count}",
        )
        result = await self.engine.handle(message)
        return "\n\n".join(flows.as_plain_text(item.message) for item in result.replies)


def make_engine(database: Database, **kwargs: object) -> ConversationEngine:
    return ConversationEngine(database, SETTINGS, clock=Clock(), **kwargs)  # type: ignore[arg-type]


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_whole_intake_is_stored_with_its_declaration(database: Database) -> None:
    chat = Chat(make_engine(database), channel="whatsapp", user="+966551234567")
    replies = [await chat.send(line) for line in INTAKE_AR]
    assert "REQ-000001" in replies[-1]
    async with database.session() as session:
        request = (await session.scalars(select(SupportRequest))).one()
    assert request.reference == "REQ-000001"
    assert request.answers["national_id"] == "1000000008"
    assert request.answers["mobile"] == "+966551234567"
    assert request.answers["city"] == "جدة"
    assert request.need == "food"
    assert request.status == "submitted"
    assert request.signed_channel == "whatsapp"
    assert request.signed_message_id == f"+966551234567-{len(INTAKE_AR)}"
    assert request.decision_due_at - request.signed_at == timedelta(days=14)
    assert await count(database, StatusChange, col(StatusChange.to_status) == "submitted") == 1
    status = await chat.send("٢")
    assert "REQ-000001" in status


async def test_half_done_intake_resumes_after_restart(database: Database) -> None:
    first = Chat(make_engine(database))
    for line in INTAKE_AR[:5]:
        await first.send(line)
    # A new engine (as after a restart) on the same database picks up at the mobile step.
    second = Chat(make_engine(database))
    second.count = first.count
    reply = await second.send(INTAKE_AR[5])
    assert "(٤/٨)" in reply
    for line in INTAKE_AR[6:]:
        reply = await second.send(line)
    assert "REQ-000001" in reply


async def test_redelivered_message_is_processed_once(database: Database) -> None:
    engine = make_engine(database)
    chat = Chat(engine)
    first = await chat.send("١", message_id="wamid.1")
    again = await engine.handle(
        InboundMessage(
            address=chat.address, received_at=START, text="١", platform_message_id="wamid.1"
        )
    )
    assert first
    assert again.duplicate and not again.replies
    assert await count(database, Message, col(Message.direction) == "in") == 1


async def test_status_never_shows_another_persons_request(database: Database) -> None:
    engine = make_engine(database)
    owner = Chat(engine, user="owner")
    for line in INTAKE_AR:
        filed = await owner.send(line)
    assert "REQ-000001" in filed  # it exists, and its owner sees it
    await owner.send("menu")
    assert "REQ-000001" in await owner.send("٢")
    stranger = Chat(engine, user="stranger")
    await stranger.send("menu")
    reply = await stranger.send("REQ-000001")
    assert "REQ-000001" not in reply
    assert "محمد" not in reply and "سلة" not in reply
    listing = await stranger.send("٢")
    assert "REQ-000001" not in listing


async def test_concurrent_messages_of_one_beneficiary_are_serialised(database: Database) -> None:
    engine = make_engine(database)
    chat = Chat(engine)
    await chat.send("١")
    await chat.send("أوافق")  # the privacy notice
    texts = ["محمد أحمد علي الزهراني", "١٠٠٠٠٠٠٠٠٨", "٠٥٥١٢٣٤٥٦٧", "الرياض"]
    messages = [
        InboundMessage(address=chat.address, received_at=START, text=t, platform_message_id=f"c{i}")
        for i, t in enumerate(texts)
    ]
    await asyncio.gather(*(engine.handle(m) for m in messages))
    assert await count(database, Message, col(Message.direction) == "in") == 6
    # Each message moved the intake one step on: the next question is the need.
    reply = await chat.send("١")
    assert "(٦/٨)" in reply


async def test_a_failing_effect_leaves_nothing_half_written(database: Database) -> None:
    def broken(turn: Turn) -> Transition:
        # An intake missing its answers: the repository fails mid-transaction.
        intake = SaveIntake(answers={}, documents=(), decision_due_at=turn.now, signed_at=turn.now)
        state = ConversationState(flow="intake", step="submitted", data={"marker": 1})
        return Transition(state=state, effects=(intake,), resume=True)

    chat = Chat(make_engine(database, respond=broken))
    reply = await chat.send("نعم")
    assert reply == flows.text("ar", "error.generic")
    assert await count(database, SupportRequest) == 0
    assert await count(database, StatusChange) == 0
    assert await count(database, Message, col(Message.direction) == "in") == 1
    # The state was not saved: the next message starts from the menu again.
    normal = Chat(make_engine(database), user="u1")
    normal.count = 1
    assert "١-" in await normal.send("مرحبا")


async def test_a_flow_that_keeps_resuming_fails_loudly_not_quietly(database: Database) -> None:
    rounds = []

    def looping(turn: Turn) -> Transition:
        # Every round asks for another: the last one's handoff must not vanish unnoticed.
        rounds.append(turn.state.step)
        state = ConversationState(flow="menu", step="choose")
        return Transition(state=state, effects=(OpenHandoff("requested"),), resume=True)

    chat = Chat(make_engine(database, respond=looping))
    reply = await chat.send("مرحبا")
    assert reply == flows.text("ar", "error.generic")
    assert len(rounds) == 3  # the allowed rounds, each performed, then the refusal
    assert await count(database, Handoff) == 0  # rolled back: nothing half-done stays
    assert await count(database, Message, col(Message.direction) == "in") == 1


async def test_one_failing_message_in_a_batch_costs_only_itself(database: Database) -> None:
    def broken_for_u2(turn: Turn) -> Transition:
        if turn.message.address.user_id == "u2":
            raise RuntimeError("bug in a flow")
        return flows.respond(turn)

    engine = make_engine(database, respond=broken_for_u2)
    chats = [Chat(engine, user=f"u{n}") for n in (1, 2, 3)]
    # Sent together, they are handled in one transaction; u2's failure rolls it back and
    # each is handled again alone.
    replies = await asyncio.gather(*(chat.send("١") for chat in chats))
    assert replies[1] == flows.text("ar", "error.generic")
    notice = "لدراسة طلبك فقط"  # the privacy notice comes first
    assert notice in replies[0] and notice in replies[2]
    assert await count(database, Message, col(Message.direction) == "in") == 3
    assert await count(database, Message, col(Message.direction) == "out") == 3
    # The others' intakes went on; u2 is still at the menu.
    assert "(١/٨)" in await Chat(make_engine(database), user="u1").send("أوافق", "x1")
    assert notice in await Chat(make_engine(database), user="u2").send("١", "x2")


async def test_a_failing_flow_apologises_in_english_too(database: Database) -> None:
    engine = make_engine(database)
    chat = Chat(engine)
    await chat.send("English")

    def broken(turn: Turn) -> Transition:
        raise RuntimeError("bug in a flow")

    failing = Chat(make_engine(database, respond=broken))
    failing.count = chat.count
    assert await failing.send("1") == flows.text("en", "error.generic")


@pytest.mark.parametrize("text", ["", " ", "😀" * 50, "x" * 5000, "\x00", "REQ-", "٠٠٠"])
async def test_odd_input_gets_an_answer(database: Database, text: str) -> None:
    chat = Chat(make_engine(database))
    reply = await chat.send(text)
    assert reply.strip()
    assert reply != flows.text("ar", "error.generic")


async def test_a_request_asked_about_from_another_channel_needs_the_second_factor(
    database: Database,
) -> None:
    engine = make_engine(database)
    whatsapp = Chat(engine, channel="whatsapp", user="+966551234567")
    for line in INTAKE_AR:
        await whatsapp.send(line)
    telegram = Chat(engine, channel="telegram", user="777")
    await telegram.send("مرحبا")
    asked = await telegram.send("REQ-000001")
    assert "REQ-000001" not in asked and "٤" in asked
    assert "REQ-000001" not in await telegram.send("1234")
    shown = await telegram.send("٠٠٠٨")
    assert "REQ-000001" in shown and "سلة غذائية" in shown
