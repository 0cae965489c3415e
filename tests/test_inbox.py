"""The inbox (``inbound.acknowledge = "stored"``): a message is acknowledged once stored,
its turn follows in the order its sender wrote, and what a crash leaves is answered once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    BENEFICIARY,
    INTAKE_WHATSAPP,
    NO_SENDER_LIMIT,
    WhatsApp,
    eventually,
    make_settings,
    settled,
)
from fakes.twilio_api import FakeTwilio
from sqlalchemy import event, select, text
from sqlmodel import col
from test_engine import SETTINGS, START, Clock, count
from transcript import INTAKE_AR

import flows
from bot.config import Settings
from bot.engine import INBOX_TURNS_EACH, ConversationEngine, HandleResult, InboundLimits
from bot.server import Tawasul
from flows.types import Address, InboundMessage, Transition, Turn
from handlers.base import Overloaded
from storage.db import Database
from storage.models import Message, SupportRequest
from storage.repositories import IdentityRepository, MessageRepository


class Turns:
    """What ``after_turn`` was told: each message's text and result, per beneficiary."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = defaultdict(list)
        self.results: list[tuple[str, HandleResult]] = []

    def __call__(self, message: InboundMessage, result: HandleResult) -> None:
        self.seen[message.address.user_id].append(message.text)
        self.results.append((message.address.user_id, result))

    def first_reply(self, user: str) -> str:
        replies = [result.replies for who, result in self.results if who == user]
        return flows.as_plain_text(replies[0][0].message)


def engine_for(database: Database, turns: Turns, **kwargs: object) -> ConversationEngine:
    return ConversationEngine(
        database,
        SETTINGS,
        clock=Clock(),
        after_turn=turns,
        **kwargs,  # type: ignore[arg-type]
    )


def message(user: str, text: str, number: int) -> InboundMessage:
    return InboundMessage(
        address=Address("whatsapp", user),
        received_at=START,
        text=text,
        platform_message_id=f"{user}-{number}",
    )


async def inbound_statuses(database: Database) -> list[str]:
    async with database.session() as session:
        rows = await session.scalars(
            select(col(Message.status)).where(col(Message.direction) == "in")
        )
        return list(rows)


async def test_acknowledged_once_stored_then_answered_in_the_senders_order(
    database: Database,
) -> None:
    turns = Turns()
    engine = engine_for(database, turns)
    users = [f"+96655000000{n}" for n in range(3)]
    # Every beneficiary's whole intake at once, each line sent only once the previous is
    # acknowledged (not answered): the turns must still come in each sender's order.

    async def write(user: str) -> list[bool]:
        return [await engine.accept(message(user, line, n)) for n, line in enumerate(INTAKE_AR)]

    accepted = await asyncio.gather(*(write(user) for user in users))
    assert all(all(flags) for flags in accepted)
    assert await engine.drain(30)
    for user in users:
        assert turns.seen[user] == [flows.types.clean_text(line) for line in INTAKE_AR]
    # Each intake went through: three requests, each message received once and answered.
    assert await count(database, SupportRequest) == 3
    assert set(await inbound_statuses(database)) == {"received"}
    assert all(result.replies for _user, result in turns.results)
    assert await count(database, Message, col(Message.direction) == "in") == 3 * len(INTAKE_AR)


async def test_a_redelivery_is_acknowledged_and_not_answered_twice(database: Database) -> None:
    turns = Turns()
    engine = engine_for(database, turns)
    first = message("+966550000001", "مرحبا", 1)
    assert await engine.accept(first) is True
    assert await engine.accept(first) is False  # the platform's retry, before or after
    assert await engine.drain(10)
    assert await engine.accept(first) is False
    assert await engine.drain(10)
    assert turns.seen["+966550000001"] == ["مرحبا"]
    assert await count(database, Message, col(Message.direction) == "out") == 1


async def test_a_failing_turn_is_answered_with_an_apology_and_costs_only_itself(
    database: Database,
) -> None:
    def broken_for_two(turn: Turn) -> Transition:
        if turn.message.address.user_id.endswith("2"):
            raise RuntimeError("bug in a flow")
        return flows.respond(turn)

    turns = Turns()
    engine = engine_for(database, turns, respond=broken_for_two)
    users = ("+966550000001", "+966550000002", "+966550000003")
    await asyncio.gather(*(engine.accept(message(user, "١", 1)) for user in users))
    assert await engine.drain(10)
    assert len(turns.results) == 3
    apology = flows.text("ar", "error.generic")
    assert turns.first_reply(users[1]) == apology
    notice = "لدراسة طلبك فقط"  # the others' turns went on: the privacy notice
    assert notice in turns.first_reply(users[0]) and notice in turns.first_reply(users[2])
    assert set(await inbound_statuses(database)) == {"received"}
    assert await count(database, Message, col(Message.direction) == "out") == 3


