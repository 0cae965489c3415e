"""The live inbox: new handoffs and beneficiaries' messages, pushed to open dashboards.

An in-process publish/subscribe: the server's receive hook publishes, each open
``/staff/handoffs/events`` stream (server-sent events) holds one subscription. Events
carry no more than the page shows (national IDs masked). With several server
processes each one only hears its own messages; the page then shows the rest on its
next load.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# A browser that stops reading gets this many events queued, then a "resync" instead.
QUEUE_SIZE = 200


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

    def publish(self, kind: str, **data: Any) -> None:
        event = LiveEvent(kind, data)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A page that fell behind is told to reload rather than shown a gap.
                _drain(queue)
                queue.put_nowait(LiveEvent("handoff", {"change": "resync"}))

    def close(self) -> None:
        """The server is stopping: every stream ends, and new ones end at once."""
        self._closed = True
        for queue in list(self._subscribers):
            _drain(queue)
            queue.put_nowait(None)


def _drain(queue: Subscription) -> None:
    while not queue.empty():
        queue.get_nowait()
