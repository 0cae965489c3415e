"""The outbox sender against the real twilio and python-telegram-bot clients and local fakes.

Time is a ``FakeTime``: the sender's clock, its monotonic clock and its sleep all move
only when a test moves them, so back-offs, rate limits, quiet hours and ages are checked
on that clock, never by waiting. The sender runs as in the server (``start``); a test
wakes it and waits until every worker rests again with nothing due (``settle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from channels import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BENEFICIARY,
    CHARITY,
    FAST_SENDER,
    PUBLIC_URL,
    SECRET,
    TOKEN,
    WhatsApp,
    eventually,
    make_settings,
    settled,
)
from fakes.telegram_api import FakeTelegram
from fakes.twilio_api import FakeTwilio, inbound_params, status_params
from sqlalchemy import select
from sqlmodel import col
from statements import counting_statements

from bot.engine import utcnow
from bot.outbox import DeliveryRules, FailedDelivery, OutboxSender, TokenBucket
from bot.server import Tawasul
from flows.types import Address, InboundMessage, OutboundMessage, TemplateRef
from handlers.base import Channel
from handlers.telegram import TelegramChannel
from handlers.twilio import TwilioChannel
from storage.db import Database
from storage.models import Message
from storage.repositories import IdentityRepository, MessageRepository

# Sunday 22 November 2026, 12:00 in Riyadh: working hours, no quiet.
NOON = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
RIYADH_NIGHT = (time(22, 0), time(8, 0))
CHECKIN_SID = "HX" + "c" * 32
RATING_SID = "HX" + "a" * 32
OTHER = "+966552222222"
CHAT, OTHER_CHAT = 5550001, 5550002


class FakeTime:
    """The sender's three views of time, moved by hand (``sleep`` moves them too)."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now, self.mono = now, 1000.0
        self.on_sleep: Callable[[float], None] | None = None
        self.workers = 0  # the sender's workers: one per channel
        self.resting: set[asyncio.Event] = set()  # the wake-up each resting worker waits for
        self.rested = asyncio.Condition()

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds

    async def rest(self, wake: asyncio.Event, _seconds: float) -> None:
        """A worker with nothing due: on this clock no time passes by itself, so it
        waits for a wake-up only (``settle`` gives one)."""
        self.resting.add(wake)
        async with self.rested:
            self.rested.notify_all()
        try:
            await wake.wait()
        finally:
            self.resting.discard(wake)

    def all_rest(self) -> bool:
        # A wake-up still set is one its worker has not taken yet.
        return len(self.resting) == self.workers and not any(w.is_set() for w in self.resting)


TEMPLATES = {"checkin": CHECKIN_SID, "rating_prompt": RATING_SID}


@contextlib.asynccontextmanager
async def twilio_sender(
    twilio: FakeTwilio, *, rate: float = FAST_SENDER, templates: dict[str, str] = TEMPLATES
) -> AsyncIterator[TwilioChannel]:
    """The Twilio channel with a sender's limit and templates (which the outbox reads)."""
    channel = TwilioChannel(
        ACCOUNT_SID,
        AUTH_TOKEN,
        CHARITY,
        public_url=PUBLIC_URL,
        api_base_url=twilio.base_url,
        templates=templates,
        messages_per_second=rate,
    )
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


@pytest.fixture
async def twilio_channel(twilio: FakeTwilio) -> AsyncIterator[TwilioChannel]:
    async with twilio_sender(twilio) as channel:
        yield channel


