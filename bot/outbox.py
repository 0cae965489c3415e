"""The outbox sender: delivers stored outbound messages through their channels, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from flows.types import Address
from handlers.base import Channel, DeliveryError
from storage.db import Database
from storage.repositories import IdentityRepository, MessageRepository, OutboxItem

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 100
# Waits between attempts when the platform does not say how long: 1 s, 2 s, 4 s, 8 s.
BASE_BACKOFF = 1.0
# Even with nothing to wake it, look again this often (another process may have stored
# replies, or a back-off may have ended).
IDLE_CHECK = 1.0


class OutboxSender:
    """Sends pending messages, oldest first; one beneficiary's messages never overtake.

    A message the platform refuses for now waits (``retry_after`` or exponential
    back-off) and holds back the later messages of the same beneficiary; after
    ``MAX_ATTEMPTS`` or a permanent refusal it is marked failed with the reason.
    """

    def __init__(
        self,
        database: Database,
        channels: Mapping[str, Channel],
        clock: Callable[[], datetime],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        base_backoff: float = BASE_BACKOFF,
    ) -> None:
        self._db = database
        self._channels = channels
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._wake = asyncio.Event()
        self._not_before: dict[int, float] = {}  # message id -> monotonic time
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was stored: look at the outbox now."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_CHECK)
            self._wake.clear()
            try:
                while await self.drain():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be away for a moment; nothing is lost, try again later.
                log.exception("outbox pass failed")

    async def drain(self) -> int:
        """One pass over what is due; returns how many messages were settled."""
        settled = 0
        for name in self._channels:
            async with self._db.session() as session, session.begin():
                items = await MessageRepository(session).pending(channel=name, limit=BATCH)
            held: set[Address] = set()
            for item in items:
                if item.address in held or self._not_before.get(item.id, 0) > time.monotonic():
                    held.add(item.address)  # keep this beneficiary's order
                    continue
                if await self._deliver(item):
                    settled += 1
                else:
                    held.add(item.address)
        return settled

    async def _deliver(self, item: OutboxItem) -> bool:
        """Send one message; True when it is settled (sent or failed for good)."""
        channel = self._channels[item.address.channel]
        try:
            sent = await channel.send(item.address, item.message)
        except DeliveryError as error:
            return await self._refused(item, error)
        except Exception as error:  # a bug or an unexpected client error: retry, then fail
            log.exception("sending on %s failed unexpectedly", item.address.channel)
            return await self._refused(item, DeliveryError(type(error).__name__))
        async with self._db.session() as session, session.begin():
            await MessageRepository(session).mark_sent(
                item.id, self._clock(), sent.platform_message_id
            )
        self._not_before.pop(item.id, None)
        return True

    async def _refused(self, item: OutboxItem, error: DeliveryError) -> bool:
        reason = f"{error.code}: {error.reason}" if error.code else error.reason
        attempts = item.attempts + 1
        async with self._db.session() as session, session.begin():
            messages = MessageRepository(session)
            if error.permanent or attempts >= self._max_attempts:
                await messages.mark_failed(item.id, self._clock(), reason)
                if error.unreachable:
                    await IdentityRepository(session).set_unreachable(item.address)
                log.warning(
                    "message %d on %s failed after %d attempt(s): %s",
                    item.id,
                    item.address.channel,
                    attempts,
                    reason,
                )
                self._not_before.pop(item.id, None)
                return True
            await messages.mark_retry(item.id, self._clock(), reason)
        delay = error.retry_after or self._base_backoff * 2 ** (attempts - 1)
        self._not_before[item.id] = time.monotonic() + delay
        log.info(
            "message %d on %s retried in %.1fs: %s", item.id, item.address.channel, delay, reason
        )
        return False
