"""The conversation engine: one inbound message, one transaction of state, log and replies."""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import flows
from bot.appointments import AppointmentEffects, load_book
from bot.channels import capabilities_of
from bot.config import Settings
from bot.feedback import add_reply as add_feedback_reply
from bot.feedback import store as store_feedback
from bot.followups import FollowUpPlanner
from bot.knowledge import KnowledgeSource, repository
from flows.lifecycle import NEEDS_INFO, SUBMITTED, UNDER_REVIEW
from flows.types import (
    AddCaseNote,
    AddFeedbackReply,
    Address,
    AnswerVisit,
    BookAppointment,
    CancelAppointment,
    CloseHandoff,
    ConversationState,
    Effect,
    FlowSettings,
    InboundMessage,
    KeepPrivate,
    Lookup,
    OpenHandoff,
    OtherRequest,
    OutboundMessage,
    ReadMyData,
    RecordRating,
    RecordUnanswered,
    RequestCallback,
    SaveFeedback,
    SaveIntake,
    SetOptOut,
    Transition,
    Turn,
)
from handlers.base import Overloaded
from storage import prepared
from storage.db import Database
from storage.feedback import FeedbackRepository
from storage.models import Identity, MessageKind
from storage.models import id_of as _id
from storage.privacy import held_for
from storage.repositories import (
    ConversationRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    OutboxItem,
    Queued,
    RatingRepository,
    RequestRepository,
)

log = logging.getLogger(__name__)

# Rounds of effects a message may cause (a step resumed after its effects, and so on);
# a flow that wants more is a loop.
_MAX_RESUMES = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HandleResult:
    """What became of one inbound message: the replies stored in the outbox, or a duplicate."""

    replies: tuple[OutboxItem, ...] = ()
    duplicate: bool = False
    # For the staff side, after the commit: handoffs this message opened or left, and
    # the open handoff it was written into (to be relayed to staff).
    handoffs_opened: tuple[int, ...] = ()
    handoffs_left: tuple[int, ...] = ()
    relayed_to: int | None = None


@dataclass(slots=True)
class _StaffNews:
    opened: list[int]
    left: list[int]
    followups: list[str] = field(default_factory=list)  # keys whose jobs to bring in line
    private: bool = False  # the turn is about a complaint: its messages stay off case files


# Messages stored in one transaction at most; more waiting go in the next one.
BATCH = 64
# Turns are taken from the inbox in transactions of at most BATCH beneficiaries that end
# once this many seconds have passed, between two passes that store what arrived: a
# webhook waits for no more before its message is stored. Fewer, larger transactions cost
# less a message (the commit, and the outbox's pass after each).
INBOX_SECONDS = 0.025
# Arrivals this few, with no one waiting for a turn, are stored with their turns.
INBOX_TOGETHER = 8
# How often a transaction of turns lets webhooks in and stores what they brought, so
# that they wait for its commit and no other.
INBOX_LOOK_SECONDS = 0.010
# Turns one beneficiary may take in one of them: a flood goes round with everyone else.
INBOX_TURNS_EACH = 8
# What the inbound row of a message beyond its sender's limit says (the case timeline
# and the dashboard show it): stored, not run through the flows, not answered.
OVER_LIMIT = "over the sender's rate limit: stored, not answered"
# Poison messages remembered (by platform id), so a redelivery is handled alone.
_POISON_KEPT = 1000
# Senders' limits kept in memory before those at rest are forgotten.
_SENDERS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """Per-sender rate and the queue's bound (``inbound.*`` in the configuration)."""

    burst: int | None = None  # None: no per-sender limit (the console)
    per_minute: float = 30.0
    queue_limit: int = 1000
    queue_wait: float = 10.0  # seconds a webhook waits for room before it is refused
    retry_after: int = 5  # what a refused webhook is told

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundLimits:
        inbound = settings.inbound
        return cls(
            burst=inbound.per_sender_burst,
            per_minute=inbound.per_sender_per_minute,
            queue_limit=inbound.queue_limit,
            queue_wait=inbound.queue_wait.total_seconds(),
        )


@dataclass(slots=True)
class _Sender:
    """One sender's token bucket, on the engine's clock, and whether they were told."""

    level: float
    at: datetime
    told: bool = False


