"""Attachments beneficiaries send: fetched from the platform and kept in the media folder."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from dataclasses import replace
from pathlib import Path

from flows.types import InboundMessage, Media
from handlers.base import Channel, MediaError

log = logging.getLogger(__name__)

# Beyond this the platform's webhook time-out is near: keep the platform's reference
# instead, so staff can still fetch it, and answer the webhook in time.
FETCH_SECONDS = 8.0


class MediaStore:
    """Keeps attachments as files named by a random id; the case file refers to them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, content: bytes, content_type: str) -> str:
        """Write ``content``; returns its reference (``media/<id>.<ext>``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = f"{uuid.uuid4().hex}{extension}"
        (self.folder / name).write_bytes(content)
        return f"media/{name}"

    def path(self, reference: str) -> Path | None:
        """The file behind a reference made by ``save``; None for anything else."""
        name = reference.removeprefix("media/")
        if not reference.startswith("media/") or "/" in name or name.startswith("."):
            return None
        candidate = self.folder / name
        return candidate if candidate.is_file() else None

    async def keep(self, message: InboundMessage, channel: Channel) -> InboundMessage:
        """The message with each attachment fetched and stored locally where possible."""
        if not message.media:
            return message
        kept = [await self._keep_one(media, channel) for media in message.media]
        return replace(message, media=tuple(kept))

    async def _keep_one(self, media: Media, channel: Channel) -> Media:
        try:
            content = await asyncio.wait_for(channel.fetch_media(media), FETCH_SECONDS)
        except (MediaError, TimeoutError) as error:
            log.warning("attachment on %s not fetched: %s", channel.names[0], error)
            return media
        reference = await asyncio.to_thread(self.save, content, media.content_type)
        return replace(media, url=reference)
