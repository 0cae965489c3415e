"""The outbox sender: delivers stored outbound messages, replies first, within platform limits.

What it promises, and how:

- Nothing is lost. Every outbound message is stored (``pending``) before it is sent.
  The sender claims one (``sending``) before calling the platform and settles it after:
  ``sent``, ``failed`` with the reason, or ``pending`` again to be retried. A message
  left ``sending`` longer than its channel's grace (its sender stopped mid-call: a crash,
  a kill) is pending again and sent again. The grace is as long as the platform could
  still be taking that call (the client's time-outs, plus a margin: about 30 s for
  Telegram, 20 s for Twilio, 5 s for the web chat), and a split message renews its
  claim before each part; meanwhile only that beneficiary's queue waits. Neither
  Telegram nor Twilio's Messages API tells us whether an interrupted call got through
  (Twilio's lookup needs the message's SID, which we only learn from the answer), so
  such a message may arrive twice: the one duplicate we accept, as a lost message is
  worse (a time-out while running is the same case: it is retried). A split message
  that failed on a later part is retried from that part, never from the first (see
  ``Channel.send``); only a crash between two parts sends its first parts again. The
  ``sent`` marks of one pass are written together when it ends, so a crash within a
  pass (milliseconds) sends its messages again.
- Order. One beneficiary's messages arrive in the order they were stored: a message
  waiting for its retry (or still being sent) holds back the later ones of the same
  beneficiary, and only those. Fairness: each pass reads at most ``PER_BENEFICIARY``
  messages of any one beneficiary, every beneficiary's next message before anyone's
  second, so one busy chat (a flood of replies waiting for Telegram's one a second per
  chat) never fills the pass and never delays another beneficiary. Across
  beneficiaries replies go first, then staff's words, then everything else (notices,
  reminders, bulk); whatever is stored during a pass is looked at before the next send.
  Up to ``sends_at_once`` beneficiaries are sent to at the same time, one message each.
- Rate. What each channel states in its ``Capabilities`` (``per_second`` in all,
  ``per_chat_per_second`` to one user): Telegram ``telegram.messages_per_second`` (30)
  and one a second per chat; Twilio (WhatsApp and SMS, one sender) 80% of
  ``whatsapp.messages_per_second``; the web chat: no limit. Token buckets on an
  injectable monotonic clock; messages other than replies and staff's words leave a
  reserve in the bucket untouched, so a reply finds room at once. A platform's
  ``retry_after`` pauses the whole bucket.
- Retries. A refusal for now (429, 5xx, time-out, Twilio 63018) is retried after the
  platform's ``retry_after`` or an exponential back-off; after ``max_attempts``, or at
  once for a permanent refusal, the message is failed with the reason and staff are told.
- Proactive messages (any kind but ``reply`` and ``staff``, which answer a live
  conversation) wait out the quiet hours (but ``timely``: a reminder on an appointment's
  own morning), are dropped as "too old to send" (status
  ``failed``) when older than ``followups.too_old_after`` (or ``followups.too_old`` for
  their template's kind), and are not sent to an identity that said STOP ("opted out").
- A channel's messaging window (WhatsApp's 24 hours, ``Capabilities.window``). Anything
  but a reply to a beneficiary whose last message is older than the window goes as the
  channel's approved template of its kind (``Capabilities.templates``); without one, by
  SMS to the same number (a channel of phone numbers without a window) when
  ``whatsapp.sms_fallback`` is on, else it fails and staff are told. A refusal or
  receipt the channel marks ``outside_window`` (Twilio 63016, Meta 131047) means the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from bot.config import Settings, parse_quiet_hours
from bot.followups import too_old_defaults
from flows.types import Address, OutboundMessage
from handlers.base import Capabilities, Channel, DeliveryError
from storage.db import Database
from storage.models import MessageKind
from storage.repositories import IdentityRepository, MessageRepository, OutboxItem, SentMark

log = logging.getLogger(__name__)

# Kinds that answer a live conversation: first in line, never held by quiet hours, age or
# STOP, free to use the reserve of the rate limits.
CONVERSATION_KINDS = (MessageKind.REPLY, MessageKind.STAFF)

MAX_ATTEMPTS = 8
BATCH = 100
# Messages of one beneficiary read in one pass at most: enough for the several replies
# one message often gets, few enough that a flood of one chat leaves room for everyone.
PER_BENEFICIARY = 4
# Platform calls under way at once per channel (each to a different beneficiary): the
# platforms answer in tens of milliseconds, and one at a time would cap replies there.
SENDS_AT_ONCE = 32
# Waits between attempts when the platform does not say how long: 2 s, 4 s, 8 s … at
# most MAX_BACKOFF; eight attempts span about four minutes.
BASE_BACKOFF = 2.0
MAX_BACKOFF = 300.0
# A claimed message still unsettled this long after it was claimed (or after its last
# part began) lost its sender: the platform's call would have ended by then, one way or
# the other. Per channel: its client's own time-outs (``Capabilities.call_seconds``),
# plus a margin.
GRACE_MARGIN = timedelta(seconds=5)
# Even with nothing to wake it, look again this often (another process may have stored
# messages, or a back-off may have ended).
IDLE_CHECK = 1.0
# At most one post about failed messages to staff this often; the rest are gathered.
REPORT_EVERY = 60.0
# On stop, a send under way may finish for this long before it is cancelled.
STOP_GRACE = 5.0
# The share of a bucket kept for replies and staff's words.
RESERVE_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class DeliveryRules:
    """What the configuration says about delivery (see ``from_settings``)."""

    quiet_hours: tuple[clock_time, clock_time] | None = None
    timezone: str = "UTC"
    too_old_after: timedelta | None = None
    too_old: Mapping[str, timedelta] = field(default_factory=dict)
    # Outside a channel's window with no template for the kind: by SMS to the same number
    # (a channel of phone numbers without a window) when there is one.
    sms_fallback: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryRules:
        org, whatsapp, followups = settings.organization, settings.whatsapp, settings.followups
        return cls(
            quiet_hours=parse_quiet_hours(org.quiet_hours),
            timezone=org.timezone,
            too_old_after=followups.too_old_after,
            too_old={**too_old_defaults(), **followups.too_old},
            sms_fallback=whatsapp.sms_fallback,
        )

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet hours around ``now`` end; None when ``now`` is not in them."""
        if self.quiet_hours is None or self.quiet_hours[0] == self.quiet_hours[1]:
            return None
        start, end = self.quiet_hours
        local = now.astimezone(ZoneInfo(self.timezone))
        at = local.time().replace(tzinfo=None)
        quiet = start <= at < end if start < end else (at >= start or at < end)
        if not quiet:
            return None
        day = local.date() if at < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=local.tzinfo)

    def too_old_for(self, template_kind: str | None) -> timedelta | None:
        if template_kind is not None and template_kind in self.too_old:
            return self.too_old[template_kind]
        return self.too_old_after


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """A message given up on, for staff: no personal data, only what and why."""

    message_id: int
    channel: str
    kind: str
    reason: str


