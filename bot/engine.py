"""The conversation engine: one inbound message, one transaction of state, log and replies."""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import flows
from bot.followups import FollowUpPlanner
from bot.knowledge import KnowledgeSource, repository
from flows.lifecycle import NEEDS_INFO, UNDER_REVIEW
from flows.types import (
    AddCaseNote,
    Address,
    CloseHandoff,
    ConversationState,
    Effect,
    FlowSettings,
    InboundMessage,
    Lookup,
    OpenHandoff,
    OtherRequest,
    OutboundMessage,
    RecordRating,
    RecordUnanswered,
    RequestCallback,
    SaveIntake,
    SetOptOut,
    Transition,
    Turn,
)
from storage.db import Database
from storage.models import ChannelIdentity, MessageKind
from storage.models import id_of as _id
from storage.repositories import (
    ConversationRepository,
    HandoffRepository,
    IdentityRepository,
    MessageRepository,
    OutboxItem,
    RatingRepository,
    RequestRepository,
)

log = logging.getLogger(__name__)

# Rounds of effects a message may cause (a step resumed after its effects, and so on);
# a flow that wants more is a loop.
_MAX_RESUMES = 3
_PHONE_CHANNELS = frozenset({"whatsapp", "sms", "whatsapp_cloud"})


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


# Messages stored in one transaction at most; more waiting go in the next one.
BATCH = 64


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
        self._waiting: list[tuple[InboundMessage, asyncio.Future[HandleResult]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def handle(self, message: InboundMessage) -> HandleResult:
        """Store ``message`` and everything it leads to; what became of it.

        A caller that stops waiting (a webhook whose client went away) does not stop
        the message from being handled.
        """
        future: asyncio.Future[HandleResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((_without_control_characters(message), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="conversation-engine")
        return await future

    async def _work(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._batch]
            del self._waiting[: len(batch)]
            try:
                outcomes = await self._handle_batch([message for message, _future in batch])
            except Exception as error:  # a bug here: every waiting webhook must still answer
                log.exception("the conversation engine failed on a batch")
                outcomes = [error] * len(batch)
            for (_message, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _handle_batch(
        self, messages: list[InboundMessage]
    ) -> list[HandleResult | BaseException]:
        if len(messages) > 1:
            try:
                async with self._db.session() as session, session.begin():
                    steps = [await self._step(session, message) for message in messages]
            except Exception:
                log.info("a batch of %d messages failed: handling them one by one", len(messages))
            else:
                self._notify([key for step in steps for key in step.followups])
                return [step.result for step in steps]
        outcomes: list[HandleResult | BaseException] = []
        for message in messages:
            try:
                outcomes.append(await self._handle_alone(message))
            except Exception as error:  # the database is away: the webhook fails, retried
                outcomes.append(error)
        return outcomes

    async def _handle_alone(self, message: InboundMessage) -> HandleResult:
        try:
            async with self._db.session() as session, session.begin():
                step = await self._step(session, message)
        except Exception:
            # A fault in a flow or an effect: keep what the beneficiary sent and
            # apologise, rather than lose the message or leave half a change.
            log.exception("could not handle a message on %s", message.address.channel)
            return await self._store_with_apology(message)
        self._notify(step.followups)
        return step.result

    def _notify(self, keys: list[str]) -> None:
        if keys:
            self._on_followups(keys)

    async def _step(self, session: AsyncSession, message: InboundMessage) -> _Step:
        now = self._clock()
        channel = message.address.channel
        messages = MessageRepository(session)
        identity = await IdentityRepository(session).get_or_create(message.address, now)
        identity_id = _id(identity)
        if await messages.log_inbound(identity_id, message) is None:
            # Stored before: only the identity's "last heard from" moved.
            return _Step(HandleResult(duplicate=True), [])
        conversations = ConversationRepository(session)
        state = await conversations.load(identity_id)
        requests = (
            await RequestRepository(session).summaries_for(identity)
            if flows.needs_requests(state)
            else ()
        )
        lookup = Lookup(
            requests=tuple(requests),
            sender_phone=message.address.user_id if channel in _PHONE_CHANNELS else None,
            others=await self._others(session, identity, state, message),
            opted_out=identity.opted_out,
            knowledge=await self._knowledge.index(session, now)
            if flows.needs_knowledge(state, message)
            else None,
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
        await conversations.save(identity_id, transition.state, now)
        if self._followups is not None:
            news.followups += await self._followups.after_turn(
                session, identity_id, state, transition.state, now
            )
        outbox = await self._enqueue(messages, identity_id, message.address, replies, now)
        result = HandleResult(
            replies=outbox,
            handoffs_opened=tuple(news.opened),
            handoffs_left=tuple(news.left),
            relayed_to=relayed_to,
        )
        return _Step(result, news.followups)

    async def _others(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
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
        identity: ChannelIdentity,
        message: InboundMessage,
        effects: tuple[Effect, ...],
        now: datetime,
        news: _StaffNews,
    ) -> Mapping[str, Any]:
        results: dict[str, Any] = {}
        channel = message.address.channel
        for effect in effects:
            match effect:
                case SaveIntake():
                    request = await RequestRepository(session).create(
                        identity,
                        effect,
                        channel=channel,
                        signed_message_id=message.platform_message_id,
                        now=now,
                    )
                    results["reference"] = request.reference
                    log.info("support request %s filed on %s", request.reference, channel)
                    if self._followups is not None:
                        news.followups += await self._followups.request_filed(session, request, now)
                case RecordRating():
                    rating = await RatingRepository(session).add(
                        identity, effect, channel=channel, now=now
                    )
                    if self._followups is not None:
                        news.followups += await self._followups.rating_recorded(
                            session, rating, now
                        )
                case OpenHandoff():
                    handoff = await HandoffRepository(session).open(_id(identity), effect, now)
                    news.opened.append(_id(handoff))
                    log.info("handoff opened on %s (%s)", channel, effect.reason)
                    if self._followups is not None:
                        news.followups += await self._followups.handoff_opened(
                            session, handoff, now
                        )
                case RequestCallback():
                    callback = OpenHandoff("low_rating")
                    handoff = await HandoffRepository(session).open(_id(identity), callback, now)
                    news.opened.append(_id(handoff))
                    if self._followups is not None:
                        news.followups += await self._followups.handoff_opened(
                            session, handoff, now
                        )
                case CloseHandoff():
                    handoffs = HandoffRepository(session)
                    left = await handoffs.get_open(_id(identity))
                    if left is not None:
                        await handoffs.close(_id(left), now)
                        news.left.append(_id(left))
                        if self._followups is not None:
                            news.followups += await self._followups.handoff_settled(
                                session, _id(left), now
                            )
                case AddCaseNote():
                    await self._answer_question(session, identity, message, effect, now, news)
                case RecordUnanswered():
                    await repository(session).record_unanswered(
                        effect.question, effect.language, now
                    )
                case SetOptOut():
                    await IdentityRepository(session).set_opted_out(_id(identity), effect.opted_out)
                    state_word = "stopped" if effect.opted_out else "resumed"
                    log.info("proactive messages %s on %s", state_word, channel)
        return results

    async def _answer_question(
        self,
        session: AsyncSession,
        identity: ChannelIdentity,
        message: InboundMessage,
        answer: AddCaseNote,
        now: datetime,
        news: _StaffNews,
    ) -> None:
        """The beneficiary answered staff's question: into the case, and back to review."""
        requests = RequestRepository(session)
        request = await requests.get_by_reference(answer.reference)
        if request is None or request.identity_id != identity.id:
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
        now = self._clock()
        async with self._db.session() as session, session.begin():
            messages = MessageRepository(session)
            identity = await IdentityRepository(session).get_or_create(message.address, now)
            identity_id = _id(identity)
            if await messages.log_inbound(identity_id, message) is None:
                return HandleResult(duplicate=True)
            language = (await ConversationRepository(session).load(identity_id)).language
            apology = OutboundMessage(flows.text(language, "error.generic"), language)
            outbox = await self._enqueue(messages, identity_id, message.address, [apology], now)
        return HandleResult(replies=outbox)


def _without_control_characters(message: InboundMessage) -> InboundMessage:
    # NUL and other control characters cannot be stored (PostgreSQL refuses NUL) and
    # mean nothing to a flow; newlines and tabs stay.
    text = message.text
    if text.isprintable():
        return message
    cleaned = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return replace(message, text=cleaned)