class SenderLimits:
    """Per-sender token buckets: ``burst`` at once, then ``per_minute``.

    A sender over the limit is told once; told again only after the bucket filled up
    again (they went quiet for ``burst`` messages' worth of time). In memory, per
    process: a restart forgives everyone, which is the kind side to err on.
    """

    def __init__(self, limits: InboundLimits) -> None:
        self._unlimited = limits.burst is None
        self._burst = float(limits.burst or 1)
        self._rate = limits.per_minute / 60.0
        self._senders: dict[Address, _Sender] = {}

    def admit(self, address: Address, now: datetime) -> bool:
        """Whether a new message of ``address`` may go through the flows (a token taken)."""
        if self._unlimited:
            return True
        sender = self._refill(address, now)
        if sender.level >= 1.0:
            sender.level -= 1.0
            return True
        return False

    def first_refusal(self, address: Address) -> bool:
        """Whether this refusal is the first of a flood (the sender is to be told)."""
        sender = self._senders.get(address)
        return sender is not None and not sender.told

    def told(self, address: Address, told: bool = True) -> None:
        sender = self._senders.get(address)
        if sender is not None:
            sender.told = told

    def _refill(self, address: Address, now: datetime) -> _Sender:
        sender = self._senders.get(address)
        if sender is None:
            if len(self._senders) >= _SENDERS_KEPT:
                self._forget_rested(now)
            sender = self._senders[address] = _Sender(self._burst, now)
            return sender
        elapsed = max(0.0, (now - sender.at).total_seconds())
        sender.level = min(self._burst, sender.level + elapsed * self._rate)
        sender.at = max(sender.at, now)
        if sender.level >= self._burst:
            sender.told = False  # quiet long enough: a new flood is told again
        return sender

    def _forget_rested(self, now: datetime) -> None:
        def rested(sender: _Sender) -> bool:
            elapsed = max(0.0, (now - sender.at).total_seconds())
            return sender.level + elapsed * self._rate >= self._burst

        self._senders = {a: s for a, s in self._senders.items() if not rested(s)}


@dataclass(slots=True)
class _Inboxed:
    """A beneficiary whose stored messages wait for their turn, up to id ``upto``, with
    those this process stored (the others are read back); one place in the inbox each."""

    identity_id: int
    upto: int
    messages: dict[int, InboundMessage] = field(default_factory=dict)
    claimed: int = 0  # the newest message its last turns took
    more: bool = False  # those turns took as many as one may: more of theirs may wait


@dataclass(slots=True)
class _Arrivals:
    """Webhooks' messages stored inside a transaction of turns, told once it commits."""

    stored: list[tuple[InboundMessage, asyncio.Future[bool]]] = field(default_factory=list)
    outcomes: list[_Arrived | None] = field(default_factory=list)
    # Those a savepoint could not keep: stored on their own after the commit.
    left: list[tuple[InboundMessage, asyncio.Future[bool]]] = field(default_factory=list)


# Called once a message's turn is committed, with what became of it (inbox mode).
AfterTurn = Callable[[InboundMessage, HandleResult], None]
# A message stored for its turn: its sender's identity and its id.
_Arrived = tuple[int, int]


@dataclass(slots=True)
class _Step:
    """One message handled inside a batch's transaction: its result and the follow-up
    keys whose jobs to bring in line once that transaction is committed."""

    result: HandleResult
    followups: list[str]


