"""`tawasul serve`: the aiohttp server with every configured channel, the outbox and the
follow-up scheduler."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import resource
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

import flows
from bot.channels import specs
from bot.config import Settings, template_warnings
from bot.dashboard import Dashboard
from bot.dashboard.auth import client_address
from bot.desk import StaffDesk
from bot.engine import ConversationEngine, HandleResult, InboundLimits, utcnow
from bot.feedback import FeedbackDesk
from bot.followups import FollowUpDispatcher, FollowUpPlanner, FollowUpPolicy, StaffGroupAlerts
from bot.media import MediaQuota, MediaStore
from bot.outbox import DeliveryRules, FailedDelivery, OutboxSender
from bot.scheduler import FollowUpScheduler
from bot.staff_group import StaffGroup
from bot.visits import VisitDesk
from flows.staff_texts import STAFF_LANGUAGE
from flows.types import Address, Choice, InboundMessage, OutboundMessage
from handlers.base import Channel, ChannelSetup, DeliveryReceipt, Said, StaffUpdate
from handlers.telegram import TelegramChannel
from handlers.telegram_staff import TelegramStaffGroup
from storage.cluster import (
    FOLLOWUPS_CHANNEL,
    LIVE_CHANNEL,
    OUTBOX_CHANNEL,
    RETRY_SECONDS,
    ClusterLink,
    chunks,
)
from storage.db import Database
from storage.models import DIRECTION_IN, MESSAGE_DELIVERED, MESSAGE_READ, MESSAGE_SENT, id_of
from storage.repositories import IdentityRepository, MessageRepository

log = logging.getLogger(__name__)

# A message stored this long ago and still waiting for its turn was left by a process
# that stopped, or by a turn the database failed: taken again (ConversationEngine.recover).
INBOX_RECOVERY = timedelta(seconds=10)
# How long shutdown waits for the turns of messages already acknowledged.
INBOX_DRAIN_SECONDS = 10.0
# Webhook payloads are small; anything larger is refused before it is read.
MAX_BODY_BYTES = 1024 * 1024
# Open files kept free of held web chat polls (each holds a connection): the database,
# media files, the platforms' APIs and everyone else's requests.
SPARE_FILES = 256
# Requests held open when the open-file limit is none (each channel keeps its own cap).
UNLIMITED_HELD = 1_000_000
# What the case file keeps of a receipt ("sent" it knows already).
_DELIVERY_STATUSES = {"delivered": "delivered", "read": "read", "failed": "failed"}
# A channel that could not start (its platform was down) is tried again after this,
# then after twice as long each time, up to ten minutes.
CHANNEL_RETRY_SECONDS = 15.0
# Messages a new tab of the web chat shows again, both ways.
WEB_HISTORY = 50
_RELEASED = (MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_READ)


class Tawasul:
    """The running service: database, engine, channels and outbox, wired together."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        telegram_polling: bool = False,
        clock: Callable[[], datetime] = utcnow,
        channel_retry_seconds: float = CHANNEL_RETRY_SECONDS,
        cluster_retry: float = RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        acknowledge = settings.inbound.acknowledge
        if acknowledge == "auto":  # the inbox where it is measured to pay (docs/decisions.md)
            acknowledge = "stored" if database.is_sqlite else "answered"
        self._acknowledge_stored = acknowledge == "stored"
        self._channel_retry_seconds = channel_retry_seconds
        self.database = database
        self.clock = clock
        self.followups = FollowUpPlanner(FollowUpPolicy.from_settings(settings))
        flow_settings = settings.flow_settings()
        self.engine = ConversationEngine(
            database,
            flow_settings,
            clock=clock,
            followups=self.followups,
            on_followups=self._followups_changed,
            limits=InboundLimits.from_settings(settings),
            after_turn=self._after_turn,
        )
        self.media = MediaStore(
            Path(settings.server.media_dir), database, quota=MediaQuota.of(settings), clock=clock
        )
        self.staff_group: StaffGroup | None = None
        self.channels: dict[str, Channel] = {}
        for channel in self._configured_channels(telegram_polling):
            for name in channel.names:
                self.channels[name] = channel
        self.outbox = OutboxSender(
            database,
            self.channels,
            clock,
            rules=DeliveryRules.from_settings(settings),
            on_failed=self._tell_staff_failed,
        )
        self.desk = StaffDesk(
            database,
            flow_settings,
            clock,
            on_outbox=self.outbox.wake,
            followups=self.followups,
            on_followups=self._followups_changed,
        )
        self.feedback = FeedbackDesk(
            database,
            flow_settings,
            clock,
            on_outbox=self.outbox.wake,
            followups=self.followups,
            on_followups=self._followups_changed,
        )
        self.visits = VisitDesk(
            database,
            flow_settings,
            clock,
            on_outbox=self.outbox.wake,
            followups=self.followups,
            on_followups=self._followups_changed,
        )
        self.dashboard = Dashboard(
            settings=settings,
            database=database,
            desk=self.desk,
            media=self.media,
            clock=clock,
            feedback=self.feedback,
            visits=self.visits,
        )
        posts = self._staff_posts()
        if posts is not None:
            self.staff_group = StaffGroup(
                self.desk,
                posts,
                database,
                flow_settings,
                pace=self._staff_pace,
                feedback=self.feedback,
                visits=self.visits,
            )
        dispatcher = FollowUpDispatcher(
            database,
            self.followups.policy,
            on_outbox=self.outbox.wake,
            alert_staff=(
                StaffGroupAlerts(posts, database, clock, pace=self._staff_pace)
                if posts is not None
                else None
            ),
        )
        retention = settings.privacy.retention
        self.scheduler = FollowUpScheduler(
            database,
            dispatcher,
            clock=clock,
            daily=lambda: self.desk.purge_expired(retention, self.media.remove),
        )
        # PostgreSQL: any number of processes, one of them the scheduler's leader.
        self.cluster: ClusterLink | None = None
        if not database.is_sqlite:
            self.cluster = ClusterLink(
                database,
                on_elected=self._lead,
                on_deposed=self._follow,
                on_reconnected=self.dashboard.live.resync,  # events may have been missed
                retry_seconds=cluster_retry,
            )
            cluster, live = self.cluster, self.dashboard.live
            cluster.listen(FOLLOWUPS_CHANNEL, self._followups_announced)
            cluster.listen(OUTBOX_CHANNEL, lambda _payload: self.outbox.wake())
            cluster.listen(LIVE_CHANNEL, live.relayed)
            live.relay_to(lambda event: self._in_background(cluster.notify(LIVE_CHANNEL, [event])))
        # Work that runs as long as the server does (channels' start retries, the inbox
        # sweep), cancelled at stop; ``_background`` is work that ends on its own.
        self._retries: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    def _configured_channels(self, telegram_polling: bool) -> list[Channel]:
        """Every channel that declares itself, built from its own section."""
        channels = []
        for spec in specs():
            if spec.build is None:
                continue  # the console: ``tawasul chat`` runs it
            setup = ChannelSetup(
                section=getattr(self.settings, spec.section) if spec.section else None,
                public_url=self.settings.server.public_url,
                organization=self.settings.organization.name,
                on_receipt=self._delivery_receipt,
                text=flows.text,
                replies=self._web_replies,
                history=self._web_history,
                staff_author=flows.staff_author,
                on_staff=self._on_staff,
                polling=telegram_polling,
                one_process=self.database.is_sqlite,
                max_held=max_held_requests(),
            )
            channel = spec.build(setup)
            if channel is not None:
                channels.append(channel)
        return channels

    def _staff_posts(self) -> TelegramStaffGroup | None:
        """Where the staff group is posted to, when Telegram runs with one
        (``telegram.staff_chat_id``)."""
        telegram = self.channels.get("telegram")
        return telegram.staff_group if isinstance(telegram, TelegramChannel) else None

    def app(self) -> web.Application:
        trusted = tuple(self.settings.server.trusted_proxies)
        app = web.Application(
            client_max_size=MAX_BODY_BYTES,
            middlewares=[_no_tracebacks, _real_client(trusted)],
        )
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/staff", _to_dashboard)
        app.add_subapp("/staff/", self.dashboard.app())
        seen: set[int] = set()
        for channel in self.channels.values():
            if id(channel) not in seen:
                seen.add(id(channel))
                app.add_routes(channel.routes(self._receiver(channel)))
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._end_long_polls)
        app.on_cleanup.append(self._stop)
        return app

    async def _staff_pace(self) -> None:
        """A post to the staff group waits its turn within the outbox's Telegram limits."""
        telegram = self.settings.telegram
        await self.outbox.pace(
            "telegram",
            str(telegram.staff_chat_id),
            per_second=telegram.staff_posts_per_minute / 60.0,
        )

    async def _end_long_polls(self, _app: web.Application) -> None:
        # Shutdown comes before aiohttp waits for the requests still open: a held poll
        # (the web chat's, up to 25 s) must answer now, or SIGTERM waits for it.
        for channel in self._unique_channels():
            if any(channel.capabilities(name).holds_requests for name in channel.names):
                await channel.stop()

    def _followups_changed(self, keys: list[str]) -> None:
        self.scheduler.sync(keys)  # nothing when this process does not lead
        if self.cluster is not None and not self.scheduler.running:
            # The leader is another process: it hears of them at once.
            self._in_background(self.cluster.notify(FOLLOWUPS_CHANNEL, chunks(keys)))

    def _followups_announced(self, payload: str) -> None:
        if self.scheduler.running:
            self.scheduler.sync(key for key in payload.split("\n") if key)

    async def _lead(self) -> None:
        try:
            await self.scheduler.start()  # reconciles: what the last leader left runs now
        except Exception:
            log.exception("the follow-up scheduler did not start; the next leader runs them")

    async def _follow(self) -> None:
        await self.scheduler.stop()

    async def _seal_media(self) -> None:
        """Files kept before they were encrypted, or under a previous key, sealed under
        the current one (off the event loop; beneficiaries are answered meanwhile)."""
        sealed, _unreadable = await asyncio.to_thread(self.media.seal_all)
        if sealed:
            log.info("%d media files encrypted under the current key", sealed)

    def _in_background(self, work: Coroutine[Any, None, None]) -> None:
        task = asyncio.create_task(_logged(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _unique_channels(self) -> list[Channel]:
        return list({id(c): c for c in self.channels.values()}.values())

    async def _start(self, _app: web.Application) -> None:
        self._in_background(self._seal_media())
        for channel in self._unique_channels():
            if not await self._start_channel(channel):
                # One platform being down must not keep the others (and the web chat) off.
                self._retries.append(asyncio.create_task(self._keep_starting(channel)))
        self.outbox.start()
        self.outbox.wake()  # whatever was pending before a restart goes out now
        if self._acknowledge_stored:
            # What a stopped process stored but never answered gets its turn: at once
            # when this is the only process, else once its own process had time for it.
            first = timedelta(0) if self.cluster is None else INBOX_RECOVERY
            self._retries.append(asyncio.create_task(self._recover_inbox(first)))
        if self.cluster is not None:
            self.cluster.start()  # the scheduler starts here once this process leads
            return
        try:
            await self.scheduler.start()  # reconciles: follow-ups missed meanwhile run now
        except Exception:
            # Beneficiaries are still answered; their follow-ups wait in the database.
            log.exception("the follow-up scheduler did not start; follow-ups wait for a restart")

    async def _start_channel(self, channel: Channel) -> bool:
        try:
            await channel.start()
        except Exception as error:
            log.error("channel %s did not start: %s", channel.names[0], type(error).__name__)
            return False
        return True

    async def _keep_starting(self, channel: Channel) -> None:
        delay = self._channel_retry_seconds
        while True:
            await asyncio.sleep(delay)
            if await self._start_channel(channel):
                log.info("channel %s started", channel.names[0])
                self.outbox.wake()
                return
            delay = min(delay * 2, 600)

    async def _recover_inbox(self, first: timedelta) -> None:
        """Messages stored and still unanswered after ``INBOX_RECOVERY`` are taken again:
        another process stopped before their turn, or the database was away when it
        came (the claim keeps each turn to one, whoever takes it). ``first``: at start."""
        waited = first
        while True:
            try:
                await self.engine.recover(waited)
            except Exception as error:  # the database is away: the next look finds them
                log.warning("the inbox was not looked over (%s)", type(error).__name__)
            await asyncio.sleep(INBOX_RECOVERY.total_seconds() / 2)
            waited = INBOX_RECOVERY

    async def _stop(self, _app: web.Application) -> None:
        # Turns of messages already acknowledged are taken before the outbox stops;
        # what is left stays stored and is taken at the next start.
        if not await self.engine.drain(INBOX_DRAIN_SECONDS):
            log.warning("stopping with stored messages still waiting for their turn")
        if self.cluster is not None:
            await self.cluster.stop()
        await self.scheduler.stop()
        for task in [*self._retries, *self._background]:
            task.cancel()
        await self.outbox.stop()
        for channel in self._unique_channels():
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", channel.names[0])

    def _receiver(self, channel: Channel) -> Callable[[InboundMessage], Awaitable[None]]:
        async def receive(message: InboundMessage) -> None:
            if message.media and not await self._redelivered(message):
                # Fetched only once: a redelivery is dropped by the engine anyway.
                message = await self.media.keep(message, channel)
            if self._acknowledge_stored:
                await self.engine.accept(message)  # its turn follows: _after_turn
            else:
                self._after_turn(message, await self.engine.handle(message))

        return receive

    def _after_turn(self, message: InboundMessage, result: HandleResult) -> None:
        self.dashboard.heard(message, result)  # the live handoff inbox
        if result.replies:
            self.outbox.wake(*{reply.address.channel for reply in result.replies})
        if self.staff_group is not None:
            self._tell_staff(self.staff_group, message, result)

    async def _redelivered(self, message: InboundMessage) -> bool:
        if message.platform_message_id is None:
            return False
        async with self.database.session() as session:
            return await MessageRepository(session).received(
                message.address.channel, message.platform_message_id
            )

    def _tell_staff(self, room: StaffGroup, message: InboundMessage, result: HandleResult) -> None:
        """Staff hear of handoffs after the message is stored, without holding its webhook."""
        posts = [room.announce(handoff_id) for handoff_id in result.handoffs_opened]
        if result.relayed_to is not None:
            posts.append(room.relay(result.relayed_to, message))
        posts += [room.left(handoff_id) for handoff_id in result.handoffs_left]
        for post in posts:
            self._in_background(post)

    async def _on_staff(self, update: StaffUpdate) -> None:
        if self.staff_group is not None:
            await self.staff_group.on_staff(update)

    async def _healthz(self, _request: web.Request) -> web.Response:
        scheduler = "leader" if self.cluster is None or self.cluster.leader else "standby"
        if await self.database.ping():
            return web.json_response({"status": "ok", "scheduler": scheduler})
        return web.json_response({"status": "unavailable", "scheduler": scheduler}, status=503)

    async def _web_history(self, address: Address) -> list[Said]:
        """The last messages of a web visitor, both ways. The visitor's own are shown again
        with any national ID masked: a browser may be shared (a library, a charity's
        waiting room), and the next person must not read it in full."""
        async with self.database.session() as session:
            identity = await IdentityRepository(session).find(address)
            if identity is None or identity.id is None:
                return []
            rows = await MessageRepository(session).history(identity.id, WEB_HISTORY)
        return [
            Said(
                id=id_of(row),
                mine=row.direction == DIRECTION_IN,
                text=flows.mask_ids(row.text) if row.direction == DIRECTION_IN else row.text,
                language="en" if row.language == "en" else "ar",
                payload=row.payload,
                choices=tuple(Choice(str(c["payload"]), str(c["label"])) for c in row.choices),
                inline=row.inline,
                files=tuple(str(m.get("filename") or "") for m in row.media),
            )
            for row in rows
            if row.direction == DIRECTION_IN or row.status in _RELEASED
        ]

    async def _web_replies(self, address: Address, after: int) -> list[tuple[int, OutboundMessage]]:
        async with self.database.session() as session:
            identity = await IdentityRepository(session).find(address)
            if identity is None or identity.id is None:
                return []
            return await MessageRepository(session).sent_to(identity.id, after)

    async def _delivery_receipt(self, receipt: DeliveryReceipt) -> None:
        """A channel's neutral word on a sent message, into the case file and the outbox."""
        delivery = _DELIVERY_STATUSES.get(receipt.status)
        if delivery is None:
            return
        channel, platform_id = receipt.channel, receipt.platform_message_id
        async with self.database.session() as session, session.begin():
            messages = MessageRepository(session)
            await messages.mark_delivery(channel, platform_id, delivery, receipt.reason)
            if receipt.unreachable:
                recipient = await messages.recipient(channel, platform_id)
                if recipient is not None:
                    await IdentityRepository(session).set_unreachable(recipient)
        if delivery == "failed" and receipt.outside_window:
            await self.outbox.outside_window(channel, platform_id)

    async def _tell_staff_failed(self, failures: Sequence[FailedDelivery]) -> None:
        """Messages the outbox gave up on, to the staff group when there is one (the
        outbox has logged each already)."""
        posts = self._staff_posts()
        if posts is None:
            return
        lines = [flows.text(STAFF_LANGUAGE, "staff.delivery_failed", count=len(failures))]
        lines += [
            flows.text(
                STAFF_LANGUAGE,
                "staff.delivery_failed_line",
                number=str(failure.message_id),
                channel=flows.channel_label(STAFF_LANGUAGE, failure.channel),
                reason=failure.reason,
            )
            for failure in failures[:20]
        ]
        if len(failures) > 20:
            lines.append("…")
        alerts = StaffGroupAlerts(posts, self.database, self.clock, pace=self._staff_pace)
        await alerts("\n".join(lines), None)


async def _to_dashboard(_request: web.Request) -> web.Response:
    return web.Response(status=308, headers={"Location": "/staff/"})


async def _logged(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception:
        log.exception("background work failed (telling staff, or other processes)")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@web.middleware
async def _no_tracebacks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A fault in a route is a 500 with a short body, logged without the request's data;
    a client that went away is no fault of ours."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except UnicodeDecodeError:
        # A form or query that is not UTF-8 (aiohttp decodes forms on request.post()).
        log.info("undecodable request to %s %s", request.method, request.path)
        return web.json_response({"error": "the request is not UTF-8"}, status=400)
    except ConnectionResetError:
        log.debug("the client of %s %s went away", request.method, request.path)
        return web.Response(status=400, text="client went away")  # nobody reads it
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def _real_client(trusted: Sequence[Network]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware giving every route the client's address as ``request.remote``: the
    peer's, or behind trusted proxies the last address they forwarded that is not theirs."""

    @web.middleware
    async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        if trusted:
            forwarded = request.headers.getall("X-Forwarded-For", [])
            client = client_address(request.remote, forwarded, trusted)
            if client and client != request.remote:
                request = request.clone(remote=client)
        return await handler(request)

    return real_client


def max_held_requests(spare: int = SPARE_FILES) -> int:
    """How many requests channels may hold open (the web chat's polls): the open-file
    limit less what everything else needs, halved (a proxy in front holds one file per
    request too), at least 10."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return UNLIMITED_HELD
    return max(10, (soft - spare) // 2)


def raise_open_file_limit() -> None:
    """Take the hard open-file limit as the soft one: every held poll and every client
    connection is an open file, and the usual soft limit (1,024) is soon reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            # An unlimited hard limit is not a value the kernel takes as a soft one.
            wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            log.info("open-file limit stays at %d", soft)


async def serve(settings: Settings, database: Database, *, telegram_polling: bool) -> None:
    """Run until SIGINT or SIGTERM, then stop the channels and the outbox cleanly."""
    for line in template_warnings(settings):
        log.warning(line)
    raise_open_file_limit()
    await database.checkpoint_in_background()
    service = Tawasul(settings, database, telegram_polling=telegram_polling)
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    try:
        # Inside: a port that is taken must still stop the outbox and the channels that
        # setup started, before the database goes away under them.
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        channels = ", ".join(sorted(service.channels))
        log.info(
            "Tawasul listening on http://%s:%d (channels: %s)",
            settings.server.host,
            settings.server.port,
            channels,
        )
        # What start-up made (modules, metadata, clients) lives as long as the process:
        # kept out of the collector's full passes, which otherwise scan all of it and
        # pause every webhook for 50 to 80 ms a few times a minute under load.
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
    log.info("stopped")