async def test_what_a_crash_left_in_the_inbox_is_answered_once_in_order(
    database: Database,
) -> None:
    # A process stored these and was killed before their turns: rows marked "queued".
    user = "+966550000009"
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(Address("whatsapp", user), START)
        for n, line in enumerate(INTAKE_AR):
            await MessageRepository(session).log_inbound(
                identity.id or 0, message(user, line, n), queued=True
            )
    turns = Turns()
    engine = engine_for(database, turns)
    # Not yet old enough for another process to take (it may still be on them).
    assert await engine.recover(timedelta(days=3650)) == 0
    assert await engine.recover() == 1
    assert await engine.drain(30)
    assert turns.seen[user] == [flows.types.clean_text(line) for line in INTAKE_AR]
    assert await count(database, SupportRequest) == 1
    # Taken again (a second process looking at the same time): nothing more happens.
    again = engine_for(database, Turns())
    assert await again.recover() == 0
    replies = await count(database, Message, col(Message.direction) == "out")
    assert replies >= len(INTAKE_AR)
    assert set(await inbound_statuses(database)) == {"received"}


async def test_two_processes_keep_one_senders_order(database: Database) -> None:
    # Two engines on two connections (two processes behind one address), each given
    # every other line of one beneficiary's intake: the turns still go in order.
    other = Database(database.url, keyring=database.keyring)
    try:
        turns_a, turns_b = Turns(), Turns()
        engines = (engine_for(database, turns_a), engine_for(other, turns_b))
        user = "+966550000007"
        for n, line in enumerate(INTAKE_AR):
            assert await engines[n % 2].accept(message(user, line, n))
        assert all([await engine.drain(30) for engine in engines])
    finally:
        await other.dispose()
    taken = turns_a.seen[user] + turns_b.seen[user]
    assert sorted(taken) == sorted(flows.types.clean_text(line) for line in INTAKE_AR)
    assert await count(database, SupportRequest) == 1  # the intake in its order
    assert set(await inbound_statuses(database)) == {"received"}


async def test_a_full_inbox_refuses_without_storing(database: Database) -> None:
    turns = Turns()
    limits = InboundLimits(queue_limit=1, queue_wait=0.0, retry_after=7)
    engine = engine_for(database, turns, limits=limits)
    outcomes = await asyncio.gather(
        *(engine.accept(message(f"+9665500001{n:02d}", "مرحبا", n)) for n in range(6)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, Overloaded)]
    assert refused and all(o.retry_after == 7 for o in refused)
    assert await engine.drain(10)
    stored = await count(database, Message, col(Message.direction) == "in")
    assert stored == outcomes.count(True) == len(outcomes) - len(refused)
    assert sum(len(seen) for seen in turns.seen.values()) == stored


@pytest.mark.parametrize("text", ["\ud800 bad", "nul\x00byte"])
async def test_bytes_no_database_takes_are_stored_cleaned_and_answered(
    database: Database, text: str
) -> None:
    turns = Turns()
    engine = engine_for(database, turns)
    assert await engine.accept(message("+966550000005", text, 1))
    assert await engine.drain(10)
    assert len(turns.results) == 1 and turns.results[0][1].replies
    assert set(await inbound_statuses(database)) == {"received"}


def stored_mode(tmp_path: Path, twilio: FakeTwilio) -> Settings:
    inbound = {"per_sender_burst": NO_SENDER_LIMIT, "acknowledge": "stored"}
    return make_settings(tmp_path, twilio, inbound=inbound)


