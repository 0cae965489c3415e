"""Attachments beneficiaries send: fetched from the platform and kept in the media folder.

Only where the conversation asks for them (``flows.takes_media``: the request's
documents, an answer to staff's question, a conversation with staff), and within each
sender's quota of files and bytes; anywhere else, or beyond, the message keeps the
platform's reference (the message log and case file name it) and nothing is fetched.
Files are readable by the server's user only, and encrypted under ``privacy.key`` (ID
cards, medical reports): ``MediaStore.read`` gives them back in clear to staff.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import flows
from bot.config import Settings
from flows.types import InboundMessage, Media
from handlers.base import Channel, MediaError
from storage.db import Database
from storage.keyring import Keyring, PrivacyKeyError, sealed_under
from storage.repositories import MediaRepository

log = logging.getLogger(__name__)

# Beyond this the platform's webhook time-out is near: keep the platform's reference
# instead, so staff can still fetch it, and answer the webhook in time.
FETCH_SECONDS = 8.0
FOLDER_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class MediaQuota:
    """What one sender may have kept within ``window``."""

    files: int = 30
    size: int = 50_000_000
    window: timedelta = timedelta(days=30)

    @classmethod
    def of(cls, settings: Settings) -> MediaQuota:
        server = settings.server
        return cls(
            server.media_files_per_beneficiary,
            server.media_bytes_per_beneficiary,
            server.media_quota_window,
        )


class MediaStore:
    """Keeps attachments as files named by a random id, encrypted (``Keyring.seal``, the
    name bound to the content); the case file refers to them.

    The keys are the database's (``keyring`` overrides them); only ``remove`` works
    without either.
    """

    def __init__(
        self,
        folder: Path,
        database: Database | None = None,
        *,
        keyring: Keyring | None = None,
        quota: MediaQuota = MediaQuota(),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.folder = folder
        self._db = database
        self._keyring = keyring
        self._quota = quota
        self._clock = clock

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            if self._db is None:
                raise RuntimeError("a media store without a database has no keys")
            self._keyring = self._db.keyring
        return self._keyring

    def save(self, content: bytes, content_type: str) -> str:
        """Write ``content`` encrypted (owner-only file, owner-only folder); returns its
        reference (``media/<id>.<ext>``)."""
        self.folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = f"{uuid.uuid4().hex}{extension}"
        sealed = self.keyring.seal(content, name.encode())
        # Created with its mode, not chmod-ed after: never readable by others, not even briefly.
        descriptor = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(sealed)
        return f"media/{name}"

    def read(self, reference: str) -> bytes | None:
        """The content of a file ``save`` wrote, in clear; None when there is none.
        PrivacyKeyError when no configured key opens it."""
        path = self.path(reference)
        if path is None:
            return None
        return self.keyring.open(path.read_bytes(), path.name.encode())

    def seal_all(self) -> tuple[int, int]:
        """Write again under the current key every file that is not (kept before
        encryption, or under a previous key): at start and by ``tawasul privacy
        rotate-key``. Each file is replaced whole (a new file renamed over it), so a
        reader sees the old or the new one. Returns (files sealed, files no configured
        key opens, left as they are)."""
        keyring = self.keyring
        sealed = unreadable = 0
        if not self.folder.is_dir():
            return 0, 0
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):  # ours, part-written
                continue
            with path.open("rb") as file:
                head = file.read(64)
            if sealed_under(head) == keyring.current_id:
                continue
            try:
                content = keyring.open(path.read_bytes(), path.name.encode())
            except PrivacyKeyError:
                unreadable += 1
                continue
            partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(descriptor, "wb") as file:
                file.write(keyring.seal(content, path.name.encode()))
            if not path.exists():  # erased meanwhile: not brought back
                partial.unlink()
                continue
            os.replace(partial, path)
            sealed += 1
        if unreadable:
            log.warning("%d media files under a key not configured: left as they are", unreadable)
        return sealed, unreadable

    def path(self, reference: str) -> Path | None:
        """The file behind a reference made by ``save``; None for anything else."""
        name = reference.removeprefix("media/")
        if not reference.startswith("media/") or "/" in name or name.startswith("."):
            return None
        candidate = self.folder / name
        return candidate if candidate.is_file() else None

    def remove(self, references: Iterable[str]) -> int:
        """Delete the files behind references made by ``save`` (an erased person's);
        how many there were."""
        removed = 0
        for reference in references:
            path = self.path(reference)
            if path is not None:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    async def keep(self, message: InboundMessage, channel: Channel) -> InboundMessage:
        """The message with each attachment fetched and stored locally where the
        conversation asks for it and the sender's quota allows."""
        if not message.media or self._db is None or self._clock is None:
            return message
        async with self._db.session() as session:
            found = await MediaRepository(session).sender(message.address)
            if found is None or not flows.takes_media(found[1]):
                return message  # a new sender is at the menu: nothing asks for files
            identity_id = found[0]
            now = self._clock()
            files, size = await MediaRepository(session).usage(
                identity_id, now - self._quota.window
            )
        kept = []
        for media in message.media:
            if files >= self._quota.files or size >= self._quota.size:
                log.warning(
                    "attachment on %s not fetched: the sender's quota is used", channel.names[0]
                )
                kept.append(media)
                continue
            stored, length = await self._keep_one(media, channel, self._quota.size - size)
            if stored is not media:
                async with self._db.session() as session, session.begin():
                    await MediaRepository(session).add(
                        identity_id, stored.url, stored.content_type, length, now
                    )
                files, size = files + 1, size + length
            kept.append(stored)
        return replace(message, media=tuple(kept))

    async def _keep_one(self, media: Media, channel: Channel, room: int) -> tuple[Media, int]:
        """The attachment kept here and its size, or as it came and 0."""
        try:
            content = await asyncio.wait_for(channel.fetch_media(media), FETCH_SECONDS)
        except (MediaError, TimeoutError) as error:
            log.warning("attachment on %s not fetched: %s", channel.names[0], error)
            return media, 0
        if len(content) > room:
            log.warning("attachment on %s not kept: the sender's quota is used", channel.names[0])
            return media, 0
        reference = await asyncio.to_thread(self.save, content, media.content_type)
        return replace(media, url=reference), len(content)