class ConversationEngine:
    """Routes inbound messages through the flows and stores everything they produce.

    One message is one unit of work: state, message log, effects and replies (into the
    outbox) are stored together or not at all, and ``handle`` returns once they are
    committed. Messages arriving together are handled one after another in a single
    transaction (a group commit: the commit, not the flow, is what costs); when any of
    them fails, the batch is rolled back and its messages are handled again one per
    transaction, the failing one stored with an apology. A platform's redelivery is
    recognised by its message id and handled once. Delivery happens after.

    Two ways to take a message. ``handle`` returns once its turn is committed (the
    webhook acknowledges the platform after the reply is stored). ``accept`` returns
    once the message itself is stored (``queued``), so the platform is acknowledged
    at once whatever the load; its turn follows from the inbox, in the order each
    beneficiary wrote, and ``after_turn`` is told of it. What a crash leaves in the
    inbox is taken again by ``recover`` (at start, then by any process once it has
    waited long enough): the claim that marks a message received is in its turn's
    transaction, so each is answered once, whichever process takes it.

    Limits (issue 11): a sender beyond ``limits`` (``SenderLimits``) has what they send
    stored, marked ``OVER_LIMIT`` and relayed into an open handoff, but not run through
    the flows; the first such message gets one polite answer (``limit.slow_down``).
    Messages waiting to be stored are bounded by ``limits.queue_limit``: beyond it
    ``handle`` and ``accept`` wait up to ``limits.queue_wait`` for room, then raise
    ``Overloaded`` (the webhook answers 503 with Retry-After). The inbox keeps as many
    beneficiaries in memory at most; the rest wait in the database. A message that
    fails even alone (a poison message) is stored with an apology and remembered: if its
    platform sends it again, it is handled alone, never again in a batch it could roll
    back.
    """

    def __init__(
        self,
        database: Database,
        settings: FlowSettings,
        clock: Callable[[], datetime] = utcnow,
        respond: Callable[[Turn], Transition] = flows.respond,
        *,
        followups: FollowUpPlanner | None = None,
        on_followups: Callable[[list[str]], None] = lambda _keys: None,
        batch: int = BATCH,
        knowledge: KnowledgeSource | None = None,
        limits: InboundLimits | None = None,
        after_turn: AfterTurn = lambda _message, _result: None,
        inbox_seconds: float = INBOX_SECONDS,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._respond = respond
        # Follow-ups are written in the message's transaction; their jobs after it.
        self._followups = followups
        self._on_followups = on_followups
        self._batch = batch
        self._knowledge = knowledge if knowledge is not None else KnowledgeSource()
        self._appointments = AppointmentEffects(settings, followups)
        self._waiting: list[tuple[InboundMessage, asyncio.Future[HandleResult]]] = []
        # Inbox mode: messages to store, then the turns of those stored.
        self._arriving: list[tuple[InboundMessage, asyncio.Future[bool]]] = []
        self._inbox: deque[_Inboxed] = deque()
        self._inboxed: dict[int, _Inboxed] = {}  # the inbox's entries, by identity
        self._overflow = False  # messages stored while the inbox was full wait in the database
        self._after_turn = after_turn
        self._inbox_seconds = inbox_seconds
        self._idle = asyncio.Event()  # set while nothing is waiting
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._limits = limits or InboundLimits()
        self._senders = SenderLimits(self._limits)
        self._room = asyncio.Event()  # set whenever the queue has room again
        self._poison: dict[tuple[str, str], None] = {}  # insertion-ordered, bounded
        # Senders told to slow down in the transaction under way: untold if it fails.
        self._telling: list[Address] = []

    async def handle(self, message: InboundMessage) -> HandleResult:
        """Store ``message`` and everything it leads to; what became of it.

        A caller that stops waiting (a webhook whose client went away) does not stop
        the message from being handled.
        """
        await self._wait_for_room()
        future: asyncio.Future[HandleResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        self._start_worker()
        return await future

    async def accept(self, message: InboundMessage) -> bool:
        """Store ``message`` for its turn, which follows (``after_turn`` is told); returns
        once it is stored: False when the platform had sent it before.

        Raises ``Overloaded`` when the inbox stays full (the platform sends it again).
        """
        await self._wait_for_room()
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._arriving.append((message, future))
        self._start_worker()
        return await future

    async def recover(self, older_than: timedelta = timedelta(0), limit: int = 1000) -> int:
        """Take into the inbox the messages stored more than ``older_than`` ago whose
        turn never came (a process stopped first); how many beneficiaries have some."""
        cutoff = self._clock() - older_than
        async with self._db.session() as session:
            waiting = await MessageRepository(session).queued_before(cutoff, limit)
        # Those already in this inbox (a backlog) wait for their place in it.
        taken = [(i, upto) for i, upto in waiting if i not in self._inboxed]
        for identity_id, upto in taken:
            self._inbox_append(identity_id, upto)
        if taken:
            log.info("%d beneficiaries' stored messages taken for their turn", len(taken))
            self._start_worker()
        return len(taken)

    async def drain(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for every message taken to have had its turn
        (shutdown); whether it did. What is left stays stored for ``recover``."""
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _inbox_append(
        self, identity_id: int, upto: int, message: InboundMessage | None = None
    ) -> None:
        """A beneficiary's stored message(s) up to ``upto`` wait for their turn: at the
        back of the inbox, or in the place the beneficiary already has there."""
        entry = self._inboxed.get(identity_id)
        if entry is None:
            entry = self._inboxed[identity_id] = _Inboxed(identity_id, upto)
            self._inbox.append(entry)
        entry.upto = max(entry.upto, upto)
        if message is not None:
            entry.messages[upto] = message

    def _pending(self) -> int:
        """What waits to be stored: the bound on webhooks (the inbox has its own)."""
        return len(self._waiting) + len(self._arriving)

    def _start_worker(self) -> None:
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="conversation-engine")

    async def _wait_for_room(self) -> None:
        """Back-pressure: a full queue makes the caller wait (bounded), never grow."""
        if self._pending() < self._limits.queue_limit:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limits.queue_wait
        while self._pending() >= self._limits.queue_limit:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("the engine's queue is full: a message refused for now")
                raise Overloaded(self._limits.retry_after)
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), remaining)
            except TimeoutError:
                continue

    async def _work(self) -> None:
        while self._pending() or self._inbox or self._overflow:
            # What arrived is stored first: its webhook waits for no one's turn. With no
            # one waiting, a few arrivals take their turns in the same transaction (one
            # commit, one outbox pass), as cheap as it gets and still a short wait.
            quiet = not (self._inbox or self._overflow)
            if self._arriving and quiet and len(self._arriving) <= INBOX_TOGETHER:
                await self._store_and_answer()
            if self._arriving:
                await self._store(self._take_arrivals())
            if self._inbox:
                await self._run_inbox()
            if self._overflow and len(self._inbox) < self._limits.queue_limit // 2:
                # Stored beyond the inbox's room: taken from the database, oldest first.
                self._overflow = False
                room = self._limits.queue_limit - len(self._inbox)
                await self.recover(timedelta(0), limit=room)
            if self._waiting:
                await self._run_waiting()
            self._room.set()
            await asyncio.sleep(0)  # webhooks come in between two passes
        self._idle.set()

    async def _run_waiting(self) -> None:
        batch = self._waiting[: self._batch]
        del self._waiting[: len(batch)]
        try:
            outcomes = await self._handle_batch([message for message, _future in batch])
        except Exception as error:  # a bug here: every waiting webhook must still answer
            log.exception("the conversation engine failed on a batch")
            outcomes = [error] * len(batch)
        _settle(batch, outcomes)

    async def _store_and_answer(self) -> None:
        """What arrived, stored and taken from the inbox in one transaction (the claim
        still takes any older message of the sender first), then ``after_turn``; when
        that fails, stored as usual, their turns to follow."""
        batch = self._take_arrivals()
        self._telling = []
        try:
            async with self._db.session() as session, session.begin():
                arrived = [await self._arrive(session, message) for message, _ in batch]
                entries = [
                    _Inboxed(*outcome, {outcome[1]: message})
                    for (message, _future), outcome in zip(batch, arrived, strict=True)
                    if outcome is not None
                ]
                done = [turn for entry in entries for turn in await self._turns(session, entry)]
        except Exception:
            self._untell()
            log.info("%d arrivals and their turns failed: stored first", len(batch))
            await self._store(batch)
            return
        _settle(batch, [outcome is not None for outcome in arrived])
        self._after(entries, done)

    def _take_arrivals(self) -> list[tuple[InboundMessage, asyncio.Future[bool]]]:
        batch = self._arriving[: self._batch]
        del self._arriving[: len(batch)]
        # The same lock order as every other transaction (see _handle_batch).
        batch.sort(key=lambda pair: (pair[0].address.channel, pair[0].address.user_id))
        return batch

    async def _store(self, batch: list[tuple[InboundMessage, asyncio.Future[bool]]]) -> None:
        """Store what arrived (one transaction, one by one if it fails)."""
        outcomes: list[_Arrived | BaseException | None] = []
        try:
            async with self._db.session() as session, session.begin():
                outcomes = [await self._arrive(session, message) for message, _ in batch]
        except Exception:
            outcomes = [await self._arrive_alone(message) for message, _ in batch]
        self._stored(batch, outcomes)

    def _stored(
        self,
        batch: list[tuple[InboundMessage, asyncio.Future[bool]]],
        outcomes: Sequence[_Arrived | BaseException | None],
    ) -> None:
        """Stored (committed): into the inbox while it has room (the rest is taken from
        the database once it has), and each webhook told."""
        for (message, _future), outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, tuple):
                continue
            if len(self._inbox) < self._limits.queue_limit or outcome[0] in self._inboxed:
                self._inbox_append(*outcome, message)
            else:
                self._overflow = True
        _settle(batch, [o if isinstance(o, BaseException) else o is not None for o in outcomes])

    async def _arrive(self, session: AsyncSession, message: InboundMessage) -> _Arrived | None:
        """``message`` stored for its turn: its sender's identity and its id; None when
        the platform had sent it before."""
        identity_id = await IdentityRepository(session).touch(message.address, self._clock())
        stored = await MessageRepository(session).log_inbound(identity_id, message, queued=True)
        return None if stored is None else (identity_id, stored)

    async def _arrive_alone(self, message: InboundMessage) -> _Arrived | BaseException | None:
        for attempt in (message, _storable(message)):
            try:
                async with self._db.session() as session, session.begin():
                    return await self._arrive(session, attempt)
            except Exception as error:  # the database is away: the webhook fails, retried
                failure: BaseException = error
        return failure

    async def _run_inbox(self) -> None:
        """Turns from the inbox in one transaction (else each alone, a failing one
        answered with an apology), then ``after_turn``. The transaction ends after about
        ``INBOX_SECONDS`` of turns; the beneficiaries it did not reach keep their place."""
        batch = [self._inbox.popleft() for _ in range(min(self._batch, len(self._inbox)))]
        for entry in batch:
            del self._inboxed[entry.identity_id]
        # In the inbox's order, not sorted by identity as other batches are: a
        # transaction cut short by its time would otherwise leave the same beneficiaries
        # out every time. Two processes locking two beneficiaries in opposite orders is a
        # deadlock PostgreSQL breaks; the batch is then taken one by one.
        done: list[tuple[InboundMessage, _Step]] | None = None
        arrivals = _Arrivals()
        if len(batch) > 1:
            self._telling = []
            try:
                async with self._db.session() as session, session.begin():
                    # From when the database is this transaction's (it may wait for it).
                    started = time.perf_counter()
                    deadline, look = started + self._inbox_seconds, started + INBOX_LOOK_SECONDS
                    done = []
                    reached = 0
                    for entry in batch:
                        reached += 1
                        done += await self._turns(session, entry)
                        if (now := time.perf_counter()) > deadline:
                            break
                        if now > look:
                            # The others' time while webhooks come in is not the turns'.
                            deadline += await self._store_within(session, arrivals)
                            look = time.perf_counter() + INBOX_LOOK_SECONDS
            except Exception:
                self._untell()
                done = None
                log.info("a batch of %d turns failed: taking them one by one", len(batch))
            else:
                self._inbox_return(batch[reached:])
                del batch[reached:]
        if done is None:  # rolled back with the turns
            arrivals.left[:0], arrivals.stored, arrivals.outcomes = arrivals.stored, [], []
        self._stored(arrivals.stored, arrivals.outcomes)
        if arrivals.left:
            await self._store(arrivals.left)
        if done is None:
            done = [turn for entry in batch for turn in await self._turns_alone(entry)]
        self._after(batch, done)

    async def _store_within(self, session: AsyncSession, arrivals: _Arrivals) -> float:
        """Webhooks let in (the loop runs a few rounds) and what they brought stored in
        the turns' transaction, under a savepoint: a message the database refuses costs
        the turns nothing (it is stored on its own after the commit)."""
        away = time.perf_counter()
        for _round in range(3):  # the socket read, the handler's start, its call to accept
            await asyncio.sleep(0)
        away = time.perf_counter() - away
        if not self._arriving or arrivals.left:
            return away
        batch = self._take_arrivals()
        try:
            async with prepared.savepoint(session):
                outcomes = [await self._arrive(session, m) for m, _ in batch]
        except Exception:
            arrivals.left += batch
        else:
            arrivals.stored += batch
            arrivals.outcomes += outcomes
        return away

    def _after(self, entries: list[_Inboxed], done: list[tuple[InboundMessage, _Step]]) -> None:
        """Committed: the rest of a flood back in the inbox (after everyone else), the
        follow-ups' jobs, ``after_turn``."""
        for entry in entries:
            if entry.more:
                self._inbox_append(entry.identity_id, entry.upto)
                left = {n: m for n, m in entry.messages.items() if n > entry.claimed}
                self._inboxed[entry.identity_id].messages.update(left)
        self._committed([step for _message, step in done])
        for message, step in done:
            try:
                self._after_turn(message, step.result)
            except Exception:
                log.exception("after a turn on %s", message.address.channel)

    def _inbox_return(self, entries: list[_Inboxed]) -> None:
        """Entries a transaction did not reach: back at the front, in their order."""
        for entry in reversed(entries):
            merged = self._inboxed.get(entry.identity_id)
            if merged is not None:  # taken in again meanwhile (``recover``)
                self._inbox.remove(merged)
                entry.upto = max(entry.upto, merged.upto)
                entry.messages.update(merged.messages)
            self._inbox.appendleft(entry)
            self._inboxed[entry.identity_id] = entry

    async def _claim(
        self, session: AsyncSession, entry: _Inboxed
    ) -> tuple[Identity | None, list[Queued]]:
        """The beneficiary locked and their oldest waiting messages claimed (at most
        ``INBOX_TURNS_EACH``); nothing when they were erased or another took them."""
        identity = await IdentityRepository(session).lock(entry.identity_id)
        if identity is None:
            return None, []  # erased meanwhile, with what it sent
        taken = await MessageRepository(session).claim_queued(
            entry.identity_id, identity.user_id, entry.upto, INBOX_TURNS_EACH, entry.messages
        )
        entry.more = len(taken) == INBOX_TURNS_EACH
        entry.claimed = taken[-1].id if taken else entry.upto
        return identity, taken

    async def _turns(
        self, session: AsyncSession, entry: _Inboxed
    ) -> list[tuple[InboundMessage, _Step]]:
        identity, taken = await self._claim(session, entry)
        if identity is None:
            return []
        now = self._clock()
        return [
            (q.message, await self._turn(session, identity, q.id, q.message, now)) for q in taken
        ]

    async def _turns_alone(self, entry: _Inboxed) -> list[tuple[InboundMessage, _Step]]:
        self._telling = []
        try:
            async with self._db.session() as session, session.begin():
                return await self._turns(session, entry)
        except Exception:
            self._untell()
            log.exception("could not take a turn from the inbox")
        try:
            return await self._apologise_inboxed(entry)
        except Exception:  # the database is away: they stay stored for ``recover``
            log.exception("a turn from the inbox left for later")
            return []

    async def _apologise_inboxed(self, entry: _Inboxed) -> list[tuple[InboundMessage, _Step]]:
        """A turn that fails (a fault in a flow): its messages are marked received and
        answered with an apology, nothing else changes."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            _identity, taken = await self._claim(session, entry)
            if not taken:
                return []
            message = taken[-1].message
            outbox = await self._apology(session, entry.identity_id, message.address, now)
        return [(message, _Step(HandleResult(replies=outbox), []))]

    async def _handle_batch(
        self, messages: list[InboundMessage]
    ) -> list[HandleResult | BaseException]:
        # A message that failed before is handled alone, after the others' batch.
        alone = [m for m in messages if _poison_key(m) in self._poison]
        # Beneficiaries' locks taken in one order in every process (each one's messages
        # keep theirs: the sort is stable), so two batches never wait for each other.
        together = sorted(
            (m for m in messages if _poison_key(m) not in self._poison),
            key=lambda m: (m.address.channel, m.address.user_id),
        )
        results: dict[int, HandleResult | BaseException] = {}
        if len(together) > 1:
            self._telling = []
            try:
                async with self._db.session() as session, session.begin():
                    steps = [await self._step(session, message) for message in together]
            except Exception:
                self._untell()
                log.info("a batch of %d messages failed: handling them one by one", len(together))
            else:
                self._committed(steps)
                results = {id(m): step.result for m, step in zip(together, steps, strict=True)}
                together = []
        for message in [*together, *alone]:
            try:
                results[id(message)] = await self._handle_alone(message)
            except Exception as error:  # the database is away: the webhook fails, retried
                results[id(message)] = error
        return [results[id(message)] for message in messages]

    async def _handle_alone(self, message: InboundMessage) -> HandleResult:
        self._telling = []
        try:
            async with self._db.session() as session, session.begin():
                step = await self._step(session, message)
        except Exception:
            self._untell()
            # A fault in a flow or an effect: keep what the beneficiary sent and
            # apologise, rather than lose the message or leave half a change. Remember
            # it: if it comes again (its webhook failed), it must not join a batch.
            log.exception("could not handle a message on %s", message.address.channel)
            self._remember_poison(message)
            return await self._store_with_apology(message)
        self._committed([step])
        return step.result

    def _committed(self, steps: list[_Step]) -> None:
        self._notify([key for step in steps for key in step.followups])

    def _untell(self) -> None:
        """The transaction that told them failed: they are to be told again."""
        for address in self._telling:
            self._senders.told(address, False)
        self._telling = []

    def _remember_poison(self, message: InboundMessage) -> None:
        key = _poison_key(message)
        if key is None:
            return
        self._poison[key] = None
        if len(self._poison) > _POISON_KEPT:
            del self._poison[next(iter(self._poison))]

    def _notify(self, keys: list[str]) -> None:
        if keys:
            self._on_followups(keys)

    async def _step(self, session: AsyncSession, message: InboundMessage) -> _Step:
        now = self._clock()
        identity = await IdentityRepository(session).get_or_create(message.address, now)
        inbound_id = await MessageRepository(session).log_inbound(_id(identity), message)
        if inbound_id is None:
            # Stored before: only the identity's "last heard from" moved.
            return _Step(HandleResult(duplicate=True), [])
        return await self._turn(session, identity, inbound_id, message, now)

    async def _turn(
        self,
        session: AsyncSession,
        identity: Identity,
        inbound_id: int,
        message: InboundMessage,
        now: datetime,
    ) -> _Step:
        """The stored message ``inbound_id`` through the flows, and what it leads to."""
        identity_id = _id(identity)
        channel = message.address.channel
        messages = MessageRepository(session)
        conversations = ConversationRepository(session)
        state = await conversations.load(identity_id)
        if not self._senders.admit(message.address, now):
            return await self._over_limit(session, identity_id, inbound_id, message, state, now)
        requests = (
            await RequestRepository(session).summaries_for(identity)
            if flows.needs_requests(state, message)
            else ()
        )
        carries = capabilities_of(channel)  # what the sender's channel can carry
        lookup = Lookup(
            requests=tuple(requests),
            sender_phone=message.address.user_id if carries.phone_numbers else None,
            media=carries.media,
            others=await self._others(session, identity, state, message),
            opted_out=identity.opted_out,
            knowledge=await self._knowledge.index(session, now)
            if flows.needs_knowledge(state, message)
            else None,
            appointments=await load_book(session, identity_id, self._settings, now)
            if flows.needs_appointments(state, message)
            else None,
            applicants=tuple(await RequestRepository(session).applicants_for(identity))
            if flows.needs_applicants(state, message)
            else (),
        )
        turn = Turn(message, state, now, lookup, self._settings)
        transition = self._respond(turn)
        replies = list(transition.replies)
        news = _StaffNews([], [])
        for rounds in range(1, _MAX_RESUMES + 1):
            results = await self._perform(session, identity, message, transition.effects, now, news)
            if not transition.resume:
                break
            if rounds == _MAX_RESUMES:
                # Its next step would go unperformed: a loop in a flow, never dropped quietly.
                # Raised, the message is stored with an apology and nothing else changes.
                raise RuntimeError(f"a flow still resumes after {rounds} rounds")
            resumed = replace(transition.state, data={**transition.state.data, **results})
            transition = self._respond(replace(turn, state=resumed))
            replies.extend(transition.replies)
        relayed_to = None
        if state.flow == transition.state.flow == "handoff":
            handoff = await HandoffRepository(session).get_open(identity_id)
            relayed_to = handoff.id if handoff else None
        await conversations.save(identity_id, transition.state, now, language_was=identity.language)
        if self._followups is not None:
            news.followups += await self._followups.after_turn(
                session, identity_id, state, transition.state, now
            )
        outbox = await self._enqueue(messages, identity_id, message.address, replies, now)
        if news.private:
            kept = [inbound_id, *(item.id for item in outbox)]
            await FeedbackRepository(session).keep_private(kept, now)
        result = HandleResult(
            replies=outbox,
            handoffs_opened=tuple(news.opened),
            handoffs_left=tuple(news.left),
            relayed_to=relayed_to,
        )
        return _Step(result, news.followups)

    async def _over_limit(
        self,
        session: AsyncSession,
        identity_id: int,
        inbound_id: int,
        message: InboundMessage,
        state: ConversationState,
        now: datetime,
    ) -> _Step:
        """A message beyond its sender's limit: stored and marked, shown to staff in an
        open handoff, not run through the flows; the first of a flood is answered once."""
        messages = MessageRepository(session)
        await messages.mark_over_limit(inbound_id, OVER_LIMIT)
        relayed_to = None
        if state.flow == "handoff":
            handoff = await HandoffRepository(session).get_open(identity_id)
            relayed_to = handoff.id if handoff else None
        replies: list[OutboundMessage] = []
        if self._senders.first_refusal(message.address):
            text = flows.text(state.language, "limit.slow_down")
            replies.append(OutboundMessage(text, state.language))
            self._senders.told(message.address)
            self._telling.append(message.address)
            log.info("a sender on %s is over the limit: asked to wait", message.address.channel)
        outbox = await self._enqueue(messages, identity_id, message.address, replies, now)
        return _Step(HandleResult(replies=outbox, relayed_to=relayed_to), [])

    async def _others(
        self,
        session: AsyncSession,
        identity: Identity,
        state: ConversationState,
        message: InboundMessage,
    ) -> tuple[OtherRequest, ...]:
        """Requests filed elsewhere that this message asks about (rare: a query only then)."""
        found = []
        for number in flows.references_asked(state, message):
            other = await RequestRepository(session).filed_elsewhere(identity, number)
            if other is not None:
                found.append(other)
        return tuple(found)

    async def _perform(
        self,
        session: AsyncSession,
        sender: Identity,
        message: InboundMessage,
        effects: tuple[Effect, ...],
        now: datetime,
        news: _StaffNews,
    ) -> Mapping[str, Any]:
        """Carry out ``effects``; what they report for the flow to resume with. Those
        that read more of the identity than its id use the session's object for it
        (``full``): the row the turn began with may be out of date (a request filed
        changes whom it speaks for)."""
        results: dict[str, Any] = {}
        channel = message.address.channel
        identity_id = _id(sender)
        full = IdentityRepository(session).full
        for effect in effects:
            match effect:
                case SaveIntake():
                    request = await RequestRepository(session).create(
                        sender,
                        effect,
                        channel=channel,
                        signed_message_id=message.platform_message_id,
                        status=SUBMITTED,
                        now=now,
                    )
                    results["reference"] = request.reference
                    log.info("support request %s filed on %s", request.reference, channel)
                    if self._followups is not None:
                        news.followups += await self._followups.request_filed(session, request, now)
                case ReadMyData():
                    results["my_data"] = await held_for(session, await full(sender))
                case RecordRating():
                    # The row as this transaction has it (a request filed changes it).
                    current = await IdentityRepository(session).lock(identity_id) or sender
                    rating = await RatingRepository(session).add(
                        current, effect, channel=channel, now=now
                    )
                    if self._followups is not None:
                        news.followups += await self._followups.rating_recorded(
                            session, rating, now
                        )
                case OpenHandoff():
                    handoff = await HandoffRepository(session).open(identity_id, effect, now)
                    news.opened.append(_id(handoff))
                    log.info("handoff opened on %s (%s)", channel, effect.reason)
                    if self._followups is not None:
                        news.followups += await self._followups.handoff_opened(
                            session, handoff, now
                        )
                case RequestCallback():
                    callback = OpenHandoff("low_rating")
                    handoff = await HandoffRepository(session).open(identity_id, callback, now)
                    news.opened.append(_id(handoff))
                    if self._followups is not None:
                        news.followups += await self._followups.handoff_opened(
                            session, handoff, now
                        )
                case CloseHandoff():
                    handoffs = HandoffRepository(session)
                    left = await handoffs.get_open(identity_id)
                    if left is not None:
                        await handoffs.close(_id(left), now)
                        news.left.append(_id(left))
                        if self._followups is not None:
                            news.followups += await self._followups.handoff_settled(
                                session, _id(left), now
                            )
                case AddCaseNote():
                    await self._answer_question(session, identity_id, effect, now, news)
                case RecordUnanswered():
                    await repository(session).record_unanswered(
                        effect.question, effect.language, now
                    )
                case SaveFeedback():
                    feedback = await store_feedback(
                        session, await full(sender), effect, channel=channel, now=now
                    )
                    results["feedback_reference"] = feedback.reference
                    if self._followups is not None:
                        news.followups += await self._followups.feedback_received(
                            session, feedback, now
                        )
                case AddFeedbackReply():
                    replied = await add_feedback_reply(session, await full(sender), effect, now)
                    if replied is not None and self._followups is not None:
                        news.followups += await self._followups.feedback_replied(
                            session, replied, now
                        )
                case KeepPrivate():
                    news.private = True
                case BookAppointment() | CancelAppointment() | AnswerVisit():
                    results |= await self._appointments.perform(
                        session,
                        await full(sender),
                        effect,
                        channel=channel,
                        now=now,
                        keys=news.followups,
                    )
                case SetOptOut():
                    await IdentityRepository(session).set_opted_out(identity_id, effect.opted_out)
                    state_word = "stopped" if effect.opted_out else "resumed"
                    log.info("proactive messages %s on %s", state_word, channel)
        return results

    async def _answer_question(
        self,
        session: AsyncSession,
        identity_id: int,
        answer: AddCaseNote,
        now: datetime,
        news: _StaffNews,
    ) -> None:
        """The beneficiary answered staff's question: into the case, and back to review."""
        requests = RequestRepository(session)
        request = await requests.get_by_reference(answer.reference)
        if request is None or request.identity_id != identity_id:
            return  # only the identity that filed it may add to its case
        await requests.add_note(request, author="beneficiary", text=answer.text, now=now)
        for media in answer.media:
            await requests.add_document(request, media, now=now)
        if request.status == NEEDS_INFO:
            await requests.change_status(
                request, UNDER_REVIEW, now=now, by=None, note="answered by the beneficiary"
            )
            if self._followups is not None:
                news.followups += await self._followups.status_changed(
                    session, request, NEEDS_INFO, now
                )

    async def _enqueue(
        self,
        messages: MessageRepository,
        identity_id: int,
        address: Address,
        replies: list[OutboundMessage],
        now: datetime,
    ) -> tuple[OutboxItem, ...]:
        items = []
        for reply in replies:
            message_id = await messages.enqueue(identity_id, address.channel, reply, now)
            items.append(OutboxItem(message_id, identity_id, address, reply, MessageKind.REPLY, 0))
        return tuple(items)

    async def _store_with_apology(self, message: InboundMessage) -> HandleResult:
        try:
            return await self._store_apologising(message)
        except Exception:
            # What it carries cannot be stored as it is (a lone surrogate, say): keep a
            # copy that can be, rather than refuse it until the platform gives up.
            log.warning("a message on %s stored in a cleaned form", message.address.channel)
            return await self._store_apologising(_storable(message))

    async def _store_apologising(self, message: InboundMessage) -> HandleResult:
        now = self._clock()
        async with self._db.session() as session, session.begin():
            identity_id = await IdentityRepository(session).touch(message.address, now)
            if await MessageRepository(session).log_inbound(identity_id, message) is None:
                return HandleResult(duplicate=True)
            outbox = await self._apology(session, identity_id, message.address, now)
        return HandleResult(replies=outbox)

    async def _apology(
        self, session: AsyncSession, identity_id: int, address: Address, now: datetime
    ) -> tuple[OutboxItem, ...]:
        """The generic apology, in the conversation's language, into the outbox."""
        language = (await ConversationRepository(session).load(identity_id)).language
        apology = OutboundMessage(flows.text(language, "error.generic"), language)
        messages = MessageRepository(session)
        return await self._enqueue(messages, identity_id, address, [apology], now)


def _settle(batch: list[tuple[InboundMessage, asyncio.Future[Any]]], outcomes: list[Any]) -> None:
    """Each waiting caller its outcome (an exception raised to it), unless it left."""
    for (_message, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _storable(message: InboundMessage) -> InboundMessage:
    """``message`` with what no database takes replaced: lone surrogates, NUL."""

    def clean(value: str) -> str:
        value = value.encode("utf-8", "replace").decode("utf-8")
        return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc")

    payload = clean(message.payload) if message.payload is not None else None
    return replace(message, text=clean(message.text), payload=payload)


def _poison_key(message: InboundMessage) -> tuple[str, str] | None:
    if message.platform_message_id is None:
        return None
    return (message.address.channel, message.platform_message_id)