async def test_a_whole_intake_over_whatsapp_acknowledged_once_stored(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul = Tawasul(stored_mode(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, database)
        replies = [await phone.send(line) for line in INTAKE_WHATSAPP]
    assert "REQ-000001" in replies[-1]
    assert set(await inbound_statuses(database)) == {"received"}
    # One reply a message at least, each sent once.
    assert len(twilio.messages) == await count(database, Message, col(Message.direction) == "out")


async def test_a_restart_answers_what_was_stored_and_never_answered(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    # Acknowledged by a process that was killed before their turns.
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(
            Address("whatsapp", BENEFICIARY), START
        )
        for n, line in enumerate(["مرحبا", "١"]):
            await MessageRepository(session).log_inbound(
                identity.id or 0, message(BENEFICIARY, line, n), queued=True
            )
    tawasul = Tawasul(stored_mode(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())):
        await eventually(lambda: len(twilio.messages) >= 2, "the replies after the restart")
        await settled(database, "whatsapp")
    bodies = [m["Body"] for m in twilio.messages]
    assert "١- طلب دعم جديد" in bodies[0]  # the menu, then the privacy notice, in order
    assert "لدراسة طلبك فقط" in bodies[-1]
    assert set(await inbound_statuses(database)) == {"received"}


async def test_a_flood_goes_round_with_everyone_else(database: Database) -> None:
    turns = Turns()
    engine = engine_for(database, turns)
    flooder, neighbour = "+966550000021", "+966550000022"
    texts = [f"رسالة {n}" for n in range(5 * INBOX_TURNS_EACH)]
    # The flood and, last, the neighbour's one message arrive together.
    flood = [message(flooder, t, n) for n, t in enumerate(texts)]
    arrived = await asyncio.gather(
        *(engine.accept(m) for m in [*flood, message(neighbour, "مرحبا", 0)])
    )
    assert all(arrived)
    assert await engine.drain(30)
    order = [who for who, _result in turns.results]
    # The neighbour waited for a round of the flood, not for all of it.
    assert order.index(neighbour) <= 2 * INBOX_TURNS_EACH
    assert turns.seen[flooder] == texts  # the flood's own order kept, none lost or twice
    assert set(await inbound_statuses(database)) == {"received"}


async def test_stored_beyond_the_inboxs_room_they_are_answered_from_the_database(
    database: Database,
) -> None:
    turns = Turns()
    limits = InboundLimits(queue_limit=2, queue_wait=30.0)
    engine = engine_for(database, turns, limits=limits)
    users = [f"+9665500002{n:02d}" for n in range(12)]
    lines = INTAKE_AR[:3]

    async def write(user: str) -> list[bool]:
        return [await engine.accept(message(user, line, n)) for n, line in enumerate(lines)]

    # 36 messages, at most two beneficiaries in memory: the others wait in the database.
    assert all(all(flags) for flags in await asyncio.gather(*(write(u) for u in users)))
    assert await engine.drain(30)
    for user in users:
        assert turns.seen[user] == list(lines)  # each answered once, in order
    assert set(await inbound_statuses(database)) == {"received"}


class Beginnings:
    """Transactions begun on ``database`` (both backends), counted as they begin."""

    def __init__(self, database: Database) -> None:
        self.count = 0
        self._engine = database.engine.sync_engine
        event.listen(self._engine, "begin", self._begun)

    def _begun(self, _connection: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "begin", self._begun)


async def _during_a_long_batch_of_turns(
    database: Database, second: list[InboundMessage]
) -> tuple[Turns, list[bool | BaseException], int, int]:
    """Thirty beneficiaries' turns, each holding the loop 3 ms as under load, and
    ``second`` sent from inside the first of them; what the turns saw, what ``second``'s
    webhooks were told, and the transactions begun when the turns began and when they
    were told."""
    loop = asyncio.get_running_loop()
    beginnings = Beginnings(database)
    told: list[bool | BaseException] = []
    counts: list[int] = []
    when: list[int] = []  # as each webhook was told
    sending: list[asyncio.Task[None]] = []

    async def webhook(message: InboundMessage) -> bool:
        stored = await engine.accept(message)
        when.append(beginnings.count)
        return stored

    async def webhooks() -> None:
        told.extend(await asyncio.gather(*(webhook(m) for m in second), return_exceptions=True))

    def slow(turn: Turn) -> Transition:
        if not counts:
            counts.append(beginnings.count)
            sending.append(loop.create_task(webhooks()))
        time.sleep(0.003)
        return flows.respond(turn)

    turns = Turns()
    engine = engine_for(database, turns, respond=slow, inbox_seconds=1.0)
    first = [message(f"+9665500001{n:02d}", "مرحبا", 0) for n in range(30)]
    try:
        assert all(await asyncio.gather(*(engine.accept(m) for m in first)))
        assert await engine.drain(30)
    finally:
        beginnings.close()
    return turns, told, counts[0], max(when)


async def test_webhooks_that_come_during_turns_are_stored_in_their_transaction(
    database: Database,
) -> None:
    second = [message(f"+9665500002{n:02d}", "مرحبا", 0) for n in range(5)]
    turns, told, at_turns, at_told = await _during_a_long_batch_of_turns(database, second)
    # Told once the turns' transaction committed, without one of their own.
    assert told == [True] * 5 and at_told == at_turns
    assert len(turns.results) == 35 and all(result.replies for _, result in turns.results)
    assert set(await inbound_statuses(database)) == {"received"}


@contextlib.asynccontextmanager
async def refusing(database: Database, platform_message_id: str) -> AsyncIterator[None]:
    """The database refuses to store the message with this platform id (a trigger)."""
    if database.is_sqlite:
        create = [
            "CREATE TRIGGER refuse BEFORE INSERT ON message "
            f"WHEN NEW.platform_message_id = '{platform_message_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse"]
    else:
        create = [
            "CREATE FUNCTION refuse() RETURNS trigger AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON message FOR EACH ROW "
            f"WHEN (NEW.platform_message_id = '{platform_message_id}') EXECUTE FUNCTION refuse()",
        ]
        drop = ["DROP TRIGGER refuse ON message", "DROP FUNCTION refuse()"]
    async with database.engine.begin() as connection:
        for statement in create:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with database.engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))


async def test_a_webhook_the_database_refuses_during_turns_costs_them_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # Stored in the turns' transaction together, the refused one first (the same order).
    second = [message(f"+9665500003{n:02d}", "١", 0) for n in range(2)]
    async with refusing(database, second[0].platform_message_id or ""):
        turns, told, _at_turns, _at_told = await _during_a_long_batch_of_turns(database, second)
    # The refused one fails its webhook (the platform sends it again); the other is
    # stored on its own after the commit, and the turns were not taken again.
    assert isinstance(told[0], Exception) and told[1] is True
    assert "one by one" not in caplog.text
    assert len(turns.results) == 31 and all(result.replies for _, result in turns.results)
    assert set(await inbound_statuses(database)) == {"received"}