class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up, on a monotonic clock.

    ``reserve`` tokens are left to callers that ask for them (replies): the others may
    only take a token while more than the reserve remains.
    """

    def __init__(
        self, rate: float, clock: Callable[[], float], *, capacity: float, reserve: float = 0.0
    ) -> None:
        if rate <= 0 or capacity < 1 + reserve:
            raise ValueError("a bucket needs a positive rate and room for the reserve")
        self.rate, self.capacity, self.reserve = rate, capacity, reserve
        self._clock = clock
        self._level = capacity
        self._stamp = clock()
        self._paused_until = -math.inf

    @classmethod
    def for_rate(cls, rate: float, clock: Callable[[], float], *, reserved: bool) -> TokenBucket:
        """A bucket of about one second's messages, a fifth of it kept when ``reserved``."""
        reserve = max(1.0, round(rate * RESERVE_SHARE)) if reserved else 0.0
        return cls(rate, clock, capacity=max(rate, 1 + reserve), reserve=reserve)

    def wait(self, *, reserve: bool = False) -> float:
        """Seconds until a token may be taken (0: now); ``reserve`` lets the reserve be used."""
        now = self._refill()
        needed = 1 if reserve else 1 + self.reserve
        short = max(0.0, needed - self._level) / self.rate
        wait = max(short, self._paused_until - now)
        return wait if wait > 1e-9 else 0.0  # float dust is no reason to wait

    def take(self) -> None:
        self._refill()
        self._level -= 1

    def pause(self, seconds: float) -> None:
        """The platform asked us to wait: no token until then."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    @property
    def idle(self) -> bool:
        """Full and not paused: forgetting it changes nothing."""
        now = self._refill()
        return self._level >= self.capacity and self._paused_until <= now

    def _refill(self) -> float:
        now = self._clock()
        if now > self._stamp:
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
        return now


@dataclass(eq=False)
class _Lane:
    """One channel object (Twilio serves two names) with its own limits and worker."""

    channel: Channel
    names: tuple[str, ...]
    overall: TokenBucket | None
    per_chat_rate: float | None
    chats: dict[str, TokenBucket] = field(default_factory=dict)
    grace: timedelta = GRACE_MARGIN  # see ``GRACE_MARGIN``
    recovered_at: float = -math.inf  # monotonic time of the last look for interrupted sends
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    sent: list[SentMark] = field(default_factory=list)  # to be marked when the pass ends
    # Given up on in this pass: handed to the report when the pass ends, so that another
    # lane's report, made meanwhile, does not split the pass's failures in two posts.
    failed: list[FailedDelivery] = field(default_factory=list)


@dataclass(slots=True)
class _Outcome:
    settled: int = 0
    next_at: float | None = None  # monotonic time worth looking again

    def later(self, at: float) -> None:
        self.next_at = at if self.next_at is None else min(self.next_at, at)


class OutboxSender:
    """Sends pending messages by the rules in this module's docstring.

    Args:
        database: where the outbox is.
        channels: channel name -> channel; one worker per channel object.
        clock: aware "now", for what is stored (ages, quiet hours, the 24-hour window).
        rules: the configuration's delivery rules.
        monotonic: seconds, for rate limits and back-off (tests move it by hand).
        sleep: waits between the parts of a split message (tests pass one that moves
            ``monotonic``).
        rest: how a worker with nothing due waits: until its channel is woken or the
            seconds given have passed (tests pass one on their own clock, where time
            passes only when they move it).
        on_failed: told, a batch at a time, of messages given up on (the staff group).
        sending_grace: the same grace on every channel, in place of each one's own.
    """

    def __init__(
        self,
        database: Database,
        channels: Mapping[str, Channel],
        clock: Callable[[], datetime],
        *,
        rules: DeliveryRules | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rest: Callable[[asyncio.Event, float], Awaitable[None]] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        base_backoff: float = BASE_BACKOFF,
        sending_grace: timedelta | None = None,
        batch: int = BATCH,
        sends_at_once: int = SENDS_AT_ONCE,
        on_failed: Callable[[Sequence[FailedDelivery]], Awaitable[None]] | None = None,
    ) -> None:
        self._db = database
        self._channels = channels
        self._clock = clock
        self._rules = rules or DeliveryRules()
        self._monotonic = monotonic
        self._sleep = sleep
        self._rest = rest or _rest
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._grace = sending_grace
        self._batch = batch
        self._sends_at_once = sends_at_once
        self._on_failed = on_failed
        self._lanes = self._make_lanes()
        # In memory only: after a restart a retry comes at once and a split message starts
        # over (see the module's docstring).
        self._not_before: dict[int, float] = {}  # message id -> monotonic time
        self._waiting_for: dict[int, int] = {}  # message id in back-off -> its identity
        self._parts: dict[int, int] = {}  # message id -> parts the platform accepted
        self._outside: set[int] = set()  # WhatsApp said "outside the window" for these
        self._in_flight: set[int] = set()  # claimed by this sender, not yet marked
        self._failures: list[FailedDelivery] = []
        self._reported_at = -math.inf
        self._stopping = False

    def _make_lanes(self) -> list[_Lane]:
        grouped: dict[int, tuple[Channel, list[str]]] = {}
        for name, channel in self._channels.items():
            grouped.setdefault(id(channel), (channel, []))[1].append(name)
        lanes = []
        for channel, names in grouped.values():
            # The channel states its rates; one sender serves all its names.
            capabilities = channel.capabilities(names[0])
            overall: TokenBucket | None = None
            if capabilities.per_second is not None:
                overall = TokenBucket.for_rate(
                    capabilities.per_second, self._monotonic, reserved=True
                )
            per_chat = capabilities.per_chat_per_second
            call = timedelta(seconds=capabilities.call_seconds)
            grace = self._grace if self._grace is not None else call + GRACE_MARGIN
            lanes.append(_Lane(channel, tuple(names), overall, per_chat, grace=grace))
        return lanes

    # --- running ---

    def wake(self, *channels: str) -> None:
        """Something was stored: look at the outbox now, on the lanes of ``channels``
        (each one's own, where the messages are stored for), or on every lane. A lane
        woken for nothing runs the outbox's query for nothing, and at full load the
        turns wake it several hundred times a second."""
        for lane in self._lanes:
            if not channels or any(name in lane.names for name in channels):
                lane.wake.set()

    def start(self) -> None:
        self._stopping = False
        for lane in self._lanes:
            lane.task = asyncio.create_task(self._work(lane), name=f"outbox-{lane.names[0]}")

    async def stop(self) -> None:
        """Let a send under way finish (briefly), then stop every worker."""
        self._stopping = True
        self.wake()
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        if tasks:
            _done, running = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for lane in self._lanes:
            lane.task = None

    async def _work(self, lane: _Lane) -> None:
        while not self._stopping:
            lane.wake.clear()
            try:
                outcome = await self._pass(lane)
                report_at = await self._report()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be away for a moment; nothing is lost, try again later.
                log.exception("outbox pass on %s failed", lane.names[0])
                outcome, report_at = _Outcome(), None
            if self._stopping:
                return
            if outcome.settled or lane.wake.is_set():
                continue
            delay = IDLE_CHECK
            for at in (outcome.next_at, report_at):
                if at is not None:
                    delay = min(delay, at - self._monotonic())
            await self._rest(lane.wake, max(delay, 0.01))

    # --- one pass ---

    async def _pass(self, lane: _Lane) -> _Outcome:
        outcome = _Outcome()
        now = self._clock()
        await self._recover(lane, now)
        quiet_until = self._rules.quiet_until(now)
        only = (*CONVERSATION_KINDS, MessageKind.TIMELY) if quiet_until is not None else None
        backing_off = self._backing_off(outcome)
        async with self._db.session() as session, session.begin():
            messages = MessageRepository(session)
            items = await messages.due(
                lane.names,
                first=CONVERSATION_KINDS,
                only=only,
                per_beneficiary=PER_BENEFICIARY,
                skip=backing_off,
                limit=self._batch,
            )
            queues = await messages.unsettled({item.identity_id for item in items}, only=only)
            # A reply whose beneficiary has an older message beyond the batch (behind a
            # bulk send) would wait for the whole bulk: that older message comes along.
            loaded = {item.id for item in items}
            heads = {queue[0] for queue in queues.values() if queue[0] not in loaded}
            if heads:
                items += await messages.due(
                    lane.names, only=only, ids=heads, per_beneficiary=1, limit=len(heads)
                )
                items.sort(key=_rank)
        ready = []
        for item in items:
            refusal = self._not_to_send(item, now)
            if refusal is None:
                ready.append(item)
                continue
            reason, tell = refusal
            if await self._give_up(lane, item, item.address, reason, tell=tell):
                _settled(queues, item)
                outcome.settled += 1
        held: set[int] = set()  # beneficiaries whose next message must wait
        busy: dict[asyncio.Task[bool], OutboxItem] = {}
        first = True
        try:
            while not self._stopping:
                picks = await self._pick(lane, ready, queues, held, busy, outcome, first=first)
                first = False
                for item, address, message in await self._claim_all(picks):
                    task = asyncio.create_task(self._deliver(lane, item, address, message))
                    busy[task] = item
                if not busy:
                    break
                done, _ = await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    item = busy.pop(task)
                    if _settled_by(task, item):
                        _settled(queues, item)
                        outcome.settled += 1
                    else:
                        held.add(item.identity_id)
                        if item.id in self._not_before:
                            outcome.later(self._not_before[item.id])
        except asyncio.CancelledError:
            for task in busy:
                task.cancel()  # stopping: what is under way is resent after a restart
            raise
        finally:
            # A pass that failed still lets the sends under way finish and be marked.
            await asyncio.gather(*busy, return_exceptions=True)
            self._failures += lane.failed
            lane.failed = []
            await self._mark_sent(lane)
        return outcome

    async def _pick(
        self,
        lane: _Lane,
        ready: list[OutboxItem],
        queues: Mapping[int, list[int]],
        held: set[int],
        busy: Mapping[asyncio.Task[bool], OutboxItem],
        outcome: _Outcome,
        *,
        first: bool,
    ) -> list[tuple[OutboxItem, Address, OutboundMessage]]:
        """The messages to send now, with the channel and form each goes in; their first
        part's share of the rate limits is taken. After the ``first`` pick of a pass, only
        replies once something new was stored: what was stored may be a reply that should
        not wait behind the pass's bulk messages, so those are left to the next pass,
        which starts with it. The replies found go on (new ones come after them, as they
        would in the next pass): ending the pass for each one stored would query the
        outbox again every few sends under load. The first pick always goes, or a steady
        stream of new messages would keep every pass from sending."""
        picks: list[tuple[OutboxItem, Address, OutboundMessage]] = []
        taken = held | {item.identity_id for item in busy.values()}
        now = self._clock()
        while len(busy) + len(picks) < self._sends_at_once:
            replies_only = not first and lane.wake.is_set()
            chosen = self._next(lane, ready, queues, taken, outcome, replies_only=replies_only)
            if chosen is None:
                break
            ready.remove(chosen)
            route = self._route(chosen, now)
            if isinstance(route, str):
                if await self._give_up(lane, chosen, chosen.address, route, tell=True):
                    _settled(queues, chosen)
                    outcome.settled += 1
                else:
                    held.add(chosen.identity_id)
                    taken.add(chosen.identity_id)
                continue
            name, message = route
            self._take(lane, chosen.address.user_id)
            taken.add(chosen.identity_id)
            picks.append((chosen, Address(name, chosen.address.user_id), message))
        return picks

    def _next(
        self,
        lane: _Lane,
        ready: Sequence[OutboxItem],
        queues: Mapping[int, Sequence[int]],
        held: set[int],
        outcome: _Outcome,
        *,
        replies_only: bool = False,
    ) -> OutboxItem | None:
        """The first message (replies first, then oldest) that may go now, if any."""
        now = self._monotonic()
        for item in ready:
            if replies_only and item.kind not in CONVERSATION_KINDS:
                continue
            queue = queues.get(item.identity_id, ())
            if item.identity_id in held or not queue or queue[0] != item.id:
                continue  # an earlier message of the same beneficiary goes first
            not_before = self._not_before.get(item.id, 0.0)
            if not_before > now:
                held.add(item.identity_id)
                outcome.later(not_before)
                continue
            urgent = item.kind in CONVERSATION_KINDS
            wait = self._rate_wait(lane, item.address.user_id, urgent=urgent)
            if wait > 0:
                outcome.later(now + wait)
                continue
            return item
        return None

    def _not_to_send(self, item: OutboxItem, now: datetime) -> tuple[str, bool] | None:
        """Why a message is settled without being sent and whether staff should hear of
        it, or None to send it."""
        if item.attempts >= self._max_attempts:  # interrupted again and again
            return f"given up after {item.attempts} attempts", True
        if item.kind in CONVERSATION_KINDS:
            return None
        if item.opted_out:
            return "opted out", False
        template = item.message.template
        too_old = self._rules.too_old_for(template.kind if template else None)
        if too_old is not None and item.created_at is not None and now - item.created_at > too_old:
            return "too old to send", False
        return None

    def _route(self, item: OutboxItem, now: datetime) -> tuple[str, OutboundMessage] | str:
        """The channel and form to send a message in, or why it cannot go at all."""
        message, channel = item.message, item.address.channel
        capabilities = self._channels[channel].capabilities(channel)
        window = capabilities.window
        outside = window is not None and (
            item.id in self._outside
            or (item.kind != MessageKind.REPLY and not _inside(window, item.last_inbound_at, now))
        )
        if outside:
            template = message.template
            if template is not None and template.kind in capabilities.templates:
                return channel, message
            fallback = self._fallback(capabilities)
            if fallback is not None:
                return fallback, replace(message, template=None)
            what = template.kind if template is not None else f"{item.kind} messages"
            return f"outside WhatsApp's 24-hour window, and no approved template for {what}"
        # A template is only for WhatsApp outside the window; everywhere else the text goes.
        return channel, replace(message, template=None) if message.template else message

    def _fallback(self, capabilities: Capabilities) -> str | None:
        """The channel of the same phone number without a window (SMS), when allowed."""
        if not (self._rules.sms_fallback and capabilities.phone_numbers):
            return None
        for name, channel in self._channels.items():
            other = channel.capabilities(name)
            if other.phone_numbers and other.window is None and other.reaches_first:
                return name
        return None

    # --- one message ---

    async def _deliver(
        self, lane: _Lane, item: OutboxItem, address: Address, message: OutboundMessage
    ) -> bool:
        """Send one claimed message; True when it is settled (sent or failed for good)."""
        sent_ok = False
        try:
            first = self._parts.get(item.id, 0)
            accepted = first  # parts the platform has taken, once the call ends

            async def before_part(index: int) -> None:
                nonlocal accepted
                accepted = index
                while (wait := self._rate_wait(lane, address.user_id, urgent=True)) > 0:
                    await self._sleep(wait)
                self._take(lane, address.user_id)
                # A long message must not look interrupted to another sender.
                async with self._db.session() as session, session.begin():
                    await MessageRepository(session).still_sending(item.id, self._clock())

            try:
                sent = await self._channels[address.channel].send(
                    address, message, first_part=first, before_part=before_part
                )
            except DeliveryError as error:
                return await self._refused(lane, item, address, error, accepted)
            except Exception as error:  # a bug or an unexpected client error: retry, then fail
                log.exception("sending on %s failed unexpectedly", address.channel)
                refusal = DeliveryError(type(error).__name__)
                return await self._refused(lane, item, address, refusal, accepted)
            lane.sent.append(SentMark(item.id, self._clock(), sent.platform_message_id))
            sent_ok = True
            self._forget(item.id)
            return True
        finally:
            if not sent_ok:  # a sent one stays ours until its mark is written
                self._in_flight.discard(item.id)

    async def _claim_all(
        self, picks: list[tuple[OutboxItem, Address, OutboundMessage]]
    ) -> list[tuple[OutboxItem, Address, OutboundMessage]]:
        """Claim the picked messages in one transaction; those another sender has not."""
        if not picks:
            return []
        claims = {item.id: address.channel for item, address, _message in picks}
        async with self._db.session() as session, session.begin():
            claimed = await MessageRepository(session).claim_all(claims, self._clock())
        self._in_flight |= claimed
        return [pick for pick in picks if pick[0].id in claimed]

    async def _mark_sent(self, lane: _Lane) -> None:
        """Write the lane's ``sent`` marks in one transaction (kept for its next pass if
        the database is away)."""
        if not lane.sent:
            return
        marks, lane.sent = lane.sent, []
        try:
            async with self._db.session() as session, session.begin():
                await MessageRepository(session).mark_all_sent(marks)
        except IntegrityError:
            # A platform id seen before (it should not happen): each mark alone, and
            # one whose id clashes is kept without it, rather than block every other.
            log.exception("sent marks clashed: writing them one by one")
            for mark in marks:
                await self._mark_alone(mark)
        except BaseException:
            lane.sent[:0] = marks
            raise
        self._in_flight -= {mark.message_id for mark in marks}

    async def _mark_alone(self, mark: SentMark) -> None:
        try:
            async with self._db.session() as session, session.begin():
                await MessageRepository(session).mark_all_sent([mark])
        except IntegrityError:
            async with self._db.session() as session, session.begin():
                await MessageRepository(session).mark_all_sent(
                    [replace(mark, platform_message_id=None)]
                )

    async def _refused(
        self, lane: _Lane, item: OutboxItem, address: Address, error: DeliveryError, accepted: int
    ) -> bool:
        reason = f"{error.code}: {error.reason}" if error.code else error.reason
        attempts = item.attempts + 1
        if accepted:
            self._parts[item.id] = accepted
        if error.retry_after is not None and lane.overall is not None:
            lane.overall.pause(error.retry_after)
        permanent, delay = error.permanent, error.retry_after
        outside = error.outside_window
        if outside and item.id not in self._outside:
            # The platform knows the window better than our clock: another form, at once.
            self._outside.add(item.id)
            permanent, delay = False, 0.0
        if permanent or attempts >= self._max_attempts:
            if error.unreachable:
                # Before the message is failed: whoever sees it failed sees why, too.
                async with self._db.session() as session, session.begin():
                    await IdentityRepository(session).set_unreachable(address)
            await self._give_up(lane, item, address, reason, tell=True, claimed=True)
            return True
        async with self._db.session() as session, session.begin():
            await MessageRepository(session).release(item.id, self._clock(), reason)
        if delay is None:
            delay = min(self._base_backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        self._not_before[item.id] = self._monotonic() + delay
        self._waiting_for[item.id] = item.identity_id
        log.info("message %d on %s retried in %.1fs: %s", item.id, address.channel, delay, reason)
        return False

    async def _claim(self, item: OutboxItem, now: datetime, channel: str) -> bool:
        async with self._db.session() as session, session.begin():
            return bool(await MessageRepository(session).claim_all({item.id: channel}, now))

    async def _give_up(
        self,
        lane: _Lane,
        item: OutboxItem,
        address: Address,
        reason: str,
        *,
        tell: bool,
        claimed: bool = False,
    ) -> bool:
        """Settle a message as failed, claiming it first unless ``claimed`` (it was just
        tried); False when another sender has it."""
        if not claimed and not await self._claim(item, self._clock(), item.address.channel):
            return False
        async with self._db.session() as session, session.begin():
            await MessageRepository(session).mark_failed(item.id, self._clock(), reason)
        self._forget(item.id)
        if tell:
            tries = item.attempts + (1 if claimed else 0)
            log.warning(
                "message %d on %s failed after %d attempt(s): %s",
                item.id,
                address.channel,
                tries,
                reason,
            )
            lane.failed.append(FailedDelivery(item.id, address.channel, item.kind, reason))
        else:
            log.info("message %d on %s not sent: %s", item.id, address.channel, reason)
        return True

    def _forget(self, message_id: int) -> None:
        self._not_before.pop(message_id, None)
        self._waiting_for.pop(message_id, None)
        self._parts.pop(message_id, None)
        self._outside.discard(message_id)

    # --- rate limits ---

    async def pace(self, channel: str, chat: str, *, per_second: float) -> None:
        """Wait until a post to ``chat`` on ``channel`` keeps the channel's limits and the
        chat's own rate (``per_second``), and take its share: posts made outside the
        outbox (to the staff group) count against the same limits as everything else,
        and leave the reserve to beneficiaries' replies."""
        lane = next((lane for lane in self._lanes if channel in lane.names), None)
        if lane is None:
            return
        key = f"pace:{chat}"
        while True:
            bucket = lane.chats.get(key)
            if bucket is None:
                capacity = max(1.0, per_second)
                bucket = lane.chats[key] = TokenBucket(
                    per_second, self._monotonic, capacity=capacity
                )
            wait = bucket.wait()
            if lane.overall is not None:
                wait = max(wait, lane.overall.wait())
            if wait <= 0:
                break
            await self._sleep(wait)
        bucket.take()
        if lane.overall is not None:
            lane.overall.take()

    def _rate_wait(self, lane: _Lane, chat: str, *, urgent: bool) -> float:
        wait = lane.overall.wait(reserve=urgent) if lane.overall is not None else 0.0
        bucket = lane.chats.get(chat)
        if bucket is not None:
            wait = max(wait, bucket.wait(reserve=True))
        return wait

    def _take(self, lane: _Lane, chat: str) -> None:
        if lane.overall is not None:
            lane.overall.take()
        if lane.per_chat_rate is None:
            return
        if len(lane.chats) > 1000:  # chats that have waited long enough are forgotten
            lane.chats = {key: bucket for key, bucket in lane.chats.items() if not bucket.idle}
        bucket = lane.chats.get(chat)
        if bucket is None:
            bucket = TokenBucket(lane.per_chat_rate, self._monotonic, capacity=1.0)
            lane.chats[chat] = bucket
        bucket.take()

    # --- recovery and reports ---

    def _backing_off(self, outcome: _Outcome) -> set[int]:
        """Beneficiaries whose next message waits for its retry: left out of the pass (so
        they take no room in it), and looked at again when the first wait ends."""
        now = self._monotonic()
        waiting = set()
        for message_id, identity_id in self._waiting_for.items():
            at = self._not_before.get(message_id, 0.0)
            if at > now:
                waiting.add(identity_id)
                outcome.later(at)
        return waiting

    async def _recover(self, lane: _Lane, now: datetime) -> None:
        """The lane's messages whose sender stopped mid-send are pending again (checked
        often: the grace is short, and a crash must hold its beneficiaries no longer)."""
        mono = self._monotonic()
        if mono - lane.recovered_at < min(1.0, lane.grace.total_seconds() / 4):
            return
        lane.recovered_at = mono
        async with self._db.session() as session, session.begin():
            count = await MessageRepository(session).recover_interrupted(
                now - lane.grace, keep=self._in_flight, channels=lane.names
            )
        if count:
            log.warning(
                "%d message(s) on %s interrupted while sending: sending them again",
                count,
                lane.names[0],
            )

    async def outside_window(self, channel: str, platform_message_id: str) -> None:
        """Twilio reported a sent WhatsApp message failed with 63016 (outside the window):
        send it again as a template, or by SMS, or fail it and tell staff."""
        async with self._db.session() as session, session.begin():
            message_id = await MessageRepository(session).reopen_failed(
                channel, platform_message_id, below_attempts=self._max_attempts
            )
        if message_id is not None:
            self._outside.add(message_id)
            self.wake()

    async def _report(self) -> float | None:
        """Tell staff what was given up on; the monotonic time to try again, if any."""
        if not self._failures:
            return None
        now = self._monotonic()
        if now - self._reported_at < REPORT_EVERY:
            return self._reported_at + REPORT_EVERY
        batch, self._failures = self._failures, []
        self._reported_at = now
        if self._on_failed is not None:
            try:
                await self._on_failed(batch)
            except Exception:
                log.exception("telling staff of %d failed message(s) failed", len(batch))
        return None


async def _rest(wake: asyncio.Event, seconds: float) -> None:
    """Wait until ``wake`` is set, or ``seconds`` at most."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)


def _inside(window: timedelta, last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether the channel still takes free text: the beneficiary wrote within ``window``."""
    return last_inbound_at is not None and now - last_inbound_at < window


def _rank(item: OutboxItem) -> tuple[int, int]:
    """Replies, then staff's words, then the rest; oldest first within each."""
    kinds = CONVERSATION_KINDS
    return (kinds.index(item.kind) if item.kind in kinds else len(kinds), item.id)


def _settled_by(task: asyncio.Task[bool], item: OutboxItem) -> bool:
    """Whether a send settled its message; one that failed in itself (the database away
    while it was recording a refusal) is not, and is sent again later."""
    error = task.exception()
    if error is None:
        return task.result()
    log.error("message %d: the send failed (%s)", item.id, type(error).__name__)
    return False


def _settled(queues: Mapping[int, list[int]], item: OutboxItem) -> None:
    """The beneficiary's next message is now first in line."""
    queue = queues.get(item.identity_id)
    if queue and item.id in queue:
        queue.remove(item.id)