@pytest.fixture
async def telegram_channel(telegram: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(TOKEN, webhook_secret=SECRET, api_base_url=telegram.base_url)
    await channel.start()
    yield channel
    await channel.stop()


# The senders a test started, stopped when it ends.
_RUNNING: list[OutboxSender] = []


@pytest.fixture(autouse=True)
async def _stop_senders() -> AsyncIterator[None]:
    yield
    while _RUNNING:
        await _RUNNING.pop().stop()


def sender(
    database: Database,
    channels: Sequence[Channel],
    clock: FakeTime,
    *,
    rules: DeliveryRules | None = None,
    failed: list[FailedDelivery] | None = None,
    reports: list[list[FailedDelivery]] | None = None,
    **options: Any,
) -> OutboxSender:
    """A running sender on ``clock`` (its workers rest until ``settle`` wakes them);
    what it gives up on goes to ``failed``, each report to staff to ``reports``."""

    async def on_failed(batch: Sequence[FailedDelivery]) -> None:
        if failed is not None:
            failed.extend(batch)
        if reports is not None:
            reports.append(list(batch))

    outbox = OutboxSender(
        database,
        {name: channel for channel in channels for name in channel.names},
        clock.clock,
        rules=rules or DeliveryRules(),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rest=clock.rest,
        base_backoff=1.0,
        on_failed=on_failed,
        **options,
    )
    clock.workers = len({id(channel) for channel in channels})
    outbox.start()
    _RUNNING.append(outbox)
    return outbox


async def settle(outbox: OutboxSender, clock: FakeTime) -> None:
    """Wake the running sender and wait until every worker has sent what is due now (on
    ``clock``) and rests again."""
    outbox.wake()
    async with clock.rested:
        await asyncio.wait_for(clock.rested.wait_for(clock.all_rest), 30)


async def beneficiary(database: Database, address: Address, last_wrote: datetime) -> int:
    async with database.session() as session, session.begin():
        identity = await IdentityRepository(session).get_or_create(address, last_wrote)
        assert identity.id is not None
        return identity.id


async def store(
    database: Database,
    identity_id: int,
    channel: str,
    text: str,
    at: datetime,
    *,
    kind: str = "reply",
    template: TemplateRef | None = None,
) -> int:
    async with database.session() as session, session.begin():
        message = OutboundMessage(text, "ar", template=template)
        return await MessageRepository(session).enqueue(
            identity_id, channel, message, at, kind=kind
        )


async def row(database: Database, message_id: int) -> Message:
    async with database.session() as session:
        found = await session.get(Message, message_id)
        assert found is not None
        return found


async def stored_messages(database: Database) -> Sequence[Message]:
    """Every message row, oldest first."""
    async with database.session() as session:
        return (await session.scalars(select(Message).order_by(col(Message.id)))).all()


async def run(
    outbox: OutboxSender, clock: FakeTime, done: Callable[[], bool], step: float = 0.25
) -> None:
    """Settle, move the clock by ``step``, again, until ``done()`` (at most 5 fake minutes)."""
    for _ in range(int(300 / step)):
        await settle(outbox, clock)
        if done():
            return
        clock.advance(step)
    raise AssertionError("the outbox never got there")


# --- the token bucket and quiet hours, alone ---


def test_a_token_bucket_keeps_its_reserve_for_replies() -> None:
    clock = FakeTime()
    bucket = TokenBucket.for_rate(0.8, clock.monotonic, reserved=True)  # 80% of 1 a second
    assert (bucket.capacity, bucket.reserve) == (2, 1)
    assert bucket.wait() == 0
    bucket.take()  # a proactive message: one token stays for a reply
    assert bucket.wait() == pytest.approx(1.25)
    assert bucket.wait(reserve=True) == 0
    bucket.take()  # the reply took it
    assert bucket.wait(reserve=True) == pytest.approx(1.25)
    clock.advance(2.5)
    assert bucket.wait() == 0
    bucket.pause(7)  # the platform said "retry after 7"
    assert bucket.wait(reserve=True) == pytest.approx(7)


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-11-22T21:59", None),
        ("2026-11-22T22:00", "2026-11-23T08:00"),
        ("2026-11-22T23:30", "2026-11-23T08:00"),
        ("2026-11-23T03:00", "2026-11-23T08:00"),
        ("2026-11-23T08:00", None),
    ],
)
def test_quiet_hours_cross_midnight_in_the_organisations_time_zone(
    local: str, until: str | None
) -> None:
    rules = DeliveryRules(quiet_hours=RIYADH_NIGHT, timezone="Asia/Riyadh")
    riyadh = datetime.fromisoformat(local + "+03:00")
    found = rules.quiet_until(riyadh.astimezone(UTC))
    assert (found.isoformat(timespec="minutes") if found else None) == (
        until + "+03:00" if until else None
    )
    assert DeliveryRules(quiet_hours=(time(9), time(9))).quiet_until(riyadh) is None


# --- retries, order and exactly once ---


