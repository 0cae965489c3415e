"""The live inbox: new handoffs and beneficiaries' messages, pushed to open dashboards.

An in-process publish/subscribe: the server's receive hook publishes, each open
``/staff/handoffs/events`` stream (server-sent events) holds one subscription. Events
carry no more than the page shows (national IDs masked). With several server
processes on PostgreSQL every event is also relayed to the others (``relay_to``, by
NOTIFY; each process hands what it hears to ``relayed``), so a page shows what any
process heard; an event too long for a notification is relayed as a "resync".
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# A browser that stops reading gets this many events queued, then a "resync" instead.
QUEUE_SIZE = 200
# Longest relayed event (PostgreSQL's notifications hold 8000 bytes).
RELAY_BYTES = 7000
_RESYNC = ("handoff", {"change": "resync"})


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One server-sent event: ``kind`` is ``message`` or ``handoff``."""

    kind: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {self.kind}\ndata: {body}\n\n".encode()


# What a subscriber's queue yields: an event, or None when the server is stopping.
Subscription = asyncio.Queue[LiveEvent | None]


class LiveInbox:
    """Fan-out of live events to every subscribed dashboard page."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self._relay: Callable[[str], None] | None = None
        self._origin = uuid.uuid4().hex  # this process, to know its own events relayed back

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        queue: Subscription = asyncio.Queue(self._queue_size)
        if self._closed:
            queue.put_nowait(None)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def relay_to(self, send: Callable[[str], None]) -> None:
        """Hand every event published here to ``send`` too, encoded, for the pages of
        the other processes."""
        self._relay = send

    def publish(self, kind: str, **data: Any) -> None:
        self._fan_out(LiveEvent(kind, data))
        if self._relay is not None:
            relayed = json.dumps(
                {"origin": self._origin, "kind": kind, "data": data}, ensure_ascii=False
            )
            if len(relayed.encode()) > RELAY_BYTES:
                kind, data = _RESYNC
                relayed = json.dumps({"origin": self._origin, "kind": kind, "data": data})
            self._relay(relayed)

    def relayed(self, payload: str) -> None:
        """An event relayed from another process (this one's own are shown already)."""
        try:
            relayed = json.loads(payload)
            origin, kind, data = relayed["origin"], str(relayed["kind"]), dict(relayed["data"])
        except (ValueError, KeyError, TypeError):
            return
        if origin != self._origin:
            self._fan_out(LiveEvent(kind, data))

    def resync(self) -> None:
        """Events may have been missed (the relay was away): every page reloads."""
        self._fan_out(LiveEvent(*_RESYNC))

    def _fan_out(self, event: LiveEvent) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A page that fell behind is told to reload rather than shown a gap.
                _drain(queue)
                queue.put_nowait(LiveEvent(*_RESYNC))

    def close(self) -> None:
        """The server is stopping: every stream ends, and new ones end at once."""
        self._closed = True
        for queue in list(self._subscribers):
            _drain(queue)
            queue.put_nowait(None)


def _drain(queue: Subscription) -> None:
    while not queue.empty():
        queue.get_nowait()