async def test_a_throttled_then_failing_twilio_gets_every_message_once_in_order(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    first = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    second = await beneficiary(database, Address("whatsapp", OTHER), NOON)
    for n in (1, 2, 3):
        await store(database, first, "whatsapp", f"A{n}", NOON)
        if n < 3:
            await store(database, second, "whatsapp", f"B{n}", NOON)
    twilio.fail(status=429, code=20429, retry_after=3)
    twilio.fail(status=500)
    outbox = sender(database, [twilio_channel], clock)
    accepted_at: list[float] = []

    def done() -> bool:
        accepted_at.extend([clock.mono] * (len(twilio.messages) - len(accepted_at)))
        return len(twilio.messages) == 5

    await run(outbox, clock, done)
    assert twilio.bodies(f"whatsapp:{BENEFICIARY}") == ["A1", "A2", "A3"]
    assert twilio.bodies(f"whatsapp:{OTHER}") == ["B1", "B2"]
    assert [call.status for call in twilio.calls] == [429, 500, 201, 201, 201, 201, 201]
    # Retry-After paused the whole sender: nothing went before it was over.
    assert min(accepted_at) >= 1000 + 3
    rows = await stored_messages(database)
    assert {r.status for r in rows} == {"sent"}
    # Both beneficiaries' first messages go at once, so the two refusals may fall on
    # either: every call is counted on the message it carried, and each was sent once.
    assert sum(r.attempts for r in rows) == len(twilio.calls)
    assert sorted(r.attempts for r in rows)[:3] == [1, 1, 1]


async def test_beneficiaries_are_sent_to_at_once_each_one_message_at_a_time(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    people = [f"+9665{n:08d}" for n in range(10)]
    for phone in people:
        identity = await beneficiary(database, Address("whatsapp", phone), NOON)
        for n in (1, 2, 3):
            await store(database, identity, "whatsapp", f"{phone}/{n}", NOON)
    twilio.answer_after = 0.05
    outbox = sender(database, [twilio_channel], clock, sends_at_once=4)
    await run(outbox, clock, lambda: len(twilio.messages) == 30)
    # Four calls overlapped, never two to one beneficiary, and each got theirs in order.
    assert (twilio.most_at_once, twilio.most_at_once_to_one) == (4, 1)
    for phone in people:
        assert twilio.bodies(f"whatsapp:{phone}") == [f"{phone}/{n}" for n in (1, 2, 3)]
    rows = await stored_messages(database)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    assert len({r.platform_message_id for r in rows}) == 30


async def test_a_steady_stream_of_new_messages_does_not_keep_the_outbox_from_sending(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    for n in (1, 2):
        await store(database, identity, "whatsapp", f"A{n}", NOON)
    outbox = sender(database, [twilio_channel], clock)

    async def keep_waking() -> None:
        # Under load something new is stored while every pass looks at the outbox, and
        # wakes it again: each pass still sends what it found first.
        while len(twilio.messages) < 2:
            outbox.wake()
            await asyncio.sleep(0)

    await asyncio.wait_for(keep_waking(), 30)
    await settle(outbox, clock)
    assert twilio.bodies() == ["A1", "A2"]


async def test_replies_go_on_while_new_ones_are_stored_and_bulk_waits_for_the_next_pass(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    # Under load a reply is stored during every pass. The pass's replies still go (new
    # replies come after them anyway); its bulk messages wait for the next pass, which
    # starts with whatever was stored. Ending the pass at each one stored would query
    # the outbox again for every few messages sent.
    clock = FakeTime()
    people = [
        await beneficiary(database, Address("whatsapp", f"+9665{n:08d}"), NOON) for n in range(6)
    ]
    for n, person in enumerate(people[:5]):
        await store(database, person, "whatsapp", f"R{n}", NOON)
    await store(database, people[5], "whatsapp", "bulk", NOON, kind="proactive")
    twilio.answer_after = 0.1  # the new reply is stored while R1 is on its way
    stored_during_the_pass = False

    async def keep_storing() -> None:
        nonlocal stored_during_the_pass
        await eventually(lambda: twilio.messages, "the first reply sent")
        await store(database, people[0], "whatsapp", "R-new", NOON)
        stored_during_the_pass = True
        while len(twilio.messages) < 7:
            outbox.wake("whatsapp")
            await asyncio.sleep(0)

    with counting_statements(database) as statements:
        outbox = sender(database, [twilio_channel], clock, sends_at_once=1)
        await asyncio.wait_for(keep_storing(), 30)
        await settle(outbox, clock)
    assert stored_during_the_pass
    assert twilio.bodies() == ["R0", "R1", "R2", "R3", "R4", "R-new", "bulk"]
    outbox_queries = [sql for sql in statements if "row_number()" in sql]
    assert len(outbox_queries) <= 4  # a pass, the next one, and the last finding nothing


async def test_two_channels_sending_together_mark_every_message_sent(
    database: Database,
    twilio: FakeTwilio,
    twilio_channel: TwilioChannel,
    telegram: FakeTelegram,
    telegram_channel: TelegramChannel,
) -> None:
    # Each channel's worker writes its own "sent" marks: none is lost to the other's.
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    for n in range(12):
        phone = await beneficiary(database, Address("whatsapp", f"+9665{n:08d}"), NOON)
        chat = await beneficiary(database, Address("telegram", str(7000 + n)), NOON)
        for part in (1, 2):
            await store(database, phone, "whatsapp", f"W{n}/{part}", NOON)
            await store(database, chat, "telegram", f"T{n}/{part}", NOON)
    twilio.answer_after = 0.01
    outbox = sender(database, [twilio_channel, telegram_channel], clock)

    def all_sent() -> bool:
        return len(twilio.messages) + len(telegram.calls("sendMessage")) == 48

    await run(outbox, clock, all_sent, step=1.0)
    rows = await stored_messages(database)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    # Telegram numbers messages per chat; our log keeps them apart by the chat.
    assert len({r.platform_message_id for r in rows}) == 48


async def test_a_wake_up_for_one_channel_leaves_the_others_resting(
    database: Database,
    twilio: FakeTwilio,
    twilio_channel: TwilioChannel,
    telegram: FakeTelegram,
    telegram_channel: TelegramChannel,
) -> None:
    # A turn wakes the lane of its replies' channel only: under load, a lane woken for
    # nothing would run the outbox's query for nothing, hundreds of times a second.
    clock = FakeTime()
    phone = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    chat = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    outbox = sender(database, [twilio_channel, telegram_channel], clock)

    async def all_resting() -> None:
        async with clock.rested:
            await asyncio.wait_for(clock.rested.wait_for(clock.all_rest), 30)

    await all_resting()
    await store(database, phone, "whatsapp", "W1", NOON)
    await store(database, chat, "telegram", "T1", NOON)
    outbox.wake("sms")  # Twilio's lane serves both of its names
    await eventually(lambda: len(twilio.messages) == 1, "the WhatsApp message sent")
    await all_resting()
    assert twilio.bodies() == ["W1"]
    assert telegram.calls("sendMessage") == []
    outbox.wake("telegram")
    await eventually(lambda: telegram.calls("sendMessage"), "the Telegram message sent")
    assert telegram.calls("sendMessage")[0].params["text"] == "T1"


async def test_telegram_flood_control_is_waited_out_and_each_chat_gets_one_a_second(
    database: Database, telegram: FakeTelegram, telegram_channel: TelegramChannel
) -> None:
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    chat = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    other = await beneficiary(database, Address("telegram", str(OTHER_CHAT)), NOON)
    for n in (1, 2, 3):
        await store(database, chat, "telegram", f"A{n}", NOON)
    await store(database, other, "telegram", "B1", NOON)
    telegram.fail("sendMessage", 429, "Too Many Requests: retry after 2", retry_after=2)
    # One call at a time, so that B1 is not already on its way when Telegram refuses A1.
    outbox = sender(database, [telegram_channel], clock, sends_at_once=1)
    sent_at: dict[str, float] = {}

    def done() -> bool:
        for call in telegram.calls("sendMessage")[1:]:  # the first one was refused
            sent_at.setdefault(call.params["text"], clock.mono - 1000)
        return len(sent_at) == 4

    await run(outbox, clock, done)
    texts = [telegram.message(CHAT, m)["text"] for m in telegram.message_ids(CHAT)]  # type: ignore[index]
    assert texts == ["A1", "A2", "A3"]
    assert [telegram.message(OTHER_CHAT, m)["text"] for m in telegram.message_ids(OTHER_CHAT)] == [  # type: ignore[index]
        "B1"
    ]
    # Nothing before the 2 seconds Telegram asked for; then another chat is not kept
    # waiting, while one chat gets at most one message a second.
    assert sent_at["A1"] == sent_at["B1"] == 2
    assert sent_at["A2"] - sent_at["A1"] >= 1 and sent_at["A3"] - sent_at["A2"] >= 1


async def test_twilio_is_sent_at_most_80_percent_of_its_limit_and_replies_keep_room(
    database: Database, twilio: FakeTwilio
) -> None:
    clock = FakeTime()
    numbers = [f"+96655000010{n}" for n in range(4)]
    for number in numbers:
        identity = await beneficiary(database, Address("whatsapp", number), NOON)
        await store(database, identity, "whatsapp", number, NOON, kind="proactive")
    async with twilio_sender(twilio, rate=1.0) as twilio_channel:
        await _paced(database, twilio, twilio_channel, clock)


async def _paced(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel, clock: FakeTime
) -> None:
    outbox = sender(database, [twilio_channel], clock)
    sent_at: list[float] = []

    def done() -> bool:
        sent_at.extend([clock.mono - 1000] * (len(twilio.messages) - len(sent_at)))
        return len(twilio.messages) == 4

    await run(outbox, clock, done, step=0.05)
    # 1 message a second allowed: 0.8 a second used, so one every 1.25 s.
    assert sent_at == pytest.approx([0, 1.25, 2.5, 3.75], abs=0.051)
    # A reply arriving now finds room at once though proactive messages were waiting.
    late = await beneficiary(database, Address("whatsapp", OTHER), clock.now)
    await store(database, late, "whatsapp", "a reply", clock.now)
    await settle(outbox, clock)
    assert twilio.bodies()[-1] == "a reply"


async def test_replies_overtake_queued_proactive_messages(
    database: Database, twilio: FakeTwilio
) -> None:
    clock = FakeTime()
    for n in range(3):
        identity = await beneficiary(database, Address("whatsapp", f"+96655000020{n}"), NOON)
        await store(database, identity, "whatsapp", f"notice {n}", NOON, kind="proactive")
    staff = await beneficiary(database, Address("whatsapp", "+966550000300"), NOON)
    await store(database, staff, "whatsapp", "staff's words", NOON, kind="staff")
    asker = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    await store(database, asker, "whatsapp", "the reply", NOON)
    async with twilio_sender(twilio, rate=1.0) as twilio_channel:
        outbox = sender(database, [twilio_channel], clock)
        await run(outbox, clock, lambda: len(twilio.messages) == 5)
    assert twilio.bodies() == ["the reply", "staff's words", "notice 0", "notice 1", "notice 2"]


async def test_a_reply_behind_a_bulk_send_waits_only_for_its_own_beneficiarys_messages(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    for n in range(3):
        identity = await beneficiary(database, Address("whatsapp", f"+96655000040{n}"), NOON)
        await store(database, identity, "whatsapp", f"bulk {n}", NOON, kind="proactive")
    asker = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    await store(database, asker, "whatsapp", "their checkin", NOON, kind="proactive")
    await store(database, asker, "whatsapp", "their reply", NOON)
    outbox = sender(database, [twilio_channel], clock, batch=2)  # the bulk overflows a batch
    await settle(outbox, clock)
    # The first pass reads "bulk 0" and the asker's two; the reply does not wait for
    # the bulk beyond that pass.
    assert twilio.bodies() == ["bulk 0", "their checkin", "their reply", "bulk 1", "bulk 2"]


async def test_a_held_message_holds_back_its_beneficiarys_later_ones_only(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    first = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    second = await beneficiary(database, Address("whatsapp", OTHER), NOON)
    await store(database, first, "whatsapp", "notice", NOON, kind="proactive")
    await store(database, first, "whatsapp", "reply after it", NOON)
    await store(database, second, "whatsapp", "another notice", NOON, kind="proactive")
    twilio.fail(status=503)
    outbox = sender(database, [twilio_channel], clock)
    await settle(outbox, clock)
    # The refused notice keeps its own beneficiary's reply back, and no one else's.
    assert twilio.bodies() == ["another notice"]
    await run(outbox, clock, lambda: len(twilio.messages) == 3)
    assert twilio.bodies(f"whatsapp:{BENEFICIARY}") == ["notice", "reply after it"]


# --- quiet hours, opt-out, age ---


async def test_quiet_hours_hold_proactive_messages_not_replies_or_staff(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    night = datetime(2026, 11, 22, 20, 30, tzinfo=UTC)  # 23:30 in Riyadh
    clock = FakeTime(night)
    rules = DeliveryRules(quiet_hours=RIYADH_NIGHT, timezone="Asia/Riyadh")
    sleeper = await beneficiary(database, Address("whatsapp", OTHER), night)
    await store(database, sleeper, "whatsapp", "reminder", night, kind="proactive")
    awake = await beneficiary(database, Address("whatsapp", BENEFICIARY), night)
    await store(database, awake, "whatsapp", "the reply", night)
    await store(database, awake, "whatsapp", "staff's words", night, kind="staff")
    outbox = sender(database, [twilio_channel], clock, rules=rules)
    await settle(outbox, clock)
    assert twilio.bodies() == ["the reply", "staff's words"]
    clock.advance(8 * 3600 + 29 * 60)  # 07:59
    await settle(outbox, clock)
    assert len(twilio.messages) == 2
    clock.advance(60)  # 08:00: the night is over
    await settle(outbox, clock)
    assert twilio.bodies()[-1] == "reminder"


async def test_a_timely_reminder_goes_in_the_quiet_hours_but_not_after_stop(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    early = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 06:00 in Riyadh, the appointment's day
    clock = FakeTime(early)
    rules = DeliveryRules(quiet_hours=RIYADH_NIGHT, timezone="Asia/Riyadh")
    awake = await beneficiary(database, Address("whatsapp", BENEFICIARY), early)
    await store(database, awake, "whatsapp", "your interview at 08:00", early, kind="timely")
    await store(database, awake, "whatsapp", "a check-in", early, kind="proactive")
    stopped = await beneficiary(database, Address("whatsapp", OTHER), early)
    async with database.session() as session, session.begin():
        await IdentityRepository(session).set_opted_out(stopped, True)
    await store(database, stopped, "whatsapp", "not to them", early, kind="timely")
    outbox = sender(database, [twilio_channel], clock, rules=rules)
    await settle(outbox, clock)
    assert twilio.bodies() == ["your interview at 08:00"]


async def test_an_opted_out_identity_gets_replies_and_nothing_proactive(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    async with database.session() as session, session.begin():
        await IdentityRepository(session).set_opted_out(identity, True)
    notice = await store(database, identity, "whatsapp", "notice", NOON, kind="proactive")
    await store(database, identity, "whatsapp", "the reply", NOON)
    failed: list[FailedDelivery] = []
    outbox = sender(database, [twilio_channel], clock, failed=failed)
    await settle(outbox, clock)
    assert twilio.bodies() == ["the reply"]
    dropped = await row(database, notice)
    assert (dropped.status, dropped.error) == ("failed", "opted out")
    assert failed == []  # what the beneficiary asked for is no news for staff


async def test_proactive_messages_too_old_to_send_are_dropped(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    rules = DeliveryRules(
        too_old_after=timedelta(hours=48),
        too_old={"rating_prompt": timedelta(hours=1)},
    )
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    stale = await store(
        database, identity, "whatsapp", "stale", NOON - timedelta(hours=49), kind="proactive"
    )
    prompt = await store(
        database,
        identity,
        "whatsapp",
        "rate us",
        NOON - timedelta(hours=2),
        kind="proactive",
        template=TemplateRef("rating_prompt"),
    )
    await store(
        database, identity, "whatsapp", "in time", NOON - timedelta(hours=47), kind="proactive"
    )
    await store(database, identity, "whatsapp", "old reply", NOON - timedelta(hours=49))
    outbox = sender(database, [twilio_channel], clock, rules=rules)
    await settle(outbox, clock)
    assert twilio.bodies() == ["in time", "old reply"]
    for message_id in (stale, prompt):
        dropped = await row(database, message_id)
        assert (dropped.status, dropped.error) == ("failed", "too old to send")


# --- WhatsApp's 24-hour window ---


async def test_outside_the_window_a_template_goes_instead_of_the_text(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    rules = DeliveryRules()
    identity = await beneficiary(
        database, Address("whatsapp", BENEFICIARY), NOON - timedelta(hours=25)
    )
    template = TemplateRef("checkin", {"1": "REQ-000001"})
    await store(
        database, identity, "whatsapp", "كيف حالك؟", NOON, kind="proactive", template=template
    )
    outbox = sender(database, [twilio_channel], clock, rules=rules)
    await settle(outbox, clock)
    [sent] = twilio.messages
    assert sent["ContentSid"] == CHECKIN_SID and "Body" not in sent
    assert json.loads(sent["ContentVariables"]) == {"1": "REQ-000001"}
    assert sent["To"] == f"whatsapp:{BENEFICIARY}"


async def test_inside_the_window_the_text_goes_even_when_there_is_a_template(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    rules = DeliveryRules()
    identity = await beneficiary(
        database, Address("whatsapp", BENEFICIARY), NOON - timedelta(hours=23)
    )
    await store(
        database,
        identity,
        "whatsapp",
        "hello",
        NOON,
        kind="proactive",
        template=TemplateRef("checkin"),
    )
    await settle(sender(database, [twilio_channel], clock, rules=rules), clock)
    assert twilio.bodies() == ["hello"] and "ContentSid" not in twilio.messages[0]


async def test_outside_the_window_without_a_template_it_goes_by_sms(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    identity = await beneficiary(
        database, Address("whatsapp", BENEFICIARY), NOON - timedelta(days=3)
    )
    message_id = await store(database, identity, "whatsapp", "تحديث", NOON, kind="proactive")
    await settle(sender(database, [twilio_channel], clock), clock)
    [sent] = twilio.messages
    assert (sent["To"], sent["From"], sent["Body"]) == (BENEFICIARY, CHARITY, "تحديث")
    stored = await row(database, message_id)
    assert (stored.status, stored.channel) == ("sent", "sms")  # its receipts say "sms"


async def test_outside_the_window_with_no_way_left_it_fails_and_staff_are_told(
    database: Database, twilio: FakeTwilio
) -> None:
    clock = FakeTime()
    rules = DeliveryRules(sms_fallback=False)
    identity = await beneficiary(
        database, Address("whatsapp", BENEFICIARY), NOON - timedelta(days=3)
    )
    message_id = await store(
        database, identity, "whatsapp", "x", NOON, kind="proactive", template=TemplateRef("checkin")
    )
    failed: list[FailedDelivery] = []
    async with twilio_sender(twilio, templates={}) as no_templates:
        await settle(sender(database, [no_templates], clock, rules=rules, failed=failed), clock)
    assert twilio.calls == []
    stored = await row(database, message_id)
    assert stored.status == "failed" and "24-hour window" in (stored.error or "")
    assert [(f.message_id, f.channel) for f in failed] == [(message_id, "whatsapp")]
    assert BENEFICIARY not in failed[0].reason


async def test_twilio_63016_on_sending_means_outside_the_window(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    rules = DeliveryRules()
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    await store(
        database,
        identity,
        "whatsapp",
        "hello",
        NOON,
        kind="proactive",
        template=TemplateRef("checkin"),
    )
    twilio.fail(status=400, code=63016)
    outbox = sender(database, [twilio_channel], clock, rules=rules)
    await run(outbox, clock, lambda: bool(twilio.messages))
    assert twilio.calls[0].form["Body"] == "hello"  # our clock said "inside"; Twilio knew
    assert twilio.messages[0]["ContentSid"] == CHECKIN_SID


# --- crashes and split messages ---


async def test_a_message_left_sending_by_a_dead_sender_is_sent_after_the_grace(
    database: Database, telegram: FakeTelegram, telegram_channel: TelegramChannel
) -> None:
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    identity = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    interrupted = await store(database, identity, "telegram", "first", NOON)
    await store(database, identity, "telegram", "second", NOON)
    async with database.session() as session, session.begin():  # a sender took it, then died
        assert await MessageRepository(session).claim_all({interrupted: "telegram"}, NOON)
    outbox = sender(database, [telegram_channel], clock, sending_grace=timedelta(minutes=2))
    await settle(outbox, clock)
    # It may be on its way still: neither it nor the beneficiary's later message goes.
    assert telegram.calls("sendMessage") == []
    clock.advance(121)
    await run(outbox, clock, lambda: len(telegram.calls("sendMessage")) == 2)
    assert [c.params["text"] for c in telegram.calls("sendMessage")] == ["first", "second"]
    stored = await row(database, interrupted)
    assert (stored.status, stored.attempts) == ("sent", 2)


async def test_a_dead_senders_message_holds_only_its_own_beneficiary_and_briefly(
    database: Database, telegram: FakeTelegram, telegram_channel: TelegramChannel
) -> None:
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    crashed = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    other = await beneficiary(database, Address("telegram", str(OTHER_CHAT)), NOON)
    interrupted = await store(database, crashed, "telegram", "first", NOON)
    await store(database, crashed, "telegram", "second", NOON)
    async with database.session() as session, session.begin():  # a sender took it, then died
        assert await MessageRepository(session).claim_all({interrupted: "telegram"}, NOON)
    await store(database, other, "telegram", "to the other", NOON)
    outbox = sender(database, [telegram_channel], clock)  # each channel's own grace
    await settle(outbox, clock)
    assert [c.params["chat_id"] for c in telegram.calls("sendMessage")] == [OTHER_CHAT]
    # Telegram's call would have ended within its client's time-outs: then it goes again.
    clock.advance(31)
    await settle(outbox, clock)
    assert len(telegram.calls("sendMessage")) == 2
    await run(outbox, clock, lambda: len(telegram.calls("sendMessage")) == 3)
    texts = [c.params["text"] for c in telegram.calls("sendMessage")]
    assert texts == ["to the other", "first", "second"]


async def test_one_chats_long_queue_leaves_room_for_everyone_else(
    database: Database, telegram: FakeTelegram, telegram_channel: TelegramChannel
) -> None:
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    busy = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    other = await beneficiary(database, Address("telegram", str(OTHER_CHAT)), NOON)
    for n in range(250):
        await store(database, busy, "telegram", f"menu {n}", NOON)
    await store(database, other, "telegram", "to the other", NOON)
    outbox = sender(database, [telegram_channel], clock, batch=100)
    await settle(outbox, clock)  # the busy chat's first reply, and the other's
    assert sorted(c.params["chat_id"] for c in telegram.calls("sendMessage")) == [
        CHAT,
        OTHER_CHAT,
    ]
    await run(outbox, clock, lambda: len(telegram.calls("sendMessage")) == 4)
    calls = telegram.calls("sendMessage")
    assert [c.params["text"] for c in calls if c.params["chat_id"] == CHAT] == [
        "menu 0",
        "menu 1",
        "menu 2",
    ]


async def test_a_split_message_is_retried_from_the_part_that_failed(
    database: Database, telegram: FakeTelegram, telegram_channel: TelegramChannel
) -> None:
    clock = FakeTime()
    telegram.limits(clock=clock.monotonic)  # Telegram's limits, on the same clock
    identity = await beneficiary(database, Address("telegram", str(CHAT)), NOON)
    head, tail = "ا" * 4000, "ب" * 200
    await store(database, identity, "telegram", f"{head}\n{tail}", NOON)
    # Between the two parts (the chat's one-a-second wait) Telegram starts failing.
    clock.on_sleep = lambda _seconds: telegram.fail("sendMessage", 502, "Bad Gateway")
    outbox = sender(database, [telegram_channel], clock)
    await settle(outbox, clock)
    clock.on_sleep = None
    await run(outbox, clock, lambda: len(telegram.message_ids(CHAT)) == 2)
    texts = [telegram.message(CHAT, m)["text"] for m in telegram.message_ids(CHAT)]  # type: ignore[index]
    assert texts == [head, tail]  # the first part went once
    assert [len(c.params["text"]) for c in telegram.calls("sendMessage")] == [4000, 200, 200]


async def test_a_permanent_refusal_fails_at_once_and_staff_are_told(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    message_id = await store(database, identity, "whatsapp", "hi", NOON)
    twilio.fail(status=400, code=21211)
    failed: list[FailedDelivery] = []
    outbox = sender(database, [twilio_channel], clock, failed=failed)
    await settle(outbox, clock)
    stored = await row(database, message_id)
    assert stored.status == "failed" and stored.error and "21211" in stored.error
    assert [f.reason for f in failed] == [stored.error]


async def test_a_pass_gives_staff_its_failures_in_one_report_whatever_the_other_lanes_do(
    database: Database,
    twilio: FakeTwilio,
    twilio_channel: TwilioChannel,
    telegram_channel: TelegramChannel,
) -> None:
    # Each lane reports after its own pass: Telegram's, resting between WhatsApp's
    # failures, must not post the first of them alone and leave the rest for a minute.
    clock = FakeTime()
    ids = []
    for n in range(3):
        identity = await beneficiary(database, Address("whatsapp", f"+9665{n:08d}"), NOON)
        ids.append(await store(database, identity, "whatsapp", f"W{n}", NOON))
    twilio.fail(3, status=400, code=21610)
    twilio.answer_after = 0.1
    reports: list[list[FailedDelivery]] = []
    outbox = sender(
        database, [twilio_channel, telegram_channel], clock, reports=reports, sends_at_once=1
    )

    async def first_failed() -> bool:
        return (await row(database, ids[0])).status == "failed"

    deadline = asyncio.get_running_loop().time() + 10
    while not await first_failed():
        assert asyncio.get_running_loop().time() < deadline, "the first message never failed"
        await asyncio.sleep(0.01)
    outbox.wake("telegram")  # its pass and report run while WhatsApp's pass goes on
    await settle(outbox, clock)
    assert [[f.message_id for f in report] for report in reports] == [ids]


async def test_retries_end_after_the_last_attempt(
    database: Database, twilio: FakeTwilio, twilio_channel: TwilioChannel
) -> None:
    clock = FakeTime()
    identity = await beneficiary(database, Address("whatsapp", BENEFICIARY), NOON)
    message_id = await store(database, identity, "whatsapp", "hi", NOON)
    twilio.fail(3, status=500)
    failed: list[FailedDelivery] = []
    outbox = sender(database, [twilio_channel], clock, failed=failed, max_attempts=3)
    await run(outbox, clock, lambda: bool(failed))
    stored = await row(database, message_id)
    assert (stored.status, stored.attempts) == ("failed", 3)
    assert len(twilio.calls) == 3 and twilio.messages == []


# --- the whole server ---


async def test_messages_pending_when_a_server_stopped_are_sent_by_the_next_one(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, twilio)
    stopped = Tawasul(settings, database)  # stored the replies, died before sending them
    hello = InboundMessage(
        Address("whatsapp", BENEFICIARY), utcnow(), "مرحبا", platform_message_id="SM" + "1" * 32
    )
    result = await stopped.engine.handle(hello)
    assert result.replies and twilio.calls == []
    restarted = Tawasul(settings, database)
    async with TestClient(TestServer(restarted.app())):
        await settled(database, "whatsapp")  # every stored reply sent, none twice
    assert len(twilio.messages) == len(result.replies)
    assert "١- طلب دعم جديد" in twilio.messages[0]["Body"]


async def test_a_failed_status_63016_sends_the_message_again_by_sms(
    database: Database, twilio: FakeTwilio, tmp_path: Path
) -> None:
    tawasul = Tawasul(make_settings(tmp_path, twilio), database)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, tawasul.database)
        await phone.send("مرحبا")
        async with database.session() as session:
            identity = await IdentityRepository(session).find(Address("whatsapp", BENEFICIARY))
        assert identity is not None and identity.id is not None
        reminder = await store(
            database, identity.id, "whatsapp", "تذكير", utcnow(), kind="proactive"
        )
        tawasul.outbox.wake()
        await eventually(lambda: twilio.bodies()[-1] == "تذكير", "the reminder")
        sid = twilio.calls[-1].sid
        assert sid is not None
        deadline = asyncio.get_running_loop().time() + 10
        while (await row(database, reminder)).platform_message_id != sid:  # stored as sent
            assert asyncio.get_running_loop().time() < deadline, "the reminder was never settled"
            await asyncio.sleep(0.02)
        failed = status_params(
            ACCOUNT_SID, sid, "failed", f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}", "63016"
        )
        assert await phone.post(failed, "/webhooks/whatsapp/status") == 200
        await eventually(lambda: twilio.messages[-1]["To"] == BENEFICIARY, "the SMS")
    assert twilio.messages[-1]["Body"] == "تذكير"
    assert twilio.bodies().count("تذكير") == 2


async def test_the_staff_group_hears_of_a_message_that_could_not_be_delivered(
    database: Database, twilio: FakeTwilio, telegram: FakeTelegram, tmp_path: Path
) -> None:
    staff_group = -1001234567890
    settings = make_settings(tmp_path, twilio, telegram, staff_chat_id=staff_group)
    tawasul = Tawasul(settings, database)
    twilio.fail(status=400, code=21211)
    async with TestClient(TestServer(tawasul.app())) as client:
        phone = WhatsApp(client, twilio, tawasul.database)
        hello = inbound_params(
            ACCOUNT_SID, f"whatsapp:{BENEFICIARY}", f"whatsapp:{CHARITY}", "مرحبا"
        )
        assert await phone.post(hello) == 200

        def posts() -> list[str]:
            return [
                str(call.params["text"])
                for call in telegram.calls("sendMessage")
                if call.params["chat_id"] == staff_group
            ]

        [post] = await eventually(posts, "the staff group's post")
    assert "تعذّر إيصال" in post and "21211" in post and "واتساب" in post
    assert BENEFICIARY not in post
